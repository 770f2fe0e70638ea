package node

import (
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
	return n.storage.SetConfState(*cs, e.Index)
}

// commitTo applies the persisted transactions up to the signature at target
// and publishes target as the commit point. Chunk files wholly at or below
// it become .committed.
func (n *Node) commitTo(target uint64) error {
	i := 0
	for ; i < len(n.unapplied) && n.unapplied[i].seqno <= target; i++ {
		u := n.unapplied[i]
		if u.writes != nil {
			n.applyKnown(u)
			continue
		}
		if err := n.apply(u.seqno, u.raw); err != nil {
			return err
		}
	}
	n.unapplied = append(n.unapplied[:0], n.unapplied[i:]...)
	if err := n.ledger.Commit(target); err != nil {
		return err
	}
	n.publishCommit(target)
	n.sinceSnap += i
	if n.sinceSnap >= n.cfg.SnapshotTxs {
		if err := n.checkpoint(); err != nil {
			n.log.Warn("couldn't checkpoint state", "err", err)
		}
	}
	return nil
}

// applyKnown applies a committed transaction this node serialised itself,
// from its write set, saving a decryption.
func (n *Node) applyKnown(u unapplied) {
	if u.seqno <= n.state.Applied() {
		return
	}
	_, view, _ := ledger.EntrySeqnoView(u.raw)
	n.state.applyTx(TxID{View: view, Seqno: u.seqno}, u.writes)
}

// apply applies one committed transaction to the state and query index.
// It is idempotent: a seqno at or below the applied one is ignored.
func (n *Node) apply(seqno uint64, raw []byte) error {
	if seqno <= n.state.Applied() {
		return nil
	}
	e, err := ledger.ParseEntry(raw)
	if err != nil {
		return fmt.Errorf("couldn't parse committed entry %d: %w", seqno, err)
	}
	var public []ledger.MapWrites
	if consensus.HasPublicMaps(e) {
		d, err := e.PublicDomain()
		if err != nil {
			return fmt.Errorf("committed entry %d: %w", seqno, err)
		}
		public = d.Maps
	}
	var private []ledger.MapWrites
	if len(e.Ciphertext) > 0 {
		if private, err = e.Decrypt(n.aead); err != nil {
			return fmt.Errorf("couldn't decrypt committed entry %d: %w", seqno, err)
		}
	}
	n.state.applyTx(TxID{View: e.View, Seqno: seqno}, public, private)
	return nil
}

// applyTx records a transaction's writes. Internal tables (signatures, Raft
// conf changes) are not kept: they are read from the ledger when needed.
func (s *State) applyTx(id TxID, maps ...[]ledger.MapWrites) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ms := range maps {
		for _, m := range ms {
			switch m.Name {
			case tables.SignaturesMap, consensus.ConfChangeMap:
			case tables.EntriesMap:
				s.indexEntries(id, m)
			default:
				s.applyMap(m)
			}
		}
	}
	s.applied = id.Seqno
}

func (s *State) indexEntries(id TxID, m ledger.MapWrites) {
	for _, w := range m.Writes {
		c := s.collections[string(w.Key)]
		if c == nil {
			c = &Collection{}
			s.collections[string(w.Key)] = c
		}
		c.Latest = id
		c.Count++
	}
}

func (s *State) applyMap(m ledger.MapWrites) {
	mp := s.maps[m.Name]
	if mp == nil {
		mp = map[string][]byte{}
		s.maps[m.Name] = mp
	}
	for _, w := range m.Writes {
		mp[string(w.Key)] = append([]byte(nil), w.Value...)
	}
	for _, k := range m.Removes {
		delete(mp, string(k))
	}
}
