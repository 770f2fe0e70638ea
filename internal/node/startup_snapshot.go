package node

import (
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/ledgerd/ledgerd/internal/durable"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/merkle"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// Starting from a snapshot (CCF's join from a snapshot).
//
// InstallSnapshot verifies a committed snapshot file against the service
// certificate and saves it as the data directory's startup snapshot
// (startup.snapshot, and a copy in snapshots/ to serve to later joiners).
// Open, on a directory with a startup snapshot at S, verifies it again
// (nothing on disk is trusted without a check) and, the first time, sets
// the node up to go on from S+1: the ledger starts at S+1 (its first chunk
// ledger_<S+1>-...), the Merkle tree from the snapshot's right edge and leaf
// S (merkle.CreateFromEdge), the signature index from S, Raft's storage
// reports FirstIndex S+1 and Term(S) = the snapshot's view, and the hard
// state and configuration are the snapshot's (commit S), so the primary's
// MsgApp from S+1 matches. The state is the snapshot's, unless a later
// checkpoint matches the ledger; entries after S are replayed. A restart
// does the same from the startup snapshot and the ledger after it.
//
// The node holds no entry at or before S: reading one, or its receipt,
// answers ErrBeforeSnapshot; the status of any transaction id is known
// (the snapshot holds the view history).

// startupFile is the startup snapshot, in Dir.
const startupFile = "startup.snapshot"

// ErrBeforeSnapshot: the node started from a snapshot and holds no entry at
// or before its seqno.
var ErrBeforeSnapshot = errors.New("node: this node started from a snapshot and holds no transaction at or before its seqno")

// InstallSnapshot verifies the snapshot file data against service and
// saves it as dir's startup snapshot. dir must hold no ledger entry.
func InstallSnapshot(fsys durable.FS, dir string, service *x509.Certificate, data []byte) (*Snapshot, error) {
	fsys = durable.Or(fsys)
	s, err := VerifySnapshot(data, service)
	if err != nil {
		return nil, err
	}
	ents, err := fsys.ReadDir(filepath.Join(dir, "ledger"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for _, e := range ents {
		if e.Name() != ledger.SpareChunkFile {
			return nil, fmt.Errorf("node: couldn't install a snapshot in %s: it holds a ledger", dir)
		}
	}
	if err := fsys.MkdirAll(filepath.Join(dir, snapshotDir), 0o700); err != nil {
		return nil, err
	}
	if err := durable.WriteFileFS(fsys, filepath.Join(dir, snapshotDir, SnapshotName(s.Seqno, s.EvidenceSeqno)), data, 0o600); err != nil {
		return nil, err
	}
	if err := durable.WriteFileFS(fsys, filepath.Join(dir, startupFile), data, 0o600); err != nil {
		return nil, err
	}
	return s, nil
}

// loadStartup reads and verifies the startup snapshot, nil if none.
func (n *Node) loadStartup() (*Snapshot, error) {
	path := filepath.Join(n.cfg.Dir, startupFile)
	b, err := durable.ReadFile(n.cfg.FS, path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s, err := VerifySnapshot(b, n.cfg.Identities.Service.Cert)
	if err != nil {
		return nil, fmt.Errorf("%s, the snapshot this node started from: %w; restore it (or join anew in an empty directory)", path, err)
	}
	return s, nil
}

// edgeAfter is the right edge of the tree of leaves [0, S]: the snapshot's
// edge of [0, S) with leaf S appended.
func (s *Snapshot) edgeAfter() []merkle.Hash {
	f, _ := merkle.FrontierOf(s.frontier.Size(), s.frontier.Hashes())
	f.Append(s.leaf)
	return f.Hashes()
}

// setUpStartup makes the opened ledger and the tree (not opened yet) go on
// from the startup snapshot.
func (n *Node) setUpStartupLedger(s *Snapshot) error {
	if n.historyHeld(s) {
		return nil // a whole ledger: the tree and the index are built from it
	}
	if n.ledger.LastSeqno() == 0 {
		if err := n.ledger.StartAt(s.Seqno + 1); err != nil {
			return err
		}
	}
	if first := n.ledger.FirstSeqno(); first != s.Seqno+1 {
		return fmt.Errorf("node: the ledger starts at %d, the startup snapshot is at %d", first, s.Seqno)
	}
	treePath := filepath.Join(n.cfg.Dir, "merkle.tree")
	if _, err := n.cfg.FS.Stat(treePath); errors.Is(err, fs.ErrNotExist) {
		n.cfg.FS.Remove(treePath + ".base") // of a creation a crash interrupted
		if err := merkle.CreateFromEdge(n.cfg.FS, treePath, s.Seqno+1, s.edgeAfter()); err != nil {
			return err
		}
	}
	return nil
}

// setUpStartupRaft makes the signature index and Raft's storage and state
// go on from the startup snapshot (files opened).
func (n *Node) setUpStartupRaft(s *Snapshot) error {
	if n.historyHeld(s) {
		// --fetch-history: the chunks before S are here (verified against
		// the snapshot when fetched, and every signature again as the tree
		// is built): the node holds the whole ledger and only its state
		// comes from the snapshot.
		if st := n.storage.State(); raft.IsEmptyHardState(st.Hard) {
			cs := raftpb.ConfState{Voters: s.body.Voters, Learners: s.body.Learners}
			if err := n.storage.SetConfState(cs, s.body.ConfIndex); err != nil {
				return err
			}
			if err := n.storage.SetHardState(raftpb.HardState{Term: s.View, Commit: s.Seqno}, true); err != nil {
				return err
			}
		}
		n.startup = s
		n.log.Info("starting from a snapshot, with the ledger before it", "seqno", s.Seqno, "view", s.View, "evidence", s.EvidenceSeqno)
		return nil
	}
	if n.tree.Base() != s.Seqno+1 {
		return fmt.Errorf("node: merkle.tree starts at %d leaves, the startup snapshot needs %d; remove merkle.tree and merkle.tree.base to rebuild them", n.tree.Base(), s.Seqno+1)
	}
	if n.sigs.Last() < s.Seqno {
		if err := n.sigs.Append(s.Seqno); err != nil {
			return err
		}
		if err := n.sigs.Flush(); err != nil {
			return err
		}
	}
	n.storage.SetSnapshot(s.Seqno, s.View)
	if err := n.commitStartupRaft(s, raftpb.ConfState{Voters: s.body.Voters, Learners: s.body.Learners}); err != nil {
		return err
	}
	n.startup = s
	n.base.Store(&snapshotBase{seqno: s.Seqno, views: s.body.Views})
	n.log.Info("starting from a snapshot", "seqno", s.Seqno, "view", s.View, "evidence", s.EvidenceSeqno, "ledger_from", s.Seqno+1)
	return nil
}

// viewOf returns the view of seqno: from the ledger, or, before it, from
// the startup snapshot's view history.
func (r *Reader) viewOf(seqno uint64) (uint64, error) {
	if b := r.base.Load(); b != nil && seqno <= b.seqno && seqno >= 1 {
		h := b.views
		i := sort.Search(len(h), func(i int) bool { return h[i].Seqno > seqno })
		if i == 0 {
			return 0, ErrNotFound
		}
		return h[i-1].View, nil
	}
	return r.ledger.View(seqno)
}

// held returns ErrBeforeSnapshot for a seqno this node holds no entry of.
func (r *Reader) held(seqno uint64) error {
	if b := r.base.Load(); b != nil && seqno <= b.seqno {
		return fmt.Errorf("%w (%d; it holds %d on)", ErrBeforeSnapshot, b.seqno, b.seqno+1)
	}
	return nil
}

// snapshotBase is the seqno and view history of the snapshot a node
// started from or installed: it holds no entry up to seqno.
type snapshotBase struct {
	seqno uint64
	views []ledger.ViewStart
}

// baseSeqno is the seqno of the snapshot the node started from or
// installed (0: it holds the whole ledger).
func (r *Reader) baseSeqno() uint64 {
	if b := r.base.Load(); b != nil {
		return b.seqno
	}
	return 0
}

// startupLeafMatches reports whether cp is the state at the startup
// snapshot's seqno (below the tree's base, where the tree has no leaf).
func (n *Node) startupCheckpoint(cp *checkpointFile) bool {
	s := n.startup
	return s != nil && cp.Applied == s.Seqno && cp.AppliedView == s.View && cp.AppliedLeaf == hex.EncodeToString(s.leaf[:])
}

// StartupSnapshot reads and verifies the snapshot the node of data
// directory dir started from (nil if it holds the whole ledger).
func StartupSnapshot(dir string, service *x509.Certificate) (*Snapshot, error) {
	b, err := durable.ReadFile(durable.OS, filepath.Join(dir, startupFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return VerifySnapshot(b, service)
}

// Edge returns the right edge of the tree of leaves [0, Seqno]: what the
// tree goes on from after the snapshot.
func (s *Snapshot) Edge() []merkle.Hash { return s.edgeAfter() }

// Rekeys returns the rekeys up to the snapshot's seqno.
func (s *Snapshot) Rekeys() []tables.Rekey {
	return append([]tables.Rekey(nil), s.body.State.Rekeys...)
}

// NodeCerts returns the endorsed node certificates of the snapshot's state
// (tables.NodeCertsMap: node id -> PEM).
func (s *Snapshot) NodeCerts() map[string]string {
	out := map[string]string{}
	for _, m := range s.body.State.Maps {
		if m.Name == tables.NodeCertsMap {
			for _, kv := range m.Entries {
				out[string(kv.K)] = string(kv.V)
			}
		}
	}
	return out
}

// VerifyHistory checks that the ledger chunk files in dir (a directory of
// committed chunks, from seqno 1) hold the history of the snapshot s:
// their entries 1..S hash to the Merkle tree whose right edge after leaf S
// is the snapshot's (so the root at S is the one the snapshot's signature
// signed, and leaf S is the snapshot's). Entries after S are not allowed.
// It reads only framing and hashes; the node verifies every signature
// again when it builds its tree at start.
func VerifyHistory(dir string, s *Snapshot) error {
	var f merkle.Frontier
	f.Append(merkle.Hash{}) // leaf 0
	err := ledger.Walk(dir, func(seqno uint64, raw []byte) error {
		if seqno > s.Seqno {
			return fmt.Errorf("the history holds %d, after the snapshot's %d", seqno, s.Seqno)
		}
		e, err := ledger.ParseEntry(raw)
		if err != nil {
			return err
		}
		leaf, err := leafOf(raw, e)
		if err != nil {
			return err
		}
		f.Append(leaf)
		return nil
	}, ledger.WalkOptions{CommittedOnly: true})
	if err != nil {
		return err
	}
	if f.Size() != s.Seqno+1 {
		return fmt.Errorf("the history ends at %d, the snapshot is at %d", f.Size()-1, s.Seqno)
	}
	want := s.edgeAfter()
	got := f.Hashes()
	if len(got) != len(want) {
		return fmt.Errorf("%w: the history's tree differs from the snapshot's", ErrSnapshotUnverified)
	}
	for i := range got {
		if got[i] != want[i] {
			return fmt.Errorf("%w: the history's Merkle tree at %d is not the snapshot's", ErrSnapshotUnverified, s.Seqno)
		}
	}
	return nil
}

// historyHeld reports whether the ledger holds the entries before the
// startup snapshot (fetched with --fetch-history).
func (n *Node) historyHeld(s *Snapshot) bool {
	return n.ledger.FirstSeqno() == 1 && n.ledger.LastSeqno() >= s.Seqno
}
