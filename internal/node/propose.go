package node

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/ledgerd/ledgerd/internal/ledger"
)

// proposed is what a proposal's builder made: the Raft entries, what the
// sequencer learnt serialising them (hints), and each entry's write set to
// execute (nil for signatures and conf changes).
type proposed struct {
	ents   []raftpb.Entry
	hints  []hint
	writes [][]ledger.MapWrites
}

// propose is the one way into the Raft log: batches, signatures and Raft
// configuration changes all go through it, on the loop goroutine. It owns
// the seqno prediction: each entry is serialised with its final seqno and
// view (ccf-format: the seqno is in the entry and in its IV), so build is
// given the view and the first seqno that Raft will assign, and propose
// records what Raft took (sequenced) before anything else is predicted.
// Raft is configured with DisableProposalForwarding, so a proposal is
// either appended to this leader's log at exactly the predicted index or
// refused; never forwarded to another leader, where it would land at an
// index its bytes do not name.
//
// Once Raft has taken the entries they are executed: the latest state
// includes their writes before any id is handed out. A refused proposal
// (this node is not the leader) leaves no trace and returns ErrNotPrimary.
func (n *Node) propose(build func(view, first uint64) (proposed, error)) (view, first uint64, err error) {
	view, first = n.rn.BasicStatus().Term, n.nextSeqno()
	p, err := build(view, first)
	if err != nil {
		return 0, 0, err
	}
	if err := n.rn.Step(raftpb.Message{Type: raftpb.MsgProp, From: n.cfg.Raft.ID, Entries: p.ents}); err != nil {
		return 0, 0, fmt.Errorf("%w: %v", ErrNotPrimary, err)
	}
	n.hints = append(n.hints, p.hints...)
	writes := p.writes
	if writes == nil {
		writes = make([][]ledger.MapWrites, len(p.ents))
	}
	n.state.execute(view, first, writes...)
	n.sequenced(view, first+uint64(len(p.ents))-1)
	return view, first, nil
}

// proposeConfChange proposes a Raft configuration change through the
// proposer. Its ledger bytes are serialised at persist time (rawFor), the
// same on every node. If Raft already has a conf change pending it turns
// this one into an empty entry (etcd raft's rule), which persists as an
// empty transaction: the caller checks the configuration it sees applied.
func (n *Node) proposeConfChange(cc raftpb.ConfChangeI) (TxID, error) {
	typ, data, err := marshalConfChange(cc)
	if err != nil {
		return TxID{}, err
	}
	view, seqno, err := n.propose(func(view, first uint64) (proposed, error) {
		return proposed{
			ents:  []raftpb.Entry{{Type: typ, Data: data}},
			hints: []hint{{seqno: first, raw: data, confChange: true}},
		}, nil
	})
	return TxID{View: view, Seqno: seqno}, err
}

func marshalConfChange(cc raftpb.ConfChangeI) (raftpb.EntryType, []byte, error) {
	if c, ok := cc.AsV1(); ok {
		data, err := c.Marshal()
		return raftpb.EntryConfChange, data, err
	}
	c := cc.AsV2()
	data, err := c.Marshal()
	return raftpb.EntryConfChangeV2, data, err
}

// ProposeConfChange proposes a Raft configuration change (add, remove or
// demote a member) through the node's one proposer. It returns the id of
// the transaction that records it once Raft has taken it; the change takes
// effect when that transaction is committed (see WaitCommitted).
// ErrNotPrimary if this node is not the leader.
func (n *Node) ProposeConfChange(ctx context.Context, cc raftpb.ConfChangeI) (TxID, error) {
	type result struct {
		id  TxID
		err error
	}
	res := make(chan result, 1)
	if err := n.onLoop(ctx, func() {
		id, err := n.proposeConfChange(cc)
		res <- result{id, err}
	}); err != nil {
		return TxID{}, err
	}
	select {
	case r := <-res:
		return r.id, r.err
	case <-n.donec:
		return TxID{}, ErrStopped
	}
}

// ReportUnreachable tells Raft that the transport could not reach peer id,
// so the leader stops pipelining to it and probes instead. It never blocks;
// a report dropped when the loop is busy is harmless (Raft probes anyway).
func (n *Node) ReportUnreachable(id uint64) {
	n.tryOnLoop(func() { n.rn.ReportUnreachable(id) })
}

// ReportSnapshot tells Raft how sending a snapshot to peer id ended. It
// never blocks; see ReportUnreachable.
//
// Raft sends a snapshot (a descriptor of this node's latest committed
// snapshot; the peer fetches the file: raftsnap.go) only when peer id needs
// entries this node does not hold, before the snapshot it started from. A
// success (the descriptor is on its way) lets Raft probe the peer from the
// snapshot on; a failure (the transport dropped it) is logged, at most once
// a minute for each peer, and Raft sends it again after a heartbeat.
func (n *Node) ReportSnapshot(id uint64, failed bool) {
	status := raft.SnapshotFinish
	if failed {
		status = raft.SnapshotFailure
		n.warnSnapshotFailed(id)
	}
	n.tryOnLoop(func() { n.rn.ReportSnapshot(id, status) })
}

// snapshotWarnEvery bounds how often warnSnapshotFailed logs for one peer.
const snapshotWarnEvery = time.Minute

func (n *Node) warnSnapshotFailed(id uint64) {
	now := n.cfg.Now()
	n.snapWarnMu.Lock()
	last, seen := n.snapWarned[id]
	if seen && now.Sub(last) < snapshotWarnEvery {
		n.snapWarnMu.Unlock()
		return
	}
	if n.snapWarned == nil {
		n.snapWarned = map[uint64]time.Time{}
	}
	n.snapWarned[id] = now
	n.snapWarnMu.Unlock()
	n.log.Warn("couldn't send a Raft snapshot to a peer that needs entries this node does not hold (it started from a snapshot); Raft sends it again",
		"peer_raft_id", id, "first_seqno_held", n.baseSeqno()+1)
}

// onLoop runs f on the loop goroutine, which owns the Raft node, before its
// next cycle. It returns once f is handed over (not once it has run), or
// with ctx's error, or ErrStopped.
func (n *Node) onLoop(ctx context.Context, f func()) error {
	select {
	case n.ctrlc <- f:
		return nil
	case <-n.donec:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (n *Node) tryOnLoop(f func()) {
	select {
	case n.ctrlc <- f:
	default:
	}
}
