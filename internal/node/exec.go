package node

import (
	"context"
	"time"

	"github.com/ledgerd/ledgerd/internal/ledger"
)

// ExecTimeout bounds how long Exec waits, once it has submitted a write,
// for the write to be executed or committed. It is waited for even if the
// caller's context ends: the executor's lock must not be released while the
// write may still take effect.
const ExecTimeout = 30 * time.Second

// Wait says how long Exec holds its lock after submitting.
type Wait int

const (
	// UntilExecuted: until the write is sequenced and executed (Pending);
	// the next Exec's decide sees it.
	UntilExecuted Wait = iota
	// UntilCommitted: until the write is committed; the answer can then
	// never be rolled back.
	UntilCommitted
)

// Exec runs one "read state, decide, write, wait" transaction atomically
// with respect to every other Exec: under the node's executor lock, decide
// reads the latest executed state and returns the writes (or an error, which
// Exec returns, writing nothing); Exec submits them and holds the lock until
// they are executed or, with UntilCommitted, committed. So a check in decide
// (the last Administrator, the collection limit, a ballot's count) and the
// write it guards cannot interleave with another Exec's. Writes submitted
// without Exec are not ordered against decide; everything whose decision
// reads what other writes change goes through Exec.
//
// A nil write set from decide means nothing to write: Exec returns the zero
// TxID and no error.
func (n *Node) Exec(ctx context.Context, wait Wait, decide func(st *State) ([]ledger.MapWrites, error)) (TxID, error) {
	select {
	case n.execLock <- struct{}{}:
		defer func() { <-n.execLock }()
	case <-ctx.Done():
		return TxID{}, ctx.Err()
	}
	writes, err := decide(n.state)
	if err != nil || writes == nil {
		return TxID{}, err
	}
	f, err := n.Submit(writes)
	if err != nil {
		return TxID{}, err
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ExecTimeout)
	defer cancel()
	id, err := f.Wait(wctx)
	if err != nil {
		return TxID{}, err
	}
	if wait == UntilCommitted {
		if err := n.WaitCommitted(wctx, id); err != nil {
			return id, err
		}
	}
	return id, nil
}
