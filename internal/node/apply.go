package node

import (
	"crypto/cipher"
	"errors"
	"fmt"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/ledgerd/ledgerd/internal/consensus"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// applyCommitted handles the entries Raft reports committed: conf changes are
// applied to Raft, then CCF's commit point moves to the last signature Raft
// has committed (only signatures are committable), and every transaction up
// to it is applied.
func (n *Node) applyCommitted(ents []raftpb.Entry) error {
	if len(ents) == 0 {
		return nil
	}
	for _, e := range ents {
		if e.Type == raftpb.EntryNormal || e.Index <= n.storage.State().ConfIndex {
			continue
		}
		if err := n.applyConfChange(e); err != nil {
			return err
		}
	}
	n.raftCommit = ents[len(ents)-1].Index
	target := n.sigs.LastAtOrBefore(n.raftCommit)
	if target <= n.committed.Load() {
		return nil
	}
	return n.commitTo(target)
}

func (n *Node) applyConfChange(e raftpb.Entry) error {
	var cc raftpb.ConfChangeI
	if e.Type == raftpb.EntryConfChange {
		var c raftpb.ConfChange
		if err := c.Unmarshal(e.Data); err != nil {
			return fmt.Errorf("conf change at %d: %w", e.Index, err)
		}
		cc = c
	} else {
		var c raftpb.ConfChangeV2
		if err := c.Unmarshal(e.Data); err != nil {
			return fmt.Errorf("conf change at %d: %w", e.Index, err)
		}
		cc = c
	}
	cs := n.rn.ApplyConfChange(cc)
	if err := n.storage.SetConfState(*cs, e.Index); err != nil {
		return err
	}
	n.publishRaftInfo()
	return nil
}

// commitTo folds the executed transactions up to the signature at target
// into the committed state and publishes target as the commit point. Chunk
// files wholly at or below it become .committed.
func (n *Node) commitTo(target uint64) error {
	for _, s := range n.snapshotPointsIn(n.committed.Load(), target) {
		if err := n.commitStep(s); err != nil {
			return err
		}
		n.installNotedRecovered(s) // before: the snapshot holds the state with them
		n.takeSnapshot(s)
	}
	if err := n.commitStep(target); err != nil {
		return err
	}
	n.installNotedRecovered(target)
	n.completeSnapshots(target)
	return nil
}

// commitStep is commitTo without snapshots.
func (n *Node) commitStep(target uint64) error {
	if target <= n.committed.Load() {
		return nil
	}
	k := n.state.commit(target)
	if err := n.ledger.Commit(target); err != nil {
		if !ledger.IsResourceExhausted(err) {
			return err
		}
		// The commit point is the ledger's to record, and it has; what a
		// full disk refused is the renaming of completed chunk files to
		// .committed (a rename may need a directory block), which the next
		// Commit makes. Not a reason to stop.
		n.log.Warn("couldn't rename committed ledger chunks; the next commit will", "err", err)
	}
	n.publishCommit(target)
	n.sinceSnap += k
	if n.sinceSnap >= n.cfg.SnapshotTxs || n.bytesSinceSnap >= n.cfg.SnapshotBytes {
		if err := n.checkpoint(); err != nil {
			n.log.Warn("couldn't checkpoint state", "err", err)
		}
	}
	return nil
}

// derive executes persisted or received entries that the latest state does
// not include yet: a follower's appended entries, the primary's entries it
// did not sequence itself (a new view's empty entry, conf changes), and at
// recovery the ledger after the checkpoint. The primary's own transactions
// were executed when sequenced (see proposeQueued). This is the one place,
// live and at recovery, where the ledger's bytes become state.
func (n *Node) derive(e *ledger.Entry) error {
	if e.Seqno <= n.state.Applied() {
		return nil
	}
	aead, err := n.aeadAt(e.Seqno)
	if errors.Is(err, tables.ErrNotRecovered) {
		// The previous service's transaction, its secrets not recovered
		// yet: its public domain only (disaster.go).
		aead = nil
	} else if err != nil {
		return fmt.Errorf("couldn't decrypt entry %d: %w", e.Seqno, err)
	}
	writes, err := writesOf(e, aead)
	if err != nil {
		return err
	}
	n.state.execute(e.View, e.Seqno, writes)
	return nil
}

// writesOf decodes an entry's write set: its public maps and its private
// ones, decrypted with aead (the ledger secret of its seqno).
func writesOf(e *ledger.Entry, aead cipher.AEAD) ([]ledger.MapWrites, error) {
	var writes []ledger.MapWrites
	if consensus.HasPublicMaps(e) {
		d, err := e.PublicDomain()
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", e.Seqno, err)
		}
		writes = d.Maps
	}
	if len(e.Ciphertext) > 0 && aead != nil {
		private, err := e.Decrypt(aead)
		if err != nil {
			return nil, fmt.Errorf("couldn't decrypt entry %d: %w", e.Seqno, err)
		}
		if writes == nil {
			return private, nil // not appended to nil: that would copy it
		}
		writes = append(writes, private...)
	}
	return writes, nil
}
