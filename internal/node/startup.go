package node

import (
	"errors"
	"fmt"
	"path/filepath"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/ledgerd/ledgerd/internal/consensus"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// Start-up refusals (see recover). Each error wraps one of these and says
// what is wrong and how to proceed.
var (
	// ErrLostTail: the node's durable commit point lies beyond the ledger
	// it can recover; committed transactions are missing. Starting anyway
	// would issue their seqnos again: two signed histories for one seqno.
	ErrLostTail = errors.New("node: committed transactions are missing from the ledger")
	// ErrWrongSecret: the ledger secret does not authenticate the ledger's
	// last entries. Starting anyway would accept writes no one can read.
	ErrWrongSecret = errors.New("node: the ledger secret does not authenticate the ledger")
	// ErrRaftState: raft.state is missing or unreadable and cannot be
	// rebuilt from the ledger (the node is one of several voters).
	ErrRaftState = errors.New("node: raft.state is missing or unreadable")
)

// authenticatedTail is how many of the ledger's first and last entries
// the ledger secrets must authenticate at start.
const authenticatedTail = 8

// checkSecret authenticates, with the loaded ledger secret, the GCM tags of
// the ledger's first entries that it encrypts (up to the first rekey): a
// wrong secret fails every one. It runs before anything is recovered.
func (n *Node) checkSecret(last uint64) error {
	if n.startup != nil {
		// The entries after a snapshot may use a rekey's secret, which the
		// state knows: checkTailSecrets authenticates them.
		return nil
	}
	if n.firstRecovery {
		return nil // every entry is the previous service's
	}
	from := n.previousEnd() + 1 // a recovered service's own first entry
	for s := from; s <= min(last, from+authenticatedTail-1); s++ {
		raw, err := n.ledger.Read(s)
		if err != nil {
			return err
		}
		e, err := ledger.ParseEntry(raw)
		if err != nil {
			return fmt.Errorf("node: entry %d: %w", s, err)
		}
		if err := e.Authenticate(n.keys.First()); err != nil {
			return fmt.Errorf("%w: entry %d fails authentication (%v). Is %s the secret this ledger was written with? Restore the right ledger.secret; the node refuses to start rather than accept writes that could never be read",
				ErrWrongSecret, s, err, filepath.Join(n.cfg.Dir, "ledger.secret"))
		}
		if _, ok := rekeyIn(raw); ok { // the next entries use the rekey's secret
			break
		}
	}
	return nil
}

// checkTailSecrets authenticates the ledger's last entries, once the state
// knows every rekey, each with the ledger secret of its seqno (the first
// one, or a rekey's, unwrapped with the service key).
func (n *Node) checkTailSecrets(last uint64) error {
	for s := last; s >= max(1, n.ledger.FirstSeqno()) && s+authenticatedTail > last; s-- {
		raw, err := n.ledger.Read(s)
		if err != nil {
			return err
		}
		e, err := ledger.ParseEntry(raw)
		if err != nil {
			return fmt.Errorf("node: entry %d: %w", s, err)
		}
		aead, err := n.aeadAt(s)
		if errors.Is(err, tables.ErrNotRecovered) {
			continue // the previous service's, its secrets not recovered yet
		}
		if err == nil {
			err = e.Authenticate(aead)
		}
		if err != nil {
			return fmt.Errorf("%w: entry %d fails authentication with its ledger secret (%v). Are %s and %s this ledger's? The node refuses to start rather than accept writes that could never be read",
				ErrWrongSecret, s, err, filepath.Join(n.cfg.Dir, "ledger.secret"), filepath.Join(n.cfg.Dir, "service.key"))
		}
	}
	return nil
}

// commitEvidence is the highest seqno this node durably knew committed,
// and where it learnt it.
func (n *Node) commitEvidence(cp *checkpointFile) (uint64, string) {
	at, from := n.storage.State().Hard.Commit, "raft.state's commit index"
	if c := n.ledger.CommittedSeqno(); c > at {
		at, from = c, "the .committed chunk names"
	}
	if cp != nil && cp.Applied > at {
		at, from = cp.Applied, "state.checkpoint"
	}
	return at, from
}

// checkCommitPoint refuses to start when the durable commit point lies
// beyond the ledger's end, unless the operator accepts losing the tail.
func (n *Node) checkCommitPoint(last uint64, cp *checkpointFile) error {
	at, from := n.commitEvidence(cp)
	if at <= last {
		return nil
	}
	if !n.cfg.UnsafeAcceptLostTail {
		return fmt.Errorf("%w: committed transactions %d..%d are missing from the ledger (it ends at %d; %s says %d is committed); restore the ledger files (ledger/) from a backup or a copy of this node's directory, or rejoin the service from its other nodes. Starting anyway (--unsafe-accept-lost-tail) issues those seqnos again, and receipts for two different histories would verify",
			ErrLostTail, last+1, at, last, from, at)
	}
	n.log.Error("UNSAFE: committed transactions are missing from the ledger; accepting the loss as configured", "from", last+1, "to", at, "evidence", from)
	hs := n.storage.State().Hard
	if hs.Commit > last {
		hs.Commit = last
		if err := n.storage.SetHardState(hs, true); err != nil {
			return err
		}
	}
	return nil
}

// recoverRaftState handles a raft.state file that is missing or holds no
// valid slot while the ledger has entries. A single-node service's hard
// state and configuration are rebuilt from the ledger (its configuration
// changes are recorded in it; its term is the last entry's view; its commit
// point the last signature): nothing else is lost. A node of a larger
// service refuses: the votes it cast are in no ledger.
func (n *Node) recoverRaftState(last uint64) error {
	st := n.storage.State()
	if last == 0 || !raft.IsEmptyHardState(st.Hard) || len(st.Conf.Voters) > 0 {
		return nil
	}
	path := filepath.Join(n.cfg.Dir, "raft.state")
	what := "missing"
	if fi, err := n.cfg.FS.Stat(path); err == nil && fi.Size() > 0 {
		what = "unreadable (no valid slot)"
	}
	conf, confIndex, err := confFromLedger(n.ledger, last)
	if err != nil {
		return fmt.Errorf("%w: %s is %s and the configuration in the ledger could not be read: %v; restore raft.state", ErrRaftState, path, what, err)
	}
	if len(conf.Voters) != 1 || conf.Voters[0] != n.cfg.Raft.ID || len(conf.Learners) > 0 || len(conf.VotersOutgoing) > 0 {
		return fmt.Errorf("%w: %s is %s, and this node is one of the voters %v of a larger service, whose votes are in no ledger: restore raft.state from a backup, or rejoin the service from its other nodes", ErrRaftState, path, what, conf.Voters)
	}
	view, err := n.ledger.View(last)
	if err != nil {
		return err
	}
	hs := raftpb.HardState{Term: view, Commit: max(n.sigs.LastAtOrBefore(last), min(n.ledger.CommittedSeqno(), last))}
	n.log.Warn("raft.state is "+what+"; rebuilt the single-node service's Raft state from the ledger", "path", path, "term", hs.Term, "commit", hs.Commit, "conf_index", confIndex)
	if err := n.storage.SetConfState(conf, confIndex); err != nil {
		return err
	}
	return n.storage.SetHardState(hs, true)
}

// confFromLedger replays the Raft configuration changes recorded in the
// ledger's entries 1..last. Joint configurations are not supported.
func confFromLedger(l *ledger.Ledger, last uint64) (raftpb.ConfState, uint64, error) {
	voters, learners := map[uint64]bool{}, map[uint64]bool{}
	var index uint64
	for s := uint64(1); s <= last; s++ {
		raw, err := l.Read(s)
		if err != nil {
			return raftpb.ConfState{}, 0, err
		}
		e, err := ledger.ParseEntry(raw)
		if err != nil {
			return raftpb.ConfState{}, 0, fmt.Errorf("entry %d: %w", s, err)
		}
		if !consensus.HasPublicMaps(e) {
			continue
		}
		ent, err := consensus.DecodeEntry(raw)
		if err != nil {
			return raftpb.ConfState{}, 0, fmt.Errorf("entry %d: %w", s, err)
		}
		var cc raftpb.ConfChangeV2
		switch ent.Type {
		case raftpb.EntryConfChange:
			var c raftpb.ConfChange
			if err := c.Unmarshal(ent.Data); err != nil {
				return raftpb.ConfState{}, 0, fmt.Errorf("conf change at %d: %w", s, err)
			}
			cc = c.AsV2()
		case raftpb.EntryConfChangeV2:
			if err := cc.Unmarshal(ent.Data); err != nil {
				return raftpb.ConfState{}, 0, fmt.Errorf("conf change at %d: %w", s, err)
			}
			if len(cc.Changes) > 1 || cc.Transition != raftpb.ConfChangeTransitionAuto {
				return raftpb.ConfState{}, 0, fmt.Errorf("conf change at %d is a joint configuration", s)
			}
		default:
			continue
		}
		for _, c := range cc.Changes {
			switch c.Type {
			case raftpb.ConfChangeAddNode:
				voters[c.NodeID], learners[c.NodeID] = true, false
			case raftpb.ConfChangeAddLearnerNode:
				voters[c.NodeID], learners[c.NodeID] = false, true
			case raftpb.ConfChangeRemoveNode:
				voters[c.NodeID], learners[c.NodeID] = false, false
			}
		}
		index = s
	}
	var cs raftpb.ConfState
	for id, ok := range voters {
		if ok {
			cs.Voters = append(cs.Voters, id)
		}
	}
	for id, ok := range learners {
		if ok {
			cs.Learners = append(cs.Learners, id)
		}
	}
	return cs, index, nil
}
