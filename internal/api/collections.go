package api

import (
	"context"
	"fmt"
	"net/http"

	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/node"
)

// appendEntry appends contents to collection coll and returns its id once
// it is sequenced (Pending). A write to a collection the latest state holds
// is submitted directly. A write that may create a collection goes through
// the node's executor (Exec): the limit check and the write are atomic with
// every other such write, which holds the executor until its write is
// executed, so concurrent first writes to distinct new collections cannot
// together exceed the limit. (A collection that a rollback removes between
// the check and the direct submit is created again without the check; a
// rollback happens only when this node stops being primary, which refuses
// the write anyway.)
func (s *Server) appendEntry(ctx context.Context, coll string, contents []byte) (node.TxID, error) {
	writes := node.EntryWrites(coll, contents)
	if _, ok := s.reads.State().Collection(coll); ok {
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
		return writes, nil
	})
	if err != nil && err != refused {
		return node.TxID{}, fmt.Errorf("couldn't append entry: %w", err)
	}
	return id, err
}
