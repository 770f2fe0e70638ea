package node_test

import (
	"context"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/consensus"
	"github.com/ledgerd/ledgerd/internal/durable"
	"github.com/ledgerd/ledgerd/internal/node"
)

// startGatedCluster is startCluster with each member's fsyncs behind a gate
// of its own, and elections slow enough (1.5 s) that a held disk does not
// cost the primary its role during a test.
func startGatedCluster(t *testing.T, mod func(id uint64, c *node.Config)) (*memNet, []*node.Node, []*syncGate) {
	t.Helper()
	gates := []*syncGate{{}, {}, {}}
	net, nodes, _ := startClusterWith(t, func(id uint64, c *node.Config) {
		c.FS = gatedFS{durable.OS, gates[id-1]}
		c.Raft = consensus.Config{ID: id, Peers: []uint64{1, 2, 3}, TickInterval: 5 * time.Millisecond, ElectionTicks: 300, HeartbeatTicks: 2}
		if mod != nil {
			mod(id, c)
		}
	})
	t.Cleanup(func() {
		for _, g := range gates {
			g.release()
		}
	})
	return net, nodes, gates
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(time.Millisecond) // polling with a deadline
	}
}

// TestPrimaryReplicatesWhileItsDiskSyncs: the primary sends a batch to the
// followers before its own fsync of it (Raft thesis 10.2.1, as etcd's
// server does), so they persist it while the primary's disk is still busy;
// the primary reports it Committed only once its own fsync is done.
func TestPrimaryReplicatesWhileItsDiskSyncs(t *testing.T) {
	_, nodes, gates := startGatedCluster(t, nil)
	l := leader(t, nodes, -1)
	p := nodes[l]
	first := appendEntry(t, p, "c", "settle")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, n := range nodes {
		if err := n.WaitCommitted(ctx, first); err != nil {
			t.Fatal(err)
		}
	}

	gates[l].hold()
	id, err := submitUntilAccepted(t, p, "c", "written by the followers first")
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range nodes {
		if i == l {
			continue
		}
		// Within less than an election timeout: the followers hear from
		// no one else meanwhile (the primary is in its fsync).
		waitFor(t, time.Second, "a follower persists the batch the primary is still syncing", func() bool {
			return n.LastSeqno() >= id.Seqno && n.Status(id) == node.StatusPending
		})
	}
	if got := p.Status(id); got != node.StatusPending {
		t.Fatalf("status on the primary before its own fsync: %v, want Pending", got)
	}
	gates[l].release()
	for _, n := range nodes {
		if err := n.WaitCommitted(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPrimaryHoldsWritesWhileCommitLags: once its oldest uncommitted
// proposal is CommitWindow old (the followers do not acknowledge), the
// primary leaves new submissions queued instead of sequencing them beyond
// what it can commit; they are sequenced, and commit, once the followers
// are back.
func TestPrimaryHoldsWritesWhileCommitLags(t *testing.T) {
	const window = 50 * time.Millisecond
	clock := &fakeClock{} // the window's clock: it moves only when the test says
	net, nodes, _ := startGatedCluster(t, func(_ uint64, c *node.Config) {
		clock.set(c)
		c.SignatureTxs = 1 // the clock never makes a signature due
		c.CommitWindow = window
	})
	l := leader(t, nodes, -1)
	p := nodes[l]
	appendEntry(t, p, "c", "settle")

	for i := range nodes {
		if i != l {
			net.partition(uint64(i+1), true)
		}
	}
	before, err := submitUntilAccepted(t, p, "c", "sequenced: the window is open")
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * window) // the uncommitted proposal ages past the window
	f, err := p.SubmitEntry("c", []byte("held: the window is closed"))
	if err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancelShort()
	if id, err := f.Wait(short); err == nil {
		t.Fatalf("sequenced at %v while nothing committed for %s", id, 2*window)
	}
	if !p.IsPrimary() {
		t.Fatal("the primary stepped down during the test")
	}

	for i := range nodes {
		net.partition(uint64(i+1), false)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	after, err := f.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.Seqno <= before.Seqno {
		t.Fatalf("held write at %v, not after %v", after, before)
	}
	for _, n := range nodes {
		if err := n.WaitCommitted(ctx, after); err != nil {
			t.Fatal(err)
		}
	}
}
