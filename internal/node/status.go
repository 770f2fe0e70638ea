package node

import "context"

// Status is a transaction's status as CCF defines it
// (doc/use_apps/verify_tx.rst, src/node/rpc/tx_status.h).
type Status int

// The statuses. Transitions: Unknown → Pending → Committed, or Pending →
// Invalid (rolled back), or Pending → Unknown just after an election.
const (
	StatusUnknown Status = iota
	StatusPending
	StatusCommitted
	StatusInvalid
)

// String returns the JSON enum string of the status.
func (s Status) String() string {
	switch s {
	case StatusPending:
		return "Pending"
	case StatusCommitted:
		return "Committed"
	case StatusInvalid:
		return "Invalid"
	default:
		return "Unknown"
	}
}

// IsPrimary reports whether this node is currently the Raft leader.
func (r *Reader) IsPrimary() bool { return r.isPrimary.Load() }

// CommittedSeqno is the seqno of the last committed signature: every
// transaction at or below it is Committed (unless Invalid).
func (r *Reader) CommittedSeqno() uint64 { return r.committed.Load() }

// LastSeqno is the seqno of the last transaction in the local ledger.
func (r *Reader) LastSeqno() uint64 { return r.lastSeqno.Load() }

// CommittedTxID is the id of the last committed transaction.
func (r *Reader) CommittedTxID() TxID {
	s := r.committed.Load()
	v, _ := r.viewOf(s)
	return TxID{View: v, Seqno: s}
}

// LastTxID is the id of the last transaction in the local ledger.
func (r *Reader) LastTxID() TxID {
	s := r.lastSeqno.Load()
	v, _ := r.viewOf(s)
	return TxID{View: v, Seqno: s}
}

// WaitCommitted blocks until id is Committed, or returns ErrInvalid if it
// was rolled back, or ctx's error.
func (r *Reader) WaitCommitted(ctx context.Context, id TxID) error {
	for {
		r.cmu.Lock()
		ch := r.commitCh
		r.cmu.Unlock()
		switch r.Status(id) {
		case StatusCommitted:
			return nil
		case StatusInvalid:
			return ErrInvalid
		}
		select {
		case <-ch:
		case <-r.stopped:
			return ErrStopped
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Status evaluates a transaction's status as CCF does (evaluate_tx_status):
// with local_view the view this node holds for the seqno, Committed if
// committed and the views match, Invalid if committed with another view or
// a later view is already committed, Pending if held locally, else Unknown.
//
// For a seqno beyond its ledger, CCF's local view is the node's current
// view: a backup answers Pending for an id of its current view that it has
// not received yet (the primary handed it out, and it is on its way), never
// Unknown; the primary, which knows every id it handed out, answers
// Pending for those only.
func (r *Reader) Status(id TxID) Status {
	committed := r.committed.Load()
	var localView uint64
	haveLocal := false
	last := r.lastSeqno.Load()
	if id.Seqno <= last {
		if v, err := r.viewOf(id.Seqno); err == nil {
			localView, haveLocal = v, true
		}
	}
	switch {
	case committed >= id.Seqno:
		if haveLocal && localView == id.View {
			return StatusCommitted
		}
		return StatusInvalid
	case haveLocal && localView == id.View:
		return StatusPending
	case id.Seqno > last && r.proposed(id):
		return StatusPending
	case id.Seqno > last && !r.IsPrimary() && id.View == r.RaftInfo().View:
		return StatusPending
	}
	if cv, err := r.viewOf(committed); err == nil && committed > 0 && cv > id.View {
		return StatusInvalid
	}
	return StatusUnknown
}

// proposed reports whether id is one of the transactions this node has
// sequenced in its current view as primary (for an id above lastSeqno: one
// not persisted yet). lastProposed is published before the id is handed
// out, and cleared when the node stops being primary or rolls back.
func (r *Reader) proposed(id TxID) bool {
	lp := r.lastProposed.Load()
	return lp != nil && lp.View == id.View && id.Seqno <= lp.Seqno
}
