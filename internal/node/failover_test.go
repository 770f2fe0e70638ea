package node_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/node"
)

// fakeClock is a node's Config.Now that moves only when the test says.
// It starts at the zero time, where a node that never signed stands as if
// it had just signed (lastSigAt's zero value): a signature is then due by
// time only once the test advances the clock by SignatureInterval.
type fakeClock struct{ d atomic.Int64 }

func (c *fakeClock) Now() time.Time          { return time.Time{}.Add(time.Duration(c.d.Load())) }
func (c *fakeClock) Advance(d time.Duration) { c.d.Add(int64(d)) }
func (c *fakeClock) set(cfg *node.Config)    { cfg.Now = c.Now; cfg.SyncInterval = -1 }

// tickUntil calls tick up to max times until cond holds, giving the
// messages each tick causes up to wait (of polling) to make it hold, and
// those of the last tick up to 5s (a slow machine finishes what the ticks
// started; no further tick is given).
func tickUntil(tick func(), max int, wait time.Duration, cond func() bool) bool {
	for k := range max {
		tick()
		if k == max-1 {
			wait = 5 * time.Second
		}
		deadline := time.Now().Add(wait)
		for time.Now().Before(deadline) {
			if cond() {
				return true
			}
			time.Sleep(200 * time.Microsecond) // polling for the tick's messages, bounded by the deadline
		}
	}
	return cond()
}

func tick1(tick func(...uint64), id uint64) func() { return func() { tick(id) } }

func waitCond(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // waiting for messages between the nodes, bounded by the deadline
	}
}

// TestFailoverNewPrimarySigns steps a three-node service by hand (Raft's
// ticks and each node's clock): signatures are due by time only when the
// test advances a node's clock, so the only signature a new primary makes
// without that is the one CCF's rule requires when it wins an election.
//
// Node 1 leads, commits a prefix, then sequences a write ("tail") that
// nodes 2 and 3 receive but no signature covers, and is cut off. It still
// believes it leads (unticked) and takes a write ("doomed") that can never
// commit. Nodes 2 and 3 elect one of them; with no new write and no clock
// advance, the new primary signs its view at once: the tail is Committed
// on both, under a signature of the new view, with a receipt that
// verifies. Ticked alone, node 1 steps down within two election timeouts
// (CheckQuorum) having committed nothing more; healed, it takes the new
// primary's history: the tail Committed, its doomed write Invalid.
func TestFailoverNewPrimarySigns(t *testing.T) {
	const electionTicks = 20 // startCluster's
	ticks := map[uint64]chan time.Time{1: make(chan time.Time), 2: make(chan time.Time), 3: make(chan time.Time)}
	clocks := map[uint64]*fakeClock{1: {}, 2: {}, 3: {}}
	net, nodes, dirs := startClusterWith(t, func(id uint64, c *node.Config) {
		c.Ticks = ticks[id]
		clocks[id].set(c)
		c.SignatureInterval = time.Hour
		c.SignatureTxs = 1000
	})
	tick := func(ids ...uint64) {
		for _, id := range ids {
			ticks[id] <- time.Time{}
		}
	}
	if !tickUntil(tick1(tick, 1), 3*electionTicks, 2*time.Millisecond, nodes[0].IsPrimary) {
		t.Fatal("node 1, the only one ticked, did not lead")
	}
	clocks[1].Advance(time.Hour) // node 1 signs by time too
	var prefix node.TxID
	for i := range 5 {
		prefix = appendEntry(t, nodes[0], "c", "prefix-"+string(rune('a'+i)))
	}
	clocks[1].Advance(time.Hour)
	for i, n := range nodes {
		waitCond(t, "the prefix committed on node "+string(rune('1'+i)), func() bool {
			if n.Status(prefix) == node.StatusCommitted {
				return true
			}
			tick(1) // heartbeats carry the commit index to the followers
			return false
		})
	}

	tail := appendEntry(t, nodes[0], "c", "tail")
	for _, n := range nodes[1:] {
		waitCond(t, "the tail replicated", func() bool { return n.LastSeqno() >= tail.Seqno })
		if st := n.Status(tail); st != node.StatusPending {
			t.Fatalf("tail %s on a follower before failover: %v, want Pending", tail, st)
		}
	}
	net.partition(1, true)
	committedBefore := nodes[0].CommittedSeqno()
	doomed := appendEntry(t, nodes[0], "c", "doomed")

	if !tickUntil(func() { tick(2, 3) }, 10*electionTicks, 2*time.Millisecond, func() bool { return nodes[1].IsPrimary() || nodes[2].IsPrimary() }) {
		t.Fatal("no election among nodes 2 and 3 after 10 election timeouts")
	}
	l := 1
	if nodes[2].IsPrimary() {
		l = 2
	}
	// No write and no clock advance: only the new view's signature can
	// commit the tail, within a few heartbeats of the new primary.
	for _, i := range []int{1, 2} {
		n := nodes[i]
		if !tickUntil(tick1(tick, uint64(l+1)), 10, 200*time.Millisecond, func() bool { return n.Status(tail) == node.StatusCommitted }) {
			t.Fatalf("node %d: tail %s is %v after 10 ticks of the new primary: it did not sign its view", i+1, tail, n.Status(tail))
		}
		if c := n.CommittedTxID(); c.View <= tail.View || c.Seqno <= tail.Seqno {
			t.Fatalf("node %d: commit point %s, want a signature of the new view after the tail %s", i+1, c, tail)
		}
		if e, err := n.Entry(tail); err != nil || string(e.Contents) != "tail" {
			t.Fatalf("node %d: Entry(%s) = %+v, %v", i+1, tail, e, err)
		}
	}
	ids, err := identity.LoadOrCreate(dirs[l], identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	verifyReceipt(t, nodes[l], ids, tail)

	// The minority primary steps down and commits nothing.
	if !tickUntil(tick1(tick, 1), 2*electionTicks, 2*time.Millisecond, func() bool { return !nodes[0].IsPrimary() }) {
		t.Fatal("the cut-off primary still leads after two election timeouts (CheckQuorum)")
	}
	if st := nodes[0].Status(doomed); st != node.StatusPending {
		t.Fatalf("cut-off primary: its write %s is %v, want Pending", doomed, st)
	}
	if c := nodes[0].CommittedSeqno(); c != committedBefore {
		t.Fatalf("cut-off primary: commit point moved from %d to %d", committedBefore, c)
	}

	net.partition(1, false)
	waitCond(t, "node 1 to take the new primary's history", func() bool {
		if nodes[0].Status(tail) == node.StatusCommitted {
			return true
		}
		tick(uint64(l + 1))
		return false
	})
	if st := nodes[0].Status(doomed); st != node.StatusInvalid {
		t.Fatalf("healed node 1: its cut-off write %s is %v, want Invalid", doomed, st)
	}
	if e, err := nodes[0].Entry(tail); err != nil || string(e.Contents) != "tail" {
		t.Fatalf("healed node 1: Entry(%s) = %+v, %v", tail, e, err)
	}
}
