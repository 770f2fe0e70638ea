package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/ledgerd/ledgerd/internal/durable"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/receipt"
)

// Raft snapshots: sending and installing a CCF snapshot through Raft.
//
// A node whose log starts after a snapshot at S (it joined from one, or
// installed one) cannot send a peer the entries up to S. etcd raft then asks
// its Storage for a snapshot and sends it in a MsgSnap. ledgerd's Storage
// answers with the node's latest committed CCF snapshot as a descriptor
// (raftSnapshot): Metadata {Index: S, Term: view of S, ConfState at S}, and
// Data a small JSON naming the file. The file itself does not travel in the
// Raft stream (it may be large, and would hold up the heartbeats and
// appends queued behind it): the backup fetches it over the mutually
// authenticated node-to-node route GET /ledgerd/node/snapshot
// (Config.FetchSnapshot, bounded by MaxSnapshotFile), as a joiner does, the
// way etcd's server sends its snapshots outside the Raft message stream.
//
// The backup (receiveSnapshot) fetches in the background, verifies the file
// against the service certificate alone (VerifySnapshot) before anything is
// touched, and only then steps the MsgSnap into Raft, with the metadata of
// the verified file (never the primary's word). Raft restores its log from
// it if the snapshot is past the backup's commit point; the next Ready
// carries it and the loop installs it (installReceived) before anything else
// of that Ready:
//
//  1. the file is written to snapshots/ (to serve later joiners) and as
//     startup.snapshot.installing, durably;
//  2. commit point: startup.snapshot is replaced by it (write, fsync,
//     rename, directory fsync);
//  3. the ledger directory is moved aside whole to
//     ledger.before-snapshot-S (kept until a later install: pruneAside;
//     its entries after the commit point may
//     conflict with the snapshot, and those before it cannot be kept without
//     the ones between: the node answers reads up to S as a node started from
//     a snapshot does), an empty ledger starts at S+1; the Merkle tree is
//     created from the snapshot's edge, the signature index holds S, the
//     checkpoint is removed; Raft's hard state commits S (its term and vote
//     kept) with the snapshot's configuration;
//  4. the marker is removed.
//
// A crash before 2 leaves the old state (Open removes a marker that is not
// startup.snapshot); after 2, Open finishes 3 on the files before opening
// them (finishInterruptedInstall), then starts from startup.snapshot as a
// node that joined from it. The in-memory state (the state at S, the base
// of reads, the commit point) is replaced on the loop, between two Readys.
//
// On the primary, the transport reports the MsgSnap sent once it is queued
// (ReportSnapshot), and Raft probes the backup again from S+1: until the
// backup has installed, it refuses, and Raft sends the descriptor again.

// installMarker is the snapshot being installed, in Dir (see above).
const installMarker = "startup.snapshot.installing"

// MaxSnapshotFile bounds a snapshot file a node fetches from a peer.
const MaxSnapshotFile = 8 + 4 + maxSnapshotBody + 4 + receipt.MaxSize

// snapshotFetchTimeout bounds one fetch of a snapshot from the primary.
const snapshotFetchTimeout = 5 * time.Minute

// snapshotDescriptor is a MsgSnap's Data: which file the primary sends.
type snapshotDescriptor struct {
	Name     string `json:"name"`
	Seqno    uint64 `json:"seqno"`
	Evidence uint64 `json:"evidence"`
}

// snapSource caches the primary's latest committed snapshot's metadata
// (raftSnapshot), by file name.
type snapSource struct {
	mu   sync.Mutex
	name string
	snap raftpb.Snapshot
}

// raftSnapshot is the Storage's snapshot source: the latest committed
// snapshot file's descriptor.
func (n *Node) raftSnapshot() (raftpb.Snapshot, error) {
	names, err := committedSnapshots(n.cfg.FS, n.cfg.Dir)
	if err != nil {
		return raftpb.Snapshot{}, err
	}
	if len(names) == 0 {
		return raftpb.Snapshot{}, ErrNoSnapshot
	}
	name := names[len(names)-1]
	c := &n.snapSrc
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.name == name {
		return c.snap, nil
	}
	b, err := durable.ReadFile(n.cfg.FS, filepath.Join(n.cfg.Dir, snapshotDir, name))
	if err != nil {
		return raftpb.Snapshot{}, err
	}
	s, err := ParseSnapshot(b)
	if err != nil {
		return raftpb.Snapshot{}, err
	}
	data, _ := json.Marshal(snapshotDescriptor{Name: name, Seqno: s.Seqno, Evidence: s.EvidenceSeqno})
	c.name = name
	c.snap = raftpb.Snapshot{Data: data, Metadata: s.raftMetadata()}
	return c.snap, nil
}

// raftMetadata is the Raft snapshot metadata of s.
func (s *Snapshot) raftMetadata() raftpb.SnapshotMetadata {
	return raftpb.SnapshotMetadata{Index: s.Seqno, Term: s.View,
		ConfState: raftpb.ConfState{Voters: s.body.Voters, Learners: s.body.Learners}}
}

// receivedSnapshot is a snapshot a backup fetched and verified, waiting for
// Raft's Ready to install it.
type receivedSnapshot struct {
	s    *Snapshot
	data []byte
	from uint64
}

// receiveSnapshot handles a MsgSnap from the primary: fetch its latest
// snapshot, verify it, and only then step the message into Raft (see
// above). One fetch at a time; a MsgSnap meanwhile is dropped (the primary
// sends it again).
func (n *Node) receiveSnapshot(m raftpb.Message) {
	if !n.fetching.CompareAndSwap(false, true) {
		return
	}
	if n.cfg.Now().Before(n.fetchRetry.notBefore) {
		n.fetching.Store(false)
		return
	}
	if n.cfg.FetchSnapshot == nil {
		n.log.Warn("the primary sent a Raft snapshot, and this node cannot fetch one (no FetchSnapshot)", "from", m.From)
		n.fetchFailed()
		n.fetching.Store(false)
		return
	}
	go func() {
		defer n.fetching.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), snapshotFetchTimeout)
		defer cancel()
		go func() {
			select {
			case <-n.stopc:
				cancel()
			case <-ctx.Done():
			}
		}()
		var desc snapshotDescriptor
		if m.Snapshot != nil {
			_ = json.Unmarshal(m.Snapshot.Data, &desc) // informational only
		}
		n.log.Info("the primary sends a snapshot: fetching it", "from", m.From, "snapshot", desc.Name)
		data, err := n.cfg.FetchSnapshot(ctx, m.From)
		if err == nil && len(data) > MaxSnapshotFile {
			err = fmt.Errorf("%w: %d bytes, at most %d", ErrSnapshotMalformed, len(data), MaxSnapshotFile)
		}
		if err != nil {
			n.log.Warn("couldn't fetch the primary's snapshot; it will be sent again", "from", m.From, "err", err)
			n.fetchFailed()
			return
		}
		s, err := VerifySnapshot(data, n.cfg.Identities.Service.Cert)
		if err != nil {
			n.log.Error("refused the primary's snapshot: it does not verify against the service certificate; nothing installed", "from", m.From, "err", err)
			n.fetchFailed()
			return
		}
		n.fetchRetry.wait = 0
		if s.Seqno <= n.committed.Load() {
			n.log.Info("the primary's snapshot is not past this node's commit point; not installed", "seqno", s.Seqno, "committed", n.committed.Load())
			return
		}
		var desc2 []byte
		if m.Snapshot != nil {
			desc2 = m.Snapshot.Data
		}
		md := s.raftMetadata()
		if self := n.cfg.Raft.ID; !slices.Contains(md.ConfState.Voters, self) && !slices.Contains(md.ConfState.Learners, self) {
			// The snapshot predates this node's addition (a conf change
			// after S, which follows from the primary): until it is
			// applied, the node is a learner, as Raft requires a node to
			// be in the configuration of a snapshot it restores.
			md.ConfState.Learners = append(slices.Clone(md.ConfState.Learners), self)
		}
		m.Snapshot = &raftpb.Snapshot{Data: desc2, Metadata: md}
		_ = n.onLoop(ctx, func() {
			n.incoming = &receivedSnapshot{s: s, data: data, from: m.From}
			_ = n.rn.Step(m)
		})
	}()
}

// fetchBackoff bounds how often a backup fetches its primary's snapshot
// again after a failure (a snapshot that does not verify would otherwise be
// fetched at every heartbeat): from the first to the last, doubling.
const (
	fetchBackoffFirst = 100 * time.Millisecond
	fetchBackoffLast  = 10 * time.Second
)

// fetchBackoff is the backup's wait before its next fetch. Used only by
// the one fetch in progress (Node.fetching).
type fetchBackoff struct {
	wait      time.Duration
	notBefore time.Time
}

// fetchFailed delays the next fetch.
func (n *Node) fetchFailed() {
	b := &n.fetchRetry
	b.wait = min(max(2*b.wait, fetchBackoffFirst), fetchBackoffLast)
	b.notBefore = n.cfg.Now().Add(b.wait)
}

// installReceived installs the snapshot Raft's Ready carries: the one
// receiveSnapshot verified (see above for the steps and their crash
// windows). On the loop, before the Ready's entries.
func (n *Node) installReceived(rs raftpb.Snapshot) error {
	in := n.incoming
	n.incoming = nil
	if in == nil || in.s.Seqno != rs.Metadata.Index || in.s.View != rs.Metadata.Term {
		return fmt.Errorf("node: Raft installs a snapshot at %d.%d that this node did not verify", rs.Metadata.Term, rs.Metadata.Index)
	}
	s, fsys, dir := in.s, n.cfg.FS, n.cfg.Dir
	name := SnapshotName(s.Seqno, s.EvidenceSeqno)
	// 1. The file, to serve, and the marker.
	if err := fsys.MkdirAll(filepath.Join(dir, snapshotDir), 0o700); err != nil {
		return err
	}
	if err := durable.WriteFileFS(fsys, filepath.Join(dir, snapshotDir, name), in.data, 0o600); err != nil {
		return err
	}
	if err := durable.WriteFileFS(fsys, filepath.Join(dir, installMarker), in.data, 0o600); err != nil {
		return err
	}
	// 2. The commit point.
	if err := durable.WriteFileFS(fsys, filepath.Join(dir, startupFile), in.data, 0o600); err != nil {
		return err
	}
	// 3. The files.
	aside, err := asidePath(fsys, dir, s.Seqno)
	if err != nil {
		return err
	}
	if err := n.ledger.Replace(aside, s.Seqno+1); err != nil {
		return err
	}
	if err := n.tree.Replace(fsys, filepath.Join(dir, "merkle.tree"), s.Seqno+1, s.edgeAfter()); err != nil {
		return err
	}
	if err := n.sigs.Reset(); err != nil {
		return err
	}
	if err := n.sigs.Append(s.Seqno); err != nil {
		return err
	}
	if err := n.sigs.Flush(); err != nil {
		return err
	}
	if err := n.sigs.Sync(); err != nil {
		return err
	}
	if err := removeDurably(fsys, dir, "state.checkpoint"); err != nil {
		return err
	}
	n.storage.SetSnapshot(s.Seqno, s.View)
	if err := n.commitStartupRaft(s, rs.Metadata.ConfState); err != nil {
		return err
	}
	// 4. Done.
	if err := removeDurably(fsys, dir, installMarker); err != nil {
		return err
	}
	// The node's memory: the state at S, reads from S+1, commit S.
	n.state.restore(s.body.State)
	n.sigCache.reset()
	n.startup = s
	n.base.Store(&snapshotBase{seqno: s.Seqno, views: s.body.Views})
	n.forgetProposals()
	n.dropPending()
	n.lastSig, n.txsSinceSig, n.raftCommit = s.Seqno, 0, s.Seqno
	n.sinceSnap, n.bytesSinceSnap = 0, 0
	n.lastSeqno.Store(s.Seqno)
	n.publishCommit(s.Seqno)
	n.publishRaftInfo()
	n.log.Info("installed the primary's snapshot", "snapshot", name, "seqno", s.Seqno, "view", s.View, "from", in.from,
		"ledger_from", s.Seqno+1, "previous_ledger", aside)
	n.pruneAside()
	return nil
}

// commitStartupRaft makes Raft's durable state commit the snapshot s
// unless it already does: its commit point S, its term at least S's view
// (its vote kept in the same term), and the configuration cs at S (no
// later one can be recorded: configurations are recorded once committed,
// and this node's commit point was before S).
func (n *Node) commitStartupRaft(s *Snapshot, cs raftpb.ConfState) error {
	hs := n.storage.State().Hard
	if hs.Commit >= s.Seqno {
		return nil
	}
	if err := n.storage.SetConfState(cs, s.body.ConfIndex); err != nil {
		return err
	}
	if hs.Term < s.View {
		hs.Term, hs.Vote = s.View, 0
	}
	hs.Commit = s.Seqno
	return n.storage.SetHardState(hs, true)
}

// asidePrefix names the directories, in Dir, of the ledgers that
// snapshots from the primary replaced: asidePrefix+S, or +S.I if that
// exists (asidePath).
const asidePrefix = "ledger.before-snapshot-"

// parseAsideName parses the name of a ledger set aside at an install.
func parseAsideName(name string) (uint64, bool) {
	rest, ok := strings.CutPrefix(name, asidePrefix)
	if !ok {
		return 0, false
	}
	num, suffix, dotted := strings.Cut(rest, ".")
	if dotted {
		i, err := strconv.Atoi(suffix)
		if err != nil || i < 1 || strconv.Itoa(i) != suffix {
			return 0, false
		}
	}
	s, err := strconv.ParseUint(num, 10, 64)
	if err != nil || s == 0 || strconv.FormatUint(s, 10) != num {
		return 0, false
	}
	return s, true
}

// pruneAside removes the ledgers set aside at installs before the one of
// the snapshot this node starts from, keeping that install's (the policy:
// one previous ledger kept for the operator, the latest; disk use bounded).
// Nothing removed is served or audited: reads, receipts, the committed
// chunks sent to --fetch-history joiners (ledgerd's /ledgerd/node/ledger-
// chunks) and ledgerctl audit use ledger/ alone, which holds S+1 onwards,
// and the snapshot at S vouches for what is before. Run after an install
// and at every start (a crash may have stopped an earlier pruning: the
// directories are of no use to the node, partly removed or not). Failures
// are logged, never fatal.
func (n *Node) pruneAside() {
	if n.startup == nil {
		return
	}
	fsys, dir := n.cfg.FS, n.cfg.Dir
	ents, err := fsys.ReadDir(dir)
	if err != nil {
		n.log.Warn("couldn't list the data directory for old ledgers set aside", "err", err)
		return
	}
	removed := false
	for _, e := range ents {
		s, ok := parseAsideName(e.Name())
		if !ok || !e.IsDir() || s >= n.startup.Seqno {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if err := removeTree(fsys, p); err != nil {
			n.log.Warn("couldn't remove a ledger set aside at an earlier snapshot install", "dir", p, "err", err)
			continue
		}
		removed = true
		n.log.Info("removed the ledger set aside at an earlier snapshot install", "dir", p, "snapshot", s, "kept_from", n.startup.Seqno)
	}
	if removed {
		if err := durable.SyncDirFS(fsys, dir); err != nil {
			n.log.Warn("couldn't sync the data directory", "err", err)
		}
	}
}

// removeTree removes the directory p and everything in it.
func removeTree(fsys durable.FS, p string) error {
	ents, err := fsys.ReadDir(p)
	if err != nil {
		return err
	}
	for _, e := range ents {
		q := filepath.Join(p, e.Name())
		if e.IsDir() {
			err = removeTree(fsys, q)
		} else {
			err = fsys.Remove(q)
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return fsys.Remove(p)
}

// asidePath is a new name in dir for the ledger a snapshot at seqno
// replaces.
func asidePath(fsys durable.FS, dir string, seqno uint64) (string, error) {
	base := filepath.Join(dir, asidePrefix+strconv.FormatUint(seqno, 10))
	for i := 0; ; i++ {
		p := base
		if i > 0 {
			p += "." + strconv.Itoa(i)
		}
		_, err := fsys.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return p, nil
		}
		if err != nil {
			return "", err
		}
	}
}

// removeDurably removes dir/name (if it exists) and syncs dir.
func removeDurably(fsys durable.FS, dir, name string) error {
	if err := fsys.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return durable.SyncDirFS(fsys, dir)
}

// finishInterruptedInstall completes, before Open opens the files, an
// install of a snapshot from the primary that a crash interrupted after its
// commit point (startup.snapshot is the marker's snapshot), or forgets one
// interrupted before it. Raft's hard state is set from the startup snapshot
// once the files are open (setUpStartupRaft); the marker is removed then
// (installDone).
func (n *Node) finishInterruptedInstall() (pending bool, err error) {
	fsys, dir := n.cfg.FS, n.cfg.Dir
	marker, err := durable.ReadFile(fsys, filepath.Join(dir, installMarker))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	startup, err := durable.ReadFile(fsys, filepath.Join(dir, startupFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	if err != nil || !bytes.Equal(marker, startup) {
		n.log.Warn("a snapshot install from the primary was interrupted before it took effect; starting from the state before it")
		return false, removeDurably(fsys, dir, installMarker)
	}
	s, err := ParseSnapshot(startup) // verified when loaded, next
	if err != nil {
		return false, err
	}
	n.log.Warn("a snapshot install from the primary was interrupted after it took effect; finishing it", "seqno", s.Seqno)
	ledgerDir := filepath.Join(dir, "ledger")
	ents, err := fsys.ReadDir(ledgerDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	held := false
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "ledger_") {
			held = true
		}
	}
	if held {
		// The install's own directory: it may hold the files moved
		// before the crash.
		aside := filepath.Join(dir, asidePrefix+strconv.FormatUint(s.Seqno, 10))
		if err := ledger.MoveAside(fsys, ledgerDir, aside); err != nil {
			return false, err
		}
	}
	for _, f := range []string{"merkle.tree", "merkle.tree.base", "signatures.idx", "state.checkpoint"} {
		if err := fsys.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, err
		}
	}
	return true, durable.SyncDirFS(fsys, dir)
}

// installDone removes the marker of an install finished at Open.
func (n *Node) installDone() error { return removeDurably(n.cfg.FS, n.cfg.Dir, installMarker) }

// InstallingSnapshot reports whether the data directory dir holds the
// marker of a snapshot install from the primary not finished yet (for
// tests).
func InstallingSnapshot(fsys durable.FS, dir string) bool {
	_, err := durable.Or(fsys).Stat(filepath.Join(dir, installMarker))
	return err == nil
}
