package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/ledgerd/ledgerd/internal/appjs"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/node"
)

// appendEntry appends contents to collection coll, with tags, and returns
// its id once it is sequenced (Pending). A write to a collection the latest
// state holds, with tags its entries already carry, is submitted directly;
// one that may add a collection or a tag goes through Exec, which checks the
// collection limit and the collection's tag limit (MaxCollectionTags)
// atomically with every other such write. A write that may create a collection goes through
// the node's executor (Exec): the limit check and the write are atomic with
// every other such write, which holds the executor until its write is
// executed, so concurrent first writes to distinct new collections cannot
// together exceed the limit. (A collection that a rollback removes between
// the check and the direct submit is created again without the check; a
// rollback happens only when this node stops being primary, which refuses
// the write anyway.)
//
// With hooks (user-defined functions run before and after the entry, see
// handlers_udf.go), the hooks run first against the latest state, once,
// recording what they read (readSet); a failing hook fails the write,
// writing nothing. Hooks that write nothing through ccf.kv take the paths
// above. When they wrote, the entry goes through Exec, and decide adds the
// hooks' writes to the entry's transaction as they are if the state still
// holds what the hooks read; only if a concurrent write changed something
// they read do the hooks run again there, against the state the
// transaction applies to (as CCF retries a conflicting transaction).
// hooksWrote, if set (tests), is called when an append's hooks wrote,
// after their run outside the executor's lock and before the entry's Exec.
var hooksWrote atomic.Pointer[func()]

func (s *Server) appendEntry(ctx context.Context, coll string, contents []byte, tags []string, hooks *entryHooks) (node.TxID, error) {
	writes := node.TaggedEntryWrites(coll, contents, tags)
	st := s.reads.State()
	var hw []appjs.Write // the hooks' writes
	var hooksTook time.Duration
	var reads *readSet // what the hooks read
	if !hooks.empty() {
		reads = getReadSet(st)
		defer putReadSet(reads) // after Exec, whose decide validates it
		start := time.Now()
		var err error
		hw, err = hooks.run(ctx, reads, coll, contents, 0)
		hooksTook = time.Since(start)
		if err != nil {
			return node.TxID{}, err
		}
	}
	hookWrites := len(hw) > 0
	if f := hooksWrote.Load(); f != nil && hookWrites {
		(*f)()
	}
	if _, ok := st.Collection(coll); ok && !hookWrites && st.HasCollectionTags(coll, tags) {
		f, err := s.node.Submit(writes)
		if err != nil {
			return node.TxID{}, fmt.Errorf("couldn't submit entry: %w", err)
		}
		id, err := f.Wait(ctx)
		if err != nil {
			return node.TxID{}, fmt.Errorf("couldn't append entry: %w", err)
		}
		return id, nil
	}
	var refused error
	id, err := s.node.Exec(ctx, node.UntilExecuted, func(st *node.State) ([]ledger.MapWrites, error) {
		if _, ok := st.Collection(coll); !ok && st.NumCollections() >= s.maxCollections {
			refused = newError(http.StatusBadRequest, codeCollectionLimit,
				"The ledger already has the maximum of %d collections; write to an existing collection.", s.maxCollections)
			return nil, refused
		}
		if len(tags) > 0 && !st.HasCollectionTags(coll, tags) {
			have := st.CollectionTags(coll)
			n := len(have)
			for _, t := range tags {
				if !slices.Contains(have, t) {
					n++
				}
			}
			if n > MaxCollectionTags {
				refused = newError(http.StatusBadRequest, codeTagLimit,
					"The entries of %s %q would carry %d distinct tags; at most %d are allowed per collection.",
					"collection", clip(coll), n, MaxCollectionTags)
				return nil, refused
			}
		}
		if hookWrites {
			if !reads.unchanged(st) {
				// A concurrent write changed what the hooks read: their
				// writes are those of a run against this state.
				var err error
				if hw, err = hooks.run(ctx, st, coll, contents, lockedCap(hooksTook)); err != nil {
					refused = err
					return nil, err
				}
			}
			return append(slices.Clip(writes), mapWrites(hw)...), nil
		}
		return writes, nil
	})
	if err != nil && err != refused {
		return node.TxID{}, fmt.Errorf("couldn't append entry: %w", err)
	}
	return id, err
}
