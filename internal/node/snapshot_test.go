package node_test

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/node"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// snapshotFiles lists the committed snapshot files of a data directory.
func snapshotFiles(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "snapshots"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if _, _, ok := node.ParseSnapshotName(e.Name()); ok {
			names = append(names, e.Name())
		}
	}
	slices.SortFunc(names, func(a, b string) int {
		sa, _, _ := node.ParseSnapshotName(a)
		sb, _, _ := node.ParseSnapshotName(b)
		return cmp.Compare(sa, sb)
	})
	return names
}

// waitSnapshots appends entries on n until dir holds at least k committed
// snapshot files.
func waitSnapshots(t testing.TB, n *node.Node, dir string, k int) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		if names := snapshotFiles(t, dir); len(names) >= k {
			return names
		}
		appendEntry(t, n, "c"+strconv.Itoa(i%3), "entry "+strconv.Itoa(i))
	}
	t.Fatalf("%s holds fewer than %d committed snapshots: %v", dir, k, snapshotFiles(t, dir))
	return nil
}

// TestSnapshotsOnEveryNode: every node of a three-node service takes the
// snapshots the interval rule names, the primary records their evidence,
// and each node writes snapshot_S_E.committed with E's receipt: the same
// bytes on every node, verifying against the service certificate alone,
// each S ending a ledger chunk; a tampered snapshot does not verify; at most
// SnapshotsKept files are kept.
func TestSnapshotsOnEveryNode(t *testing.T) {
	_, nodes, dirs := startClusterWith(t, func(id uint64, c *node.Config) {
		c.SnapshotTxInterval = 40
		c.SnapshotsKept = 2
		c.ChunkSize = 1 << 30 // chunks end only at snapshots
	})
	// Append until the primary has written a snapshot of the third window.
	var p int
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; latestSnapshot(t, dirs[p]) < 120; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot beyond seqno 120 on the primary: %v", snapshotFiles(t, dirs[p]))
		}
		p = leader(t, nodes, -1)
		if _, err := submitUntilAccepted(t, nodes[p], "c"+strconv.Itoa(i%3), "entry"); err != nil && !errors.Is(err, node.ErrNotPrimary) {
			t.Fatal(err)
		}
	}
	ids, err := identity.LoadOrCreate(dirs[0], identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Every node comes to the same latest snapshot, byte for byte, and
	// keeps at most 2.
	var latest string
	var want []byte
	deadline = time.Now().Add(30 * time.Second)
	for {
		var lasts []string
		for _, dir := range dirs {
			names := snapshotFiles(t, dir)
			if len(names) > 0 {
				lasts = append(lasts, names[len(names)-1])
			}
		}
		if len(lasts) == 3 && lasts[0] == lasts[1] && lasts[1] == lasts[2] {
			latest = lasts[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the nodes' latest snapshots differ: %v", lasts)
		}
		time.Sleep(20 * time.Millisecond) // polling files the nodes write, bounded
	}
	for i, dir := range dirs {
		got, err := os.ReadFile(filepath.Join(dir, "snapshots", latest))
		if err != nil {
			t.Fatal(err)
		}
		if want == nil {
			want = got
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("node %d's %s differs from node 1's", i+1, latest)
		}
		// A file written is pruned right after: the count may be 3 only
		// for a moment.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			names := snapshotFiles(t, dir)
			if len(names) <= 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d keeps %v, SnapshotsKept is 2", i+1, names)
			}
		}
	}
	s, err := node.VerifySnapshot(want, ids.Service.Cert)
	if err != nil {
		t.Fatalf("%s: %v", latest, err)
	}
	seqno, evidence, _ := node.ParseSnapshotName(latest)
	if s.Seqno != seqno || s.EvidenceSeqno != evidence || seqno < 120 {
		t.Fatalf("%s holds seqno %d evidence %d", latest, s.Seqno, s.EvidenceSeqno)
	}
	// The snapshot's seqno ends a chunk, on every node.
	for i, dir := range dirs {
		ents, _ := os.ReadDir(filepath.Join(dir, "ledger"))
		found := false
		for _, e := range ents {
			if strings.HasSuffix(strings.TrimSuffix(e.Name(), ".committed"), "-"+strconv.FormatUint(seqno, 10)) {
				found = true
			}
		}
		if !found {
			t.Fatalf("node %d has no chunk ending at the snapshot's seqno %d", i+1, seqno)
		}
	}
	// Tampering with any part is detected.
	for _, off := range []int{20, len(want) / 2, len(want) - 30} {
		bad := bytes.Clone(want)
		bad[off] ^= 1
		if _, err := node.VerifySnapshot(bad, ids.Service.Cert); err == nil {
			t.Fatalf("a snapshot with byte %d flipped verifies", off)
		}
	}
	// Another service's certificate does not verify it.
	other, err := identity.LoadOrCreate(t.TempDir(), identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := node.VerifySnapshot(want, other.Service.Cert); !errors.Is(err, node.ErrSnapshotUnverified) {
		t.Fatalf("verified against another service: %v", err)
	}
}

// latestSnapshot is the seqno of the latest committed snapshot in dir.
func latestSnapshot(t testing.TB, dir string) uint64 {
	var last uint64
	for _, name := range snapshotFiles(t, dir) {
		if s, _, _ := node.ParseSnapshotName(name); s > last {
			last = s
		}
	}
	return last
}

// TestTriggerSnapshot: RequestSnapshot (trigger_snapshot) makes the primary
// snapshot its next signature, without the interval.
func TestTriggerSnapshot(t *testing.T) {
	dir := t.TempDir()
	n := openNode(t, dir, func(c *node.Config) { c.SnapshotTxInterval = -1 })
	defer n.Close()
	waitCommitted(t, n, appendEntry(t, n, "a", "x"))
	if names := snapshotFiles(t, dir); len(names) != 0 {
		t.Fatalf("snapshots without interval or trigger: %v", names)
	}
	n.RequestSnapshot()
	waitSnapshots(t, n, dir, 1)
}

// TestTriggerSnapshotEveryNode: trigger_snapshot's transaction (its
// tables.SnapshotTriggerWrites, as the governance effect writes it) makes
// every node of a three-node service, not only the primary, snapshot the
// first signature after it, without the interval: the same file on each.
func TestTriggerSnapshotEveryNode(t *testing.T) {
	_, nodes, dirs := startClusterWith(t, func(id uint64, c *node.Config) { c.SnapshotTxInterval = -1 })
	p := leader(t, nodes, -1)
	waitCommitted(t, nodes[p], appendEntry(t, nodes[p], "a", "x"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := nodes[p].Exec(ctx, node.UntilCommitted, func(*node.State) ([]ledger.MapWrites, error) {
		nodes[p].RequestSnapshot()
		return tables.SnapshotTriggerWrites(), nil
	}); err != nil {
		t.Fatal(err)
	}
	want := waitSnapshots(t, nodes[p], dirs[p], 1)
	for i, dir := range dirs {
		if got := waitSnapshots(t, nodes[p], dir, 1); got[0] != want[0] {
			t.Fatalf("node %d snapshotted %v, the primary %v", i+1, got, want)
		}
	}
}

// FuzzParseSnapshot: the snapshot parser reads untrusted bytes (fetched
// from a peer, or a file on disk): it never panics, and what it accepts
// it accepts consistently.
func FuzzParseSnapshot(f *testing.F) {
	dir := f.TempDir()
	n := openNode(f, dir, func(c *node.Config) { c.SnapshotTxInterval = -1 })
	n.RequestSnapshot()
	waitSnapshots(f, n, dir, 1)
	_, good, err := n.LatestSnapshot()
	if err != nil {
		f.Fatal(err)
	}
	n.Close()
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte("LDSNAP\x00\x01\x00\x00\x00\x02{}\x00\x00\x00\x00"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := node.ParseSnapshot(b)
		if err != nil {
			if s != nil || !errors.Is(err, node.ErrSnapshotMalformed) {
				t.Fatalf("ParseSnapshot: %v, %v", s, err)
			}
			return
		}
		if s.Seqno == 0 || (s.Receipt != nil && s.EvidenceSeqno <= s.Seqno) {
			t.Fatalf("accepted a snapshot at %d with evidence %d", s.Seqno, s.EvidenceSeqno)
		}
	})
}
