package node

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/ledgerd/ledgerd/internal/consensus"
	"github.com/ledgerd/ledgerd/internal/durable"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/merkle"
	"github.com/ledgerd/ledgerd/internal/tables"
	"github.com/ledgerd/ledgerd/receipt"
)

// CCF snapshots.
//
// Every node takes a snapshot at the first committed signature S of each
// window of Config.SnapshotTxInterval seqnos (S / interval > previous
// signature / interval: the same seqnos on every node, from the ledger
// alone), and also at the first signature after a trigger_snapshot
// transaction (tables.SnapshotTriggerMap: every node sees it in the ledger).
// The signature that will be snapshotted ends its chunk (CCF: a snapshot
// starts a new ledger file), so a node that starts from the snapshot writes
// the chunk files the others write. A snapshot is the committed state at S
// (the checkpoint's serialisation: maps, query index, rekeys), the Merkle
// tree's right edge at S and leaf S, the signature transaction at S, the
// Raft configuration at S and the view history up to S: what a node needs to
// go on from S+1.
//
// The primary then records the snapshot's evidence (CCF's
// public:ccf.internal.snapshot_evidence: SHA-256 of the snapshot and S) in
// a transaction at E whose claims digest is that SHA-256. Once E is
// committed under a signature, each node whose own snapshot at S has that
// digest (the bytes are deterministic) appends E's receipt and writes
// Dir/snapshots/snapshot_S_E.committed (CCF's name). Until then the snapshot
// is pending: in memory and, as CCF writes its uncommitted snapshots, in
// Dir/snapshots/snapshot_S.pending (the body without a receipt), so that a
// node that stops or crashes before the evidence is committed finds it again
// at its next start (restorePendingSnapshots) and commits it once it finds
// the evidence committed in its ledger, with a digest equal to the file's:
// the evidence, which the primary computed over its own bytes, is what makes
// the file trusted, never the file itself.
// VerifySnapshot checks a committed file against the service certificate
// alone.

// snapshotDir is the directory of committed snapshot files, in Dir.
const snapshotDir = "snapshots"

// File layout: magic, u32 big-endian length and the body (JSON), u32
// big-endian length and E's receipt (JSON; length 0 in no file written).
// The evidence digest is SHA-256 of the body.
var snapshotMagic = []byte("LDSNAP\x00\x01")

// Bounds on untrusted input.
const (
	maxSnapshotBody    = 1 << 30
	maxSnapshotPending = 5 // CCF's max_pending_snapshots_count
)

// snapshotBody is what a snapshot holds. Its JSON is deterministic (sorted
// maps, Go's sorted map keys), so every node serialises the same bytes.
type snapshotBody struct {
	Format    int                     `json:"format"`
	Seqno     uint64                  `json:"seqno"`
	View      uint64                  `json:"view"`
	Frontier  []string                `json:"frontier"` // right edge of the tree of leaves [0, Seqno)
	Leaf      string                  `json:"leaf"`     // leaf Seqno: the signature transaction's
	Signature tables.PrimarySignature `json:"signature"`
	Voters    []uint64                `json:"voters"`
	Learners  []uint64                `json:"learners,omitempty"`
	ConfIndex uint64                  `json:"conf_index"`
	Views     []ledger.ViewStart      `json:"views"`
	State     *checkpointFile         `json:"state"`
}

// Snapshot is a parsed snapshot file (ParseSnapshot), verified if
// VerifySnapshot returned it.
type Snapshot struct {
	Seqno         uint64 // the state's seqno S (a signature transaction)
	View          uint64 // its view
	EvidenceSeqno uint64 // E, the evidence transaction's seqno (0 if uncommitted)
	Digest        [32]byte
	Receipt       *receipt.Receipt // E's receipt, nil if uncommitted

	body     snapshotBody
	frontier *merkle.Frontier // of the tree of leaves [0, Seqno)
	leaf     merkle.Hash      // leaf Seqno
	bodyRaw  []byte
}

// Errors of snapshot files.
var (
	// ErrSnapshotMalformed: the bytes are not a snapshot file.
	ErrSnapshotMalformed = errors.New("node: malformed snapshot")
	// ErrSnapshotUnverified: the snapshot does not verify against the
	// service certificate.
	ErrSnapshotUnverified = errors.New("node: snapshot does not verify")
	// ErrNoSnapshot: this node has no committed snapshot.
	ErrNoSnapshot = errors.New("node: no committed snapshot")
)

func snapErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrSnapshotMalformed, fmt.Sprintf(format, args...))
}

// frameSnapshot serialises a snapshot file.
func frameSnapshot(body, rc []byte) []byte {
	out := make([]byte, 0, len(snapshotMagic)+8+len(body)+len(rc))
	out = append(out, snapshotMagic...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(body)))
	out = append(out, body...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(rc)))
	return append(out, rc...)
}

// ParseSnapshot parses a snapshot file (untrusted bytes) and checks its
// shape; it verifies nothing cryptographically (see VerifySnapshot).
func ParseSnapshot(data []byte) (*Snapshot, error) {
	if !bytes.HasPrefix(data, snapshotMagic) {
		return nil, snapErr("not a ledgerd snapshot file")
	}
	rest := data[len(snapshotMagic):]
	take := func(what string, limit int) ([]byte, error) {
		if len(rest) < 4 {
			return nil, snapErr("truncated before the %s length", what)
		}
		n := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if uint64(n) > uint64(limit) || uint64(n) > uint64(len(rest)) {
			return nil, snapErr("%s of %d bytes: %d bytes left, at most %d allowed", what, n, len(rest), limit)
		}
		b := rest[:n]
		rest = rest[n:]
		return b, nil
	}
	bodyRaw, err := take("body", maxSnapshotBody)
	if err != nil {
		return nil, err
	}
	rcRaw, err := take("receipt", receipt.MaxSize)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, snapErr("%d bytes after the receipt", len(rest))
	}
	s := &Snapshot{Digest: sha256.Sum256(bodyRaw), bodyRaw: bodyRaw}
	dec := json.NewDecoder(bytes.NewReader(bodyRaw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s.body); err != nil {
		return nil, snapErr("body: %v", err)
	}
	if dec.More() {
		return nil, snapErr("body: data after the JSON object")
	}
	if err := s.checkBody(); err != nil {
		return nil, err
	}
	if len(rcRaw) > 0 {
		rc, err := receipt.Parse(rcRaw)
		if err != nil {
			return nil, snapErr("receipt: %v", err)
		}
		_, e, err := rc.TransactionID()
		if err != nil {
			return nil, snapErr("receipt: %v", err)
		}
		if e <= s.Seqno {
			return nil, snapErr("evidence at %d is not after the snapshot's seqno %d", e, s.Seqno)
		}
		s.Receipt, s.EvidenceSeqno = rc, e
	}
	return s, nil
}

func (s *Snapshot) checkBody() error {
	b := &s.body
	switch {
	case b.Format != 1:
		return snapErr("format %d, want 1", b.Format)
	case b.Seqno == 0 || b.Seqno >= merkle.MaxSize:
		return snapErr("seqno %d out of range", b.Seqno)
	case b.State == nil || b.State.Version != 1 || b.State.Applied != b.Seqno || b.State.AppliedView != b.View:
		return snapErr("the state is not the state at seqno %d", b.Seqno)
	case b.State.TreeSize != b.Seqno+1 || b.State.AppliedLeaf != b.Leaf:
		// Every node must serialise the same bytes: nothing of its own.
		return snapErr("the state's tree (%d leaves, leaf %q) is not the tree at seqno %d", b.State.TreeSize, b.State.AppliedLeaf, b.Seqno)
	case b.Signature.Seqno != b.Seqno || b.Signature.View != b.View:
		return snapErr("the signature is at %d.%d, not at the snapshot's %d.%d", b.Signature.View, b.Signature.Seqno, b.View, b.Seqno)
	case b.ConfIndex > b.Seqno || len(b.Voters) == 0:
		return snapErr("no Raft configuration at %d", b.Seqno)
	case len(b.Views) == 0 || b.Views[0].Seqno != 1 || b.Views[len(b.Views)-1].View != b.View:
		return snapErr("the view history does not lead from seqno 1 to view %d", b.View)
	}
	for i := 1; i < len(b.Views); i++ {
		if b.Views[i].Seqno <= b.Views[i-1].Seqno || b.Views[i].View <= b.Views[i-1].View || b.Views[i].Seqno > b.Seqno {
			return snapErr("view history out of order at %d", i)
		}
	}
	hashes := make([]merkle.Hash, len(b.Frontier))
	for i, h := range b.Frontier {
		if err := decodeHash(h, &hashes[i]); err != nil {
			return snapErr("frontier hash %d: %v", i, err)
		}
	}
	f, err := merkle.FrontierOf(b.Seqno, hashes)
	if err != nil {
		return snapErr("%v", err)
	}
	if err := decodeHash(b.Leaf, &s.leaf); err != nil {
		return snapErr("leaf: %v", err)
	}
	s.frontier, s.Seqno, s.View = f, b.Seqno, b.View
	return nil
}

func decodeHash(s string, h *merkle.Hash) error {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) {
		return fmt.Errorf("%q is not a hex SHA-256", s)
	}
	copy(h[:], b)
	return nil
}

// VerifySnapshot parses a snapshot file and verifies it against the
// service certificate alone: the evidence transaction's receipt verifies
// (a node endorsed by the service signed the root it folds to); its claims
// digest is SHA-256 of the snapshot's body, so the service recorded exactly
// these bytes; and the Merkle tree's right edge in the snapshot gives the
// root that the signature transaction at the snapshot's seqno signed, with
// a node certificate the service endorses. An uncommitted snapshot (no
// receipt) does not verify.
func VerifySnapshot(data []byte, service *x509.Certificate) (*Snapshot, error) {
	s, err := ParseSnapshot(data)
	if err != nil {
		return nil, err
	}
	if s.Receipt == nil {
		return nil, fmt.Errorf("%w: no receipt of its evidence (an uncommitted snapshot)", ErrSnapshotUnverified)
	}
	if err := s.Receipt.Verify(service); err != nil {
		return nil, fmt.Errorf("%w: the receipt of its evidence: %v", ErrSnapshotUnverified, err)
	}
	if got := s.Receipt.LeafComponents.ClaimsDigest; got != hex.EncodeToString(s.Digest[:]) {
		return nil, fmt.Errorf("%w: its evidence records digest %s, its bytes hash to %x", ErrSnapshotUnverified, got, s.Digest)
	}
	if err := tables.VerifySignature(&s.body.Signature, s.frontier.Root(), service); err != nil {
		return nil, fmt.Errorf("%w: its Merkle tree against the signature at %d: %v", ErrSnapshotUnverified, s.Seqno, err)
	}
	return s, nil
}

// SnapshotName is CCF's name of a committed snapshot file.
func SnapshotName(seqno, evidence uint64) string {
	return fmt.Sprintf("snapshot_%d_%d.committed", seqno, evidence)
}

// ParseSnapshotName parses a committed snapshot file's name.
func ParseSnapshotName(name string) (seqno, evidence uint64, ok bool) {
	rest, found := strings.CutPrefix(name, "snapshot_")
	if !found {
		return 0, 0, false
	}
	rest, found = strings.CutSuffix(rest, ".committed")
	if !found {
		return 0, 0, false
	}
	a, b, found := strings.Cut(rest, "_")
	if !found {
		return 0, 0, false
	}
	s, err1 := strconv.ParseUint(a, 10, 64)
	e, err2 := strconv.ParseUint(b, 10, 64)
	if err1 != nil || err2 != nil || s == 0 || e <= s || strconv.FormatUint(s, 10) != a || strconv.FormatUint(e, 10) != b {
		return 0, 0, false
	}
	return s, e, true
}

// pendingName is the file, in Dir/snapshots, of a snapshot taken whose
// evidence is not committed yet: its body, framed as a committed file but
// with no receipt.
func pendingName(seqno uint64) string { return fmt.Sprintf("snapshot_%d.pending", seqno) }

// parsePendingName parses a pending snapshot file's name.
func parsePendingName(name string) (uint64, bool) {
	rest, ok := strings.CutPrefix(name, "snapshot_")
	if !ok {
		return 0, false
	}
	if rest, ok = strings.CutSuffix(rest, ".pending"); !ok {
		return 0, false
	}
	s, err := strconv.ParseUint(rest, 10, 64)
	if err != nil || s == 0 || strconv.FormatUint(s, 10) != rest {
		return 0, false
	}
	return s, true
}

// pendingSnapshot is a snapshot taken whose evidence is not committed yet.
type pendingSnapshot struct {
	seqno    uint64
	digest   [32]byte
	body     []byte
	evidence uint64 // seqno of its evidence transaction, once seen
}

// RequestSnapshot makes the primary take a snapshot at its next signature
// (this node only; trigger_snapshot also writes tables.SnapshotTriggerWrites,
// which makes every node take it).
func (n *Node) RequestSnapshot() { n.snapshotRequested.Store(true) }

// snapshotPoint reports whether the signature at seqno, whose previous
// signature is at prev, is a snapshot's seqno by the interval rule.
func (n *Node) snapshotPoint(seqno, prev uint64) bool {
	i := uint64(max(n.cfg.SnapshotTxInterval, 0))
	return i > 0 && seqno/i > prev/i
}

// snapshotPointsIn returns the snapshot seqnos among the signatures in
// (from, to], from being a signature (the commit point).
func (n *Node) snapshotPointsIn(from, to uint64) []uint64 {
	req := n.snapshotRequestedAt
	i := uint64(max(n.cfg.SnapshotTxInterval, 0))
	// trigger_snapshot's transactions up to the commit point are done with.
	k := 0
	for k < len(n.snapshotTriggers) && n.snapshotTriggers[k] <= from {
		k++
	}
	n.snapshotTriggers = n.snapshotTriggers[k:]
	triggered := len(n.snapshotTriggers) > 0 && n.snapshotTriggers[0] < to
	if (i == 0 || to/i == from/i) && (req <= from || req > to) && !triggered {
		return nil
	}
	var out []uint64
	prev := from
	for s := from; ; {
		next, ok, err := n.sigs.FirstAfter(s)
		if err != nil || !ok || next > to {
			break
		}
		if n.snapshotPoint(next, prev) || next == req || n.triggeredIn(prev, next) {
			out = append(out, next)
		}
		prev, s = next, next
	}
	return out
}

// triggeredIn reports whether a trigger_snapshot transaction lies between
// the signatures prev and next: next is a snapshot's seqno on every node.
func (n *Node) triggeredIn(prev, next uint64) bool {
	for _, t := range n.snapshotTriggers {
		if t > prev && t < next {
			return true
		}
	}
	return false
}

// noteSnapshotTrigger records a trigger_snapshot transaction appended to
// the log (every node: the snapshot is taken at the first signature after
// it, CCF's trigger_snapshot on every node rather than the primary alone).
// A rollback forgets those it drops (rollback).
func (n *Node) noteSnapshotTrigger(seqno uint64) {
	for len(n.snapshotTriggers) > 0 && n.snapshotTriggers[len(n.snapshotTriggers)-1] >= seqno {
		n.snapshotTriggers = n.snapshotTriggers[:len(n.snapshotTriggers)-1]
	}
	n.snapshotTriggers = append(n.snapshotTriggers, seqno)
}

// takeSnapshot snapshots the committed state, which is at the signature
// at seqno, and has the primary record its evidence.
func (n *Node) takeSnapshot(seqno uint64) {
	if seqno <= n.previousEnd() {
		// The previous service's part of a recovered ledger, replayed by a
		// node that joined while it was being recovered: its state here is
		// not the one that service snapshotted.
		return
	}
	body, err := n.snapshotBody(seqno)
	if err != nil {
		n.log.Warn("couldn't take a snapshot", "seqno", seqno, "err", err)
		return
	}
	p := &pendingSnapshot{seqno: seqno, digest: sha256.Sum256(body), body: body}
	if err := n.writePending(p); err != nil {
		// Kept in memory all the same: only a restart before its evidence
		// commits loses it.
		n.log.Warn("couldn't write a pending snapshot; a restart before its evidence commits loses it", "seqno", seqno, "err", err)
	}
	n.addPending(p)
	n.log.Info("snapshot taken", "seqno", seqno, "bytes", len(body), "digest", hex.EncodeToString(p.digest[:]))
	for _, ev := range n.evidenceSeen {
		if ev.version == seqno && ev.seqno <= n.ledger.LastSeqno() {
			n.matchEvidence(ev.seqno, ev.version, ev.hash)
		}
	}
	if n.isPrimary.Load() {
		ev := &proposal{writes: tables.SnapshotEvidenceWrites(p.digest, seqno), claims: p.digest, fut: newFuture()}
		n.qmu.Lock()
		n.queue = append(n.queue, ev)
		n.qmu.Unlock()
		n.signalQueue()
	}
}

// snapshotBody serialises the committed state, which must be at seqno.
func (n *Node) snapshotBody(seqno uint64) ([]byte, error) {
	st := n.storage.State()
	if st.ConfIndex > seqno {
		return nil, fmt.Errorf("the Raft configuration changed at %d, after the snapshot's seqno", st.ConfIndex)
	}
	cp, err := n.snapshotState()
	if err != nil {
		return nil, err
	}
	if cp == nil || cp.Applied != seqno {
		return nil, fmt.Errorf("the committed state is not at %d", seqno)
	}
	cp.TreeSize = seqno + 1 // the checkpoint's is this node's tree now: not the same on every node
	edge, err := n.tree.Edge(seqno)
	if err != nil {
		return nil, err
	}
	leaf, err := n.tree.Leaf(seqno)
	if err != nil {
		return nil, err
	}
	ps, err := n.signatureAt(seqno)
	if err != nil {
		return nil, err
	}
	b := snapshotBody{
		Format: 1, Seqno: seqno, View: cp.AppliedView, Leaf: hex.EncodeToString(leaf[:]), Signature: *ps,
		Voters: slices.Sorted(slices.Values(st.Conf.Voters)), Learners: slices.Sorted(slices.Values(st.Conf.Learners)),
		ConfIndex: st.ConfIndex, Views: n.viewsUpTo(seqno), State: cp,
	}
	for _, h := range edge {
		b.Frontier = append(b.Frontier, hex.EncodeToString(h[:]))
	}
	return json.Marshal(b)
}

// viewsUpTo is the view history of the seqnos up to last.
func (n *Node) viewsUpTo(last uint64) []ledger.ViewStart {
	var views []ledger.ViewStart
	if b := n.base.Load(); b != nil {
		views = append(views, b.views...)
	}
	for _, v := range n.ledger.Views(last) {
		if len(views) == 0 || v.View > views[len(views)-1].View {
			views = append(views, v)
		}
	}
	return views
}

// noteSnapshotEvidence matches an evidence transaction appended to the log
// with this node's pending snapshot of that seqno.
func (n *Node) noteSnapshotEvidence(e *ledger.Entry) {
	d, err := e.PublicDomain()
	if err != nil {
		return
	}
	if tables.TriggersSnapshot(d.Maps) {
		n.noteSnapshotTrigger(e.Seqno)
	}
	n.noteRecoveredSecrets(e, d)
	hash, version, ok, err := tables.SnapshotEvidenceOf(d.Maps)
	if err != nil || !ok || d.ClaimsDigest != hash {
		return
	}
	// A backup may append the evidence before it learns that S is
	// committed (both in one message): the snapshot taken then finds it.
	n.evidenceSeen = append(n.evidenceSeen, seenEvidence{seqno: e.Seqno, version: version, hash: hash})
	if k := len(n.evidenceSeen) - maxSnapshotPending; k > 0 {
		n.evidenceSeen = slices.Delete(n.evidenceSeen, 0, k)
	}
	n.matchEvidence(e.Seqno, version, hash)
}

// seenEvidence is an evidence transaction appended to the log.
type seenEvidence struct {
	seqno, version uint64
	hash           [32]byte
}

// matchEvidence gives the pending snapshot of version its evidence at
// seqno, or drops it if the digests differ.
func (n *Node) matchEvidence(seqno, version uint64, hash [32]byte) {
	for i, p := range n.pendingSnaps {
		if p.seqno != version {
			continue
		}
		if p.digest != hash {
			n.log.Warn("this node's snapshot differs from the one whose evidence the primary recorded; dropping it", "seqno", version, "evidence", seqno)
			n.pendingSnaps = slices.Delete(n.pendingSnaps, i, i+1)
			n.removePending(p.seqno)
			return
		}
		p.evidence = seqno
		return
	}
}

// completeSnapshots writes the snapshots whose evidence is committed
// (at or below the commit point), each with its evidence's receipt.
func (n *Node) completeSnapshots(committed uint64) {
	kept := n.pendingSnaps[:0]
	var wrote uint64 // the latest snapshot written
	for _, p := range n.pendingSnaps {
		if p.evidence == 0 || p.evidence > committed {
			kept = append(kept, p)
			continue
		}
		if err := n.writeSnapshot(p); err != nil {
			n.log.Warn("couldn't complete a snapshot", "seqno", p.seqno, "evidence", p.evidence, "err", err)
			if p.evidence == 0 {
				kept = append(kept, p) // its evidence was rolled back: it may come again
			}
			// Else dropped from memory; its file, if written, is tried
			// again at the next start.
			continue
		}
		n.removePending(p.seqno)
		wrote = max(wrote, p.seqno)
	}
	// Pending snapshots older than one committed are of no more use.
	older := kept[:0]
	for _, p := range kept {
		if p.seqno < wrote {
			n.removePending(p.seqno)
			continue
		}
		older = append(older, p)
	}
	clear(n.pendingSnaps[len(older):])
	n.pendingSnaps = older
	if wrote != 0 {
		n.pruneSnapshots()
	}
}

// addPending adds a pending snapshot, dropping the oldest beyond
// maxSnapshotPending (CCF's max_pending_snapshots_count).
func (n *Node) addPending(p *pendingSnapshot) {
	n.pendingSnaps = append(n.pendingSnaps, p)
	if k := len(n.pendingSnaps) - maxSnapshotPending; k > 0 {
		for _, old := range n.pendingSnaps[:k] {
			n.removePending(old.seqno)
		}
		n.pendingSnaps = slices.Delete(n.pendingSnaps, 0, k)
	}
}

// writePending writes a pending snapshot's file, durably.
func (n *Node) writePending(p *pendingSnapshot) error {
	dir := filepath.Join(n.cfg.Dir, snapshotDir)
	if err := n.cfg.FS.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return durable.WriteFileFS(n.cfg.FS, filepath.Join(dir, pendingName(p.seqno)), frameSnapshot(p.body, nil), 0o600)
}

// removePending removes a pending snapshot's file. Not made durable: a file
// that comes back after a crash is checked, and dropped, at the next start.
func (n *Node) removePending(seqno uint64) {
	err := n.cfg.FS.Remove(filepath.Join(n.cfg.Dir, snapshotDir, pendingName(seqno)))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		n.log.Warn("couldn't remove a pending snapshot file", "seqno", seqno, "err", err)
	}
}

// dropPending forgets every pending snapshot, and their files (a snapshot
// from the primary replaced the state they were taken of).
func (n *Node) dropPending() {
	for _, p := range n.pendingSnaps {
		n.removePending(p.seqno)
	}
	n.pendingSnaps, n.evidenceSeen = nil, nil
	if names, err := pendingFiles(n.cfg.FS, n.cfg.Dir); err == nil {
		for _, f := range names {
			n.removePending(f.seqno)
		}
	}
}

// pendingFile is a pending snapshot file found in Dir/snapshots.
type pendingFile struct {
	name  string
	seqno uint64
}

// pendingFiles lists the pending snapshot files, oldest first.
func pendingFiles(fsys durable.FS, dir string) ([]pendingFile, error) {
	ents, err := fsys.ReadDir(filepath.Join(dir, snapshotDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []pendingFile
	for _, d := range ents {
		if s, ok := parsePendingName(d.Name()); ok && d.Type().IsRegular() {
			out = append(out, pendingFile{d.Name(), s})
		}
	}
	slices.SortFunc(out, func(a, b pendingFile) int { return cmpU(a.seqno, b.seqno) })
	return out, nil
}

// restorePendingSnapshots, at start (after recover, before the loop),
// takes back the snapshots a previous run took and whose evidence was not
// committed when it stopped (Dir/snapshots/snapshot_S.pending), the way
// CCF's nodes find their uncommitted snapshots at start. Nothing in such a
// file is trusted: it is dropped unless it parses as a snapshot of S with
// no receipt, S is at or below the commit point and after the latest
// committed snapshot, and its leaf at S is this ledger's; and it is
// committed only as a snapshot taken live is, once an evidence transaction
// whose digest is SHA-256 of its body is committed (found now by scanning
// the ledger after S, or appended later). A body that differs from the one
// the evidence records is dropped (matchEvidence). A snapshot whose
// evidence was never recorded (the primary stopped first) waits, as one
// taken live does, until a later snapshot is committed or
// maxSnapshotPending newer ones are taken.
func (n *Node) restorePendingSnapshots() {
	files, err := pendingFiles(n.cfg.FS, n.cfg.Dir)
	if err != nil {
		n.log.Warn("couldn't list the pending snapshots", "err", err)
		return
	}
	if len(files) == 0 {
		return
	}
	var latest uint64
	if names, err := committedSnapshots(n.cfg.FS, n.cfg.Dir); err == nil && len(names) > 0 {
		latest, _, _ = ParseSnapshotName(names[len(names)-1])
	}
	committed := n.committed.Load()
	for _, f := range files {
		drop := func(why string, args ...any) {
			n.log.Warn("dropped a pending snapshot found at start: "+why, append([]any{"file", f.name}, args...)...)
			n.removePending(f.seqno)
		}
		if f.seqno <= latest {
			n.removePending(f.seqno) // a later snapshot is committed
			continue
		}
		if f.seqno > committed {
			drop("its seqno is beyond the commit point", "committed", committed)
			continue
		}
		b, err := durable.ReadFile(n.cfg.FS, filepath.Join(n.cfg.Dir, snapshotDir, f.name))
		if err != nil {
			drop("unreadable", "err", err)
			continue
		}
		s, err := ParseSnapshot(b)
		if err != nil {
			drop("malformed", "err", err)
			continue
		}
		if s.Seqno != f.seqno || s.Receipt != nil {
			drop("its contents do not match its name", "seqno", s.Seqno)
			continue
		}
		if leaf, err := n.tree.Leaf(s.Seqno); err != nil || leaf != s.leaf {
			drop("its leaf at its seqno is not this ledger's", "err", err)
			continue
		}
		n.addPending(&pendingSnapshot{seqno: s.Seqno, digest: s.Digest, body: s.bodyRaw})
	}
	if len(n.pendingSnaps) == 0 {
		return
	}
	// Their evidence, if the ledger holds it.
	from, last := n.pendingSnaps[0].seqno+1, n.ledger.LastSeqno()
	if from <= last {
		err := n.ledger.Range(from, last, func(s uint64, raw []byte) error {
			if !bytes.Contains(raw, []byte(tables.SnapshotEvidenceMap)) {
				return nil
			}
			e, err := ledger.ParseEntry(raw)
			if err != nil || !consensus.HasPublicMaps(e) {
				return nil
			}
			d, err := e.PublicDomain()
			if err != nil {
				return nil
			}
			hash, version, ok, err := tables.SnapshotEvidenceOf(d.Maps)
			if err != nil || !ok || d.ClaimsDigest != hash {
				return nil
			}
			n.matchEvidence(s, version, hash)
			return nil
		})
		if err != nil {
			n.log.Warn("couldn't scan the ledger for the pending snapshots' evidence", "err", err)
		}
	}
	for _, p := range n.pendingSnaps {
		n.log.Info("found a pending snapshot", "seqno", p.seqno, "evidence", p.evidence)
	}
	n.completeSnapshots(committed)
}

func (n *Node) writeSnapshot(p *pendingSnapshot) error {
	view, err := n.ledger.View(p.evidence)
	if err != nil {
		return err
	}
	rc, err := n.receipt(TxID{View: view, Seqno: p.evidence})
	if err != nil {
		return err
	}
	if rc.LeafComponents == nil || rc.LeafComponents.ClaimsDigest != hex.EncodeToString(p.digest[:]) {
		e := p.evidence
		p.evidence = 0 // rolled back and replaced: wait for the evidence again
		return fmt.Errorf("the transaction at %d is not this snapshot's evidence", e)
	}
	rcJSON, err := json.Marshal(rc)
	if err != nil {
		return err
	}
	dir := filepath.Join(n.cfg.Dir, snapshotDir)
	if err := n.cfg.FS.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	name := SnapshotName(p.seqno, p.evidence)
	if err := durable.WriteFileFS(n.cfg.FS, filepath.Join(dir, name), frameSnapshot(p.body, rcJSON), 0o600); err != nil {
		return err
	}
	n.log.Info("snapshot committed", "file", name)
	return nil
}

// committedSnapshots lists the committed snapshot files in Dir/snapshots,
// oldest first.
func committedSnapshots(fsys durable.FS, dir string) ([]string, error) {
	ents, err := fsys.ReadDir(filepath.Join(dir, snapshotDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	type named struct {
		name string
		s, e uint64
	}
	var out []named
	for _, d := range ents {
		if s, e, ok := ParseSnapshotName(d.Name()); ok && d.Type().IsRegular() {
			out = append(out, named{d.Name(), s, e})
		}
	}
	slices.SortFunc(out, func(a, b named) int {
		if a.s != b.s {
			return cmpU(a.s, b.s)
		}
		return cmpU(a.e, b.e)
	})
	names := make([]string, len(out))
	for i, x := range out {
		names[i] = x.name
	}
	return names, nil
}

func cmpU(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// pruneSnapshots removes the oldest committed snapshot files beyond
// Config.SnapshotsKept.
func (n *Node) pruneSnapshots() {
	names, err := committedSnapshots(n.cfg.FS, n.cfg.Dir)
	if err != nil {
		n.log.Warn("couldn't list the snapshots", "err", err)
		return
	}
	for len(names) > n.cfg.SnapshotsKept {
		if err := n.cfg.FS.Remove(filepath.Join(n.cfg.Dir, snapshotDir, names[0])); err != nil {
			n.log.Warn("couldn't remove an old snapshot", "file", names[0], "err", err)
		}
		names = names[1:]
	}
}

// LatestSnapshot returns the name and bytes of this node's latest
// committed snapshot file (ErrNoSnapshot if it has none). The bytes are as
// on disk: the caller verifies them (VerifySnapshot) before trusting them.
func (n *Node) LatestSnapshot() (string, []byte, error) {
	names, err := committedSnapshots(n.cfg.FS, n.cfg.Dir)
	if err != nil {
		return "", nil, err
	}
	if len(names) == 0 {
		return "", nil, ErrNoSnapshot
	}
	name := names[len(names)-1]
	b, err := durable.ReadFile(n.cfg.FS, filepath.Join(n.cfg.Dir, snapshotDir, name))
	return name, b, err
}

// Leaf returns the snapshot's leaf at its seqno (the signature
// transaction's), for comparison with a ledger that holds it.
func (s *Snapshot) Leaf() merkle.Hash { return s.leaf }

// SnapshotCheck is the result of CheckSnapshots for one file.
type SnapshotCheck struct {
	Name     string
	Snapshot *Snapshot // nil if Err
	Err      error
}

// CheckSnapshots verifies every committed snapshot file of the data
// directory dir against the service certificate (VerifySnapshot) and the
// file's name (its seqno and evidence seqno), and, where leaf is given
// (the audited ledger's leaf of a seqno, ok=false if the ledger does not
// hold it), that the snapshot's leaf at its seqno is the ledger's. It only
// reads.
func CheckSnapshots(dir string, service *x509.Certificate, leaf func(uint64) (merkle.Hash, bool)) ([]SnapshotCheck, error) {
	names, err := committedSnapshots(durable.OS, dir)
	if err != nil {
		return nil, err
	}
	out := make([]SnapshotCheck, 0, len(names))
	for _, name := range names {
		c := SnapshotCheck{Name: name}
		b, err := durable.ReadFile(durable.OS, filepath.Join(dir, snapshotDir, name))
		var s *Snapshot
		if err == nil {
			s, err = VerifySnapshot(b, service)
		}
		if err == nil {
			seqno, evidence, _ := ParseSnapshotName(name)
			if s.Seqno != seqno || s.EvidenceSeqno != evidence {
				err = fmt.Errorf("%w: the file holds seqno %d with evidence at %d, its name says %d and %d", ErrSnapshotUnverified, s.Seqno, s.EvidenceSeqno, seqno, evidence)
			}
		}
		if err == nil && leaf != nil {
			if l, ok := leaf(s.Seqno); ok && l != s.leaf {
				err = fmt.Errorf("%w: its leaf at %d is not the ledger's", ErrSnapshotUnverified, s.Seqno)
			}
		}
		if err != nil {
			c.Err = err
		} else {
			c.Snapshot = s
		}
		out = append(out, c)
	}
	return out, nil
}
