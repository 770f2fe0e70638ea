package node_test

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/node"
)

// TestSnapshotNeededIsLogged: Raft sends a snapshot only when a peer needs
// entries this node does not hold (raftsnap.go). A snapshot sent is not
// logged; one the transport dropped (reported failed) is retried by Raft,
// and logged as a warning naming the peer, once a minute per peer, not on
// every retry, and not silently.
func TestSnapshotNeededIsLogged(t *testing.T) {
	dir := t.TempDir()
	ids, err := identity.LoadOrCreate(dir, identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	now := time.Unix(1_800_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	n, err := node.Open(node.Config{Dir: dir, Identities: ids, Now: clock, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	const msg = "couldn't send a Raft snapshot"
	count := func() int { return strings.Count(logs.String(), msg) }

	n.ReportSnapshot(7, false) // a snapshot sent is not a warning
	if got := count(); got != 0 {
		t.Fatalf("a snapshot sent was logged as failed:\n%s", logs.String())
	}
	n.ReportSnapshot(7, true)
	n.ReportSnapshot(7, true)
	n.ReportSnapshot(7, false)
	if got := count(); got != 1 {
		t.Fatalf("%d warnings logged for one peer within a minute, want 1:\n%s", got, logs.String())
	}
	if s := logs.String(); !strings.Contains(s, "level=WARN") || !strings.Contains(s, "peer_raft_id=7") || !strings.Contains(s, "sends it again") {
		t.Fatalf("the warning does not name the peer and what happens:\n%s", s)
	}
	n.ReportSnapshot(8, true) // another peer is reported at once
	if got := count(); got != 2 {
		t.Fatalf("%d warnings after a second peer, want 2", got)
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	n.ReportSnapshot(7, true) // a minute later, again
	if got := count(); got != 3 {
		t.Fatalf("%d warnings a minute later, want 3", got)
	}
}
