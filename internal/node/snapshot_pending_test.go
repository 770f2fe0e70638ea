package node_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/durable"
	"github.com/ledgerd/ledgerd/internal/durable/simdisk"
	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/node"
)

// cutFS is a simulated disk that cuts the power at a chosen point of the
// snapshot protocol: when a file whose name satisfies cutOpen is created
// (before it is), or a given number of disk operations after a rename to a
// name that satisfies cutAfterRename. The disk that survives is sent on
// survivor.
type cutFS struct {
	*simdisk.Disk
	mu             sync.Mutex
	cutOpen        func(name string) bool
	cutAfterRename func(name string) bool
	survivor       chan *simdisk.Disk
}

func newCutFS() *cutFS {
	return &cutFS{Disk: simdisk.New(simdisk.Options{}), survivor: make(chan *simdisk.Disk, 1)}
}

func (c *cutFS) OpenFile(name string, flag int, perm fs.FileMode) (durable.File, error) {
	c.mu.Lock()
	cut := c.cutOpen != nil && flag&os.O_CREATE != 0 && c.cutOpen(name)
	if cut {
		c.cutOpen = nil
	}
	c.mu.Unlock()
	if cut {
		c.survivor <- c.Disk.PowerCut()
		return nil, &fs.PathError{Op: "open", Path: name, Err: simdisk.ErrPowerCut}
	}
	return c.Disk.OpenFile(name, flag, perm)
}

func (c *cutFS) Rename(oldpath, newpath string) error {
	if err := c.Disk.Rename(oldpath, newpath); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cutAfterRename != nil && c.cutAfterRename(newpath) {
		c.cutAfterRename = nil
		// The rename's directory fsync is the next operation: cut at the
		// one after it.
		ch := c.Disk.CutAtOp(c.Disk.Ops() + 2)
		go func() { c.survivor <- <-ch }()
	}
	return nil
}

// diskFiles lists the names in dir on a simulated disk.
func diskFiles(t *testing.T, d durable.FS, dir string) []string {
	t.Helper()
	ents, err := d.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	return names
}

// committedAt returns the committed snapshot file of seqno s in names.
func committedAt(names []string, s uint64) string {
	for _, n := range names {
		if seqno, _, ok := node.ParseSnapshotName(n); ok && seqno == s {
			return n
		}
	}
	return ""
}

// pendingSeqno returns the seqno of the one pending snapshot file in names.
func pendingSeqno(t *testing.T, names []string) uint64 {
	t.Helper()
	var s uint64
	for _, n := range names {
		if rest, ok := strings.CutSuffix(n, ".pending"); ok {
			if s != 0 {
				t.Fatalf("two pending snapshots: %v", names)
			}
			v, err := strconv.ParseUint(strings.TrimPrefix(rest, "snapshot_"), 10, 64)
			if err != nil {
				t.Fatalf("pending file %s: %v", n, err)
			}
			s = v
		}
	}
	if s == 0 {
		t.Fatalf("no pending snapshot file: %v", names)
	}
	return s
}

// TestPendingSnapshotSurvivesACrash: a snapshot taken, whose evidence is
// committed, and the power cut before its committed file is written (CCF's
// uncommitted snapshot, renamed once its evidence commits). The node
// restarted on what survives finds the pending snapshot file, finds its
// evidence committed in the ledger, and writes snapshot_S_E.committed, which
// verifies against the service certificate. Without the pending file (kept
// only in memory, as before) the snapshot of S is never committed. Nothing
// in the file is trusted: a pending file whose body was changed differs from
// the digest the evidence records and is dropped; one whose evidence was
// never recorded (the power cut right after it was written) is never
// committed, and is removed once a later snapshot is.
func TestPendingSnapshotSurvivesACrash(t *testing.T) {
	ids, err := identity.LoadOrCreate(t.TempDir(), identity.Options{DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	const dir = "/data"
	snaps := path.Join(dir, "snapshots")
	open := func(fsys durable.FS) *node.Node {
		t.Helper()
		n, err := node.Open(node.Config{Dir: dir, FS: fsys, Identities: ids, Logger: quietLogger(), SnapshotTxInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// run takes a snapshot on a fresh disk and appends until the cut.
	run := func(c *cutFS) *simdisk.Disk {
		t.Helper()
		n := open(c)
		waitCommitted(t, n, appendEntry(t, n, "a", "before the snapshot"))
		n.RequestSnapshot()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for i := 0; ; i++ {
			select {
			case d := <-c.survivor:
				n.Close() // fails: the power is off
				return d
			case <-ctx.Done():
				t.Fatalf("no power cut in 30 s; snapshots: %v", diskFiles(t, c, snaps))
			default:
			}
			if f, err := n.SubmitEntry("a", []byte("entry")); err == nil {
				f.Wait(ctx)
			} else {
				time.Sleep(time.Millisecond) // the power is off: the cut is being sent
			}
		}
	}
	// waitCommittedFile appends on n until dir holds a committed snapshot
	// of seqno s, and returns its name.
	waitCommittedFile := func(n *node.Node, d durable.FS, s uint64) string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if name := committedAt(diskFiles(t, d, snaps), s); name != "" {
				return name
			}
			waitCommitted(t, n, appendEntry(t, n, "a", "after the restart"))
		}
		return ""
	}

	// 1. The power is cut as the committed file is about to be written:
	// the evidence is committed, the snapshot pending on disk.
	c := newCutFS()
	c.cutOpen = func(name string) bool {
		return strings.Contains(name, "snapshot_") && strings.Contains(name, ".committed")
	}
	cut := run(c)
	names := diskFiles(t, cut, snaps)
	s := pendingSeqno(t, names)
	if committedAt(names, s) != "" {
		t.Fatalf("the cut fell after the committed file was written: %v", names)
	}
	pendingPath := path.Join(snaps, "snapshot_"+strconv.FormatUint(s, 10)+".pending")

	// 1a. Restarted: the snapshot of S is committed.
	d := cut.Survivor()
	n := open(d)
	name := waitCommittedFile(n, d, s)
	if name == "" {
		t.Fatalf("the snapshot of %d pending at the crash was never committed after the restart: %v", s, diskFiles(t, d, snaps))
	}
	b, err := durable.ReadFile(d, path.Join(snaps, name))
	if err != nil {
		t.Fatal(err)
	}
	if vs, err := node.VerifySnapshot(b, ids.Service.Cert); err != nil || vs.Seqno != s {
		t.Fatalf("%s: %v", name, err)
	}
	if _, err := d.Stat(pendingPath); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the pending file is still there once committed: %v", err)
	}
	// What a joiner is sent is that file.
	if latest, got, err := n.LatestSnapshot(); err != nil || latest != name || !bytes.Equal(got, b) {
		t.Fatalf("LatestSnapshot: %s, %v", latest, err)
	}
	n.Close()

	// 1b. The same survivor, the pending file's body changed (valid JSON,
	// another hash in its Merkle tree edge): dropped, never committed.
	d = cut.Survivor()
	tamper(t, d, pendingPath)
	n = open(d)
	if _, err := d.Stat(pendingPath); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the tampered pending file is still there after the start: %v", err)
	}
	for range 5 {
		waitCommitted(t, n, appendEntry(t, n, "a", "after the restart"))
	}
	if name := committedAt(diskFiles(t, d, snaps), s); name != "" {
		t.Fatalf("a tampered pending snapshot was committed as %s", name)
	}
	n.Close()

	// 2. The power is cut right after the pending file is durable, before
	// the evidence is recorded: it is never committed, and is removed
	// once a later snapshot is.
	c = newCutFS()
	c.cutAfterRename = func(name string) bool { return strings.HasSuffix(name, ".pending") }
	cut = run(c)
	names = diskFiles(t, cut, snaps)
	s = pendingSeqno(t, names)
	pendingPath = path.Join(snaps, "snapshot_"+strconv.FormatUint(s, 10)+".pending")
	d = cut.Survivor()
	n = open(d)
	defer n.Close()
	for range 5 {
		waitCommitted(t, n, appendEntry(t, n, "a", "no evidence"))
	}
	if name := committedAt(diskFiles(t, d, snaps), s); name != "" {
		t.Fatalf("a snapshot whose evidence was never recorded was committed as %s", name)
	}
	n.RequestSnapshot()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, err := d.Stat(pendingPath); errors.Is(err, fs.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pending snapshot of %d stays after a later one is committed: %v", s, diskFiles(t, d, snaps))
		}
		waitCommitted(t, n, appendEntry(t, n, "a", "a later snapshot"))
	}
	if got := diskFiles(t, d, snaps); len(got) != 1 || committedAt(got, s) != "" {
		t.Fatalf("snapshots after a later one: %v", got)
	}
}

// tamper changes one hex digit of the Merkle tree edge in a snapshot file
// on d, keeping it a well-formed snapshot.
func tamper(t *testing.T, d *simdisk.Disk, p string) {
	t.Helper()
	b, err := durable.ReadFile(d, p)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte(`"frontier":["`))
	if i < 0 {
		t.Fatalf("no frontier in %s", p)
	}
	i += len(`"frontier":["`)
	if b[i] == '0' {
		b[i] = '1'
	} else {
		b[i] = '0'
	}
	if _, err := node.ParseSnapshot(b); err != nil {
		t.Fatalf("the tampered file does not parse: %v", err)
	}
	if err := durable.WriteFileFS(d, p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
