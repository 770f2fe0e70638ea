package node_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/ledgerd/ledgerd/internal/consensus"
	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/node"
)

// TestJoinFromSnapshot: a node installs the latest committed snapshot of a
// running service (verified against the service certificate), opens with
// its ledger starting after the snapshot's seqno S, is added to the Raft
// configuration and catches up the suffix only: its first chunk starts at
// S+1, it serves the entries after S with receipts that verify, answers
// ErrBeforeSnapshot for those up to S (whose status it still knows), ends
// with the founder's committed state, and reopens from the snapshot and
// the suffix.
func TestJoinFromSnapshot(t *testing.T) {
	net := &memNet{nodes: map[uint64]*node.Node{}, cut: map[uint64]bool{}}
	base := t.TempDir()
	dir1, dir2 := filepath.Join(base, "1"), filepath.Join(base, "2")
	ids1, err := identity.LoadOrCreate(dir1, identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	raftCfg := func(id uint64) consensus.Config {
		return consensus.Config{ID: id, Peers: []uint64{1}, Joining: id != 1, TickInterval: 5 * time.Millisecond, ElectionTicks: 20, HeartbeatTicks: 2}
	}
	n1 := openNode(t, dir1, func(c *node.Config) {
		c.Raft, c.Transport, c.SnapshotTxInterval = raftCfg(1), memTransport{net}, 30
	})
	defer n1.Close()
	net.mu.Lock()
	net.nodes[1] = n1
	net.mu.Unlock()
	var early node.TxID
	for i := 0; latestSnapshot(t, dir1) < 60; i++ {
		id := appendEntry(t, n1, "c"+strconv.Itoa(i%4), "before "+strconv.Itoa(i))
		if i == 0 {
			early = id
		}
		waitCommitted(t, n1, id)
	}
	_, data, err := n1.LatestSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	// The joiner: the service's identity and ledger secret, its own node key.
	os.MkdirAll(dir2, 0o700)
	for _, f := range []string{identity.ServiceCertFile, identity.ServiceKeyFile, identity.LedgerSecretFile} {
		b, _ := os.ReadFile(filepath.Join(dir1, f))
		os.WriteFile(filepath.Join(dir2, f), b, 0o600)
	}
	bad := append([]byte(nil), data...)
	bad[len(bad)/2] ^= 1
	if _, err := node.InstallSnapshot(nil, dir2, ids1.Service.Cert, bad); !errors.Is(err, node.ErrSnapshotUnverified) && !errors.Is(err, node.ErrSnapshotMalformed) {
		t.Fatalf("a tampered snapshot installed: %v", err)
	}
	snap, err := node.InstallSnapshot(nil, dir2, ids1.Service.Cert, data)
	if err != nil {
		t.Fatal(err)
	}
	s := snap.Seqno
	n2 := openNode(t, dir2, func(c *node.Config) {
		c.Raft, c.Transport, c.NoBootstrap, c.SnapshotTxInterval = raftCfg(2), memTransport{net}, true, 30
	})
	net.mu.Lock()
	net.nodes[2] = n2
	net.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cc, err := n1.ProposeConfChange(ctx, raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: 2})
	if err != nil {
		t.Fatal(err)
	}
	waitCommitted(t, n1, cc)
	var after node.TxID
	for i := range 40 {
		after = appendEntry(t, n1, "c"+strconv.Itoa(i%4), "after "+strconv.Itoa(i))
	}
	waitCommitted(t, n1, after)
	waitCommitted(t, n2, after)

	ents, err := os.ReadDir(filepath.Join(dir2, "ledger"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "ledger_") && !strings.HasPrefix(e.Name(), "ledger_"+strconv.FormatUint(s+1, 10)) {
			first, _, _ := strings.Cut(strings.TrimPrefix(e.Name(), "ledger_"), "-")
			if v, _ := strconv.ParseUint(strings.TrimSuffix(first, ".committed"), 10, 64); v <= s {
				t.Fatalf("the joiner holds %s, from before the snapshot at %d: it replayed", e.Name(), s)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir2, "ledger", "ledger_1-"+strconv.FormatUint(s, 10)+".committed")); err == nil {
		t.Fatal("the joiner holds the chunk before the snapshot")
	}
	ent, err := n2.Entry(after)
	if err != nil || string(ent.Contents) != "after 39" {
		t.Fatalf("joiner reads %s: %q, %v", after, ent.Contents, err)
	}
	verifyReceipt(t, n2, ids1, after)
	if _, err := n2.Entry(early); !errors.Is(err, node.ErrBeforeSnapshot) {
		t.Fatalf("joiner reads %s, before its snapshot at %d: %v", early, s, err)
	}
	if st := n2.Status(early); st != node.StatusCommitted {
		t.Fatalf("joiner's status of %s: %v", early, st)
	}
	// Same committed state once both are at the same commit point.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, c1 := node.StateDumps(n1)
		_, c2 := node.StateDumps(n2)
		if c1 == c2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("committed states differ:\n%s\n---\n%s", c1, c2)
		}
		appendEntry(t, n1, "sync", "x") // moves both commit points on
		time.Sleep(20 * time.Millisecond)
	}
	// A restart opens from the startup snapshot and the suffix.
	last := n2.LastSeqno()
	if err := n2.Close(); err != nil {
		t.Fatal(err)
	}
	n2 = openNode(t, dir2, func(c *node.Config) {
		c.Raft, c.Transport, c.NoBootstrap = raftCfg(2), memTransport{net}, true
	})
	defer n2.Close()
	net.mu.Lock()
	net.nodes[2] = n2
	net.mu.Unlock()
	if n2.LastSeqno() < last {
		t.Fatalf("reopened at %d, had %d", n2.LastSeqno(), last)
	}
	// With CheckQuorum, the primary of two nodes steps down while the other
	// is down longer than an election timeout (100 ms here, which a
	// restart under the race detector on a loaded machine can take): write
	// on whichever leads once one does.
	var next node.TxID
	for deadline := time.Now().Add(20 * time.Second); ; {
		nodes := []*node.Node{n1, n2}
		var err error
		if next, err = submitUntilAccepted(t, nodes[leader(t, nodes, -1)], "c0", "after restart"); err == nil {
			break
		} else if !errors.Is(err, node.ErrNotPrimary) || time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
	waitCommitted(t, n2, next)
	if ent, err := n2.Entry(next); err != nil || string(ent.Contents) != "after restart" {
		t.Fatalf("after restart: %q, %v", ent.Contents, err)
	}
	// The startup snapshot is verified at every start: an edited one
	// stops the node from opening.
	if err := n2.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir2, "startup.snapshot")
	b, _ := os.ReadFile(path)
	b[len(b)/3] ^= 1
	os.WriteFile(path, b, 0o600)
	ids2, err := identity.LoadOrCreate(dir2, identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := node.Open(node.Config{Dir: dir2, Identities: ids2, Raft: raftCfg(2), NoBootstrap: true, Logger: quietLogger()}); err == nil {
		n.Close()
		t.Fatal("a node opened on an edited startup snapshot")
	} else if !errors.Is(err, node.ErrSnapshotUnverified) && !errors.Is(err, node.ErrSnapshotMalformed) {
		t.Fatalf("opening on an edited startup snapshot: %v", err)
	}
}

// TestVerifyHistory: the chunks before a snapshot verify against it
// (--fetch-history); a modified entry, a missing chunk, or a chunk beyond
// the snapshot do not.
func TestVerifyHistory(t *testing.T) {
	dir := t.TempDir()
	n := openNode(t, dir, func(c *node.Config) { c.SnapshotTxInterval = 30; c.ChunkSize = 1 << 30 })
	for i := 0; latestSnapshot(t, dir) < 60; i++ {
		waitCommitted(t, n, appendEntry(t, n, "c", "e"+strconv.Itoa(i)))
	}
	_, data, err := n.LatestSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	ids, _ := identity.LoadOrCreate(dir, identity.Options{})
	s, err := node.VerifySnapshot(data, ids.Service.Cert)
	if err != nil {
		t.Fatal(err)
	}
	n.Close()
	hist := t.TempDir()
	ents, _ := os.ReadDir(filepath.Join(dir, "ledger"))
	var names []string
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), "ledger_")
		if !ok || !strings.HasSuffix(rest, ".committed") {
			continue
		}
		_, end, _ := strings.Cut(strings.TrimSuffix(rest, ".committed"), "-")
		if v, _ := strconv.ParseUint(end, 10, 64); v <= s.Seqno {
			b, _ := os.ReadFile(filepath.Join(dir, "ledger", e.Name()))
			os.WriteFile(filepath.Join(hist, e.Name()), b, 0o600)
			names = append(names, e.Name())
		}
	}
	if err := node.VerifyHistory(hist, s); err != nil {
		t.Fatalf("the history before %d (%v): %v", s.Seqno, names, err)
	}
	// A flipped byte inside an entry of the last chunk.
	last := filepath.Join(hist, names[len(names)-1])
	good, _ := os.ReadFile(last)
	bad := append([]byte(nil), good...)
	bad[len(bad)/2] ^= 1
	os.WriteFile(last, bad, 0o600)
	if err := node.VerifyHistory(hist, s); err == nil {
		t.Fatal("a modified history verifies")
	}
	os.WriteFile(last, good, 0o600)
	if len(names) > 1 {
		os.Remove(filepath.Join(hist, names[0]))
		if err := node.VerifyHistory(hist, s); err == nil {
			t.Fatal("a history without its first chunk verifies")
		}
	}
}
