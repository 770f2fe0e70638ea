package node_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/ledgerd/ledgerd/internal/consensus"
	"github.com/ledgerd/ledgerd/internal/durable"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/node"
	"github.com/ledgerd/ledgerd/internal/tables"
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

// TestBatchGoesWithItsSignature: a batch that makes a signature due is
// proposed with that signature (over the tree and the batch's leaves), so the
// message that replicates the batch to a follower also carries the signature
// that makes it committable, and one fsync of each follower commits it. It
// fails if the signature follows one Ready later (step 5), in a message of
// its own, as it did: the batch then waited for a second round of the
// followers' fsyncs.
func TestBatchGoesWithItsSignature(t *testing.T) {
	net, nodes, _ := startClusterWith(t, func(_ uint64, c *node.Config) {
		c.SignatureTxs = 1 // every batch makes a signature due
	})
	l := leader(t, nodes, -1)
	p := nodes[l]
	settle := appendEntry(t, p, "c", "settle")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, n := range nodes {
		if err := n.WaitCommitted(ctx, settle); err != nil {
			t.Fatal(err)
		}
	}

	var apps [][]raftpb.Entry // the entries of each MsgApp the primary sends
	net.mu.Lock()
	net.observe = func(m raftpb.Message) {
		if m.Type == raftpb.MsgApp && m.From == uint64(l+1) && len(m.Entries) > 0 {
			apps = append(apps, slices.Clone(m.Entries))
		}
	}
	net.mu.Unlock()
	for range 5 {
		id := appendEntry(t, p, "c", "signed with its batch")
		for _, n := range nodes {
			if err := n.WaitCommitted(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		net.mu.Lock()
		found := false
		for _, ents := range apps {
			i := slices.IndexFunc(ents, func(e raftpb.Entry) bool { return e.Index == id.Seqno })
			if i < 0 {
				continue
			}
			found = true
			if i+1 == len(ents) || !isSignature(t, ents[i+1]) {
				t.Errorf("the message that replicates %v carries entries %d..%d, not the signature after it", id, ents[0].Index, ents[len(ents)-1].Index)
			}
			break // the first message that carries it
		}
		net.mu.Unlock()
		if !found {
			t.Fatalf("no MsgApp carried %v", id)
		}
	}
}

// isSignature reports whether a Raft entry is a signature transaction.
func isSignature(t *testing.T, e raftpb.Entry) bool {
	t.Helper()
	if e.Type != raftpb.EntryNormal || len(e.Data) == 0 {
		return false
	}
	le, err := ledger.ParseEntry(e.Data)
	if err != nil {
		t.Fatal(err)
	}
	d, err := le.PublicDomain()
	if err != nil {
		return false
	}
	_, ok, _ := tables.ParseSignature(d)
	return ok
}

// TestLoadedReadyEndsWithSignature: under load (here, 20 writes sequenced
// while the primary's fsync is held), the Ready that carries at least
// readySignatureTxs unsigned writes of the primary ends with a signature of
// them, though neither SignatureInterval (the clock does not move) nor
// SignatureTxs makes one due: each round of the followers' fsyncs commits
// what it persisted. Without that rule nothing here is ever signed, so
// nothing commits.
func TestLoadedReadyEndsWithSignature(t *testing.T) {
	clock := &fakeClock{}
	_, nodes, gates := startGatedCluster(t, func(_ uint64, c *node.Config) {
		clock.set(c)
	})
	l := leader(t, nodes, -1)
	p := nodes[l]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	settle := appendEntry(t, p, "c", "settle")
	clock.Advance(time.Hour) // a signature of it is due, once
	for _, n := range nodes {
		if err := n.WaitCommitted(ctx, settle); err != nil {
			t.Fatal(err)
		}
	}

	gates[l].hold()
	appendEntry(t, p, "c", "its fsync is held") // answered once sequenced
	var last node.TxID
	for i := range 20 {
		last = appendEntry(t, p, "c", fmt.Sprint("sequenced during the fsync ", i))
	}
	gates[l].release()
	for _, n := range nodes {
		if err := n.WaitCommitted(ctx, last); err != nil {
			t.Fatalf("%v not committed: %v", last, err)
		}
	}
}
