package node_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/ledgerd/ledgerd/internal/auth"
	"github.com/ledgerd/ledgerd/internal/consensus"
	"github.com/ledgerd/ledgerd/internal/gov"
	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/node"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// memNet is an in-memory Raft transport between nodes of one test, with
// partitions.
type memNet struct {
	mu    sync.Mutex
	nodes map[uint64]*node.Node
	cut   map[uint64]bool
	// observe, if set, sees every message sent, under mu.
	observe func(raftpb.Message)
}

type memTransport struct {
	net *memNet
}

func (t memTransport) Send(msgs []raftpb.Message) {
	t.net.mu.Lock()
	defer t.net.mu.Unlock()
	for _, m := range msgs {
		if t.net.observe != nil {
			t.net.observe(m)
		}
		if t.net.cut[m.From] || t.net.cut[m.To] {
			if from := t.net.nodes[m.From]; from != nil {
				from.ReportUnreachable(m.To) // as a real transport would
			}
			continue
		}
		if n := t.net.nodes[m.To]; n != nil {
			n.Step(m)
		}
	}
}

func (net *memNet) partition(id uint64, cut bool) {
	net.mu.Lock()
	defer net.mu.Unlock()
	net.cut[id] = cut
}

// startCluster starts a three-node service whose members share the service
// identity and ledger secret of member 1 and have node keys of their own.
func startCluster(t *testing.T) (*memNet, []*node.Node, []string) {
	t.Helper()
	return startClusterWith(t, nil)
}

// startClusterWith is startCluster with mod applied to each member's
// configuration.
func startClusterWith(t *testing.T, mod func(id uint64, c *node.Config)) (*memNet, []*node.Node, []string) {
	t.Helper()
	net := &memNet{nodes: map[uint64]*node.Node{}, cut: map[uint64]bool{}}
	base := t.TempDir()
	var nodes []*node.Node
	var dirs []string
	for id := uint64(1); id <= 3; id++ {
		dir := filepath.Join(base, fmt.Sprint(id))
		dirs = append(dirs, dir)
		if id > 1 {
			os.MkdirAll(dir, 0o700)
			for _, f := range []string{identity.ServiceCertFile, identity.ServiceKeyFile, identity.LedgerSecretFile} {
				b, err := os.ReadFile(filepath.Join(base, "1", f))
				if err != nil {
					t.Fatal(err)
				}
				os.WriteFile(filepath.Join(dir, f), b, 0o600)
			}
		} else {
			if _, err := identity.LoadOrCreate(dir, identity.Options{}); err != nil {
				t.Fatal(err)
			}
		}
		n := openNode(t, dir, func(c *node.Config) {
			c.Raft = consensus.Config{ID: id, Peers: []uint64{1, 2, 3}, TickInterval: 5 * time.Millisecond, ElectionTicks: 20, HeartbeatTicks: 2}
			c.Transport = memTransport{net}
			c.NoBootstrap = id != 1
			c.ChunkSize = 8 << 10
			if mod != nil {
				mod(id, c)
			}
		})
		net.mu.Lock()
		net.nodes[id] = n
		net.mu.Unlock()
		nodes = append(nodes, n)
	}
	t.Cleanup(func() {
		for _, n := range nodes {
			n.Close()
		}
	})
	return net, nodes, dirs
}

// leader waits for exactly one primary among the nodes not excluded.
func leader(t *testing.T, nodes []*node.Node, exclude int) int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for i, n := range nodes {
			if i != exclude && n.IsPrimary() {
				return i
			}
		}
		time.Sleep(5 * time.Millisecond) // polling for an election, bounded by the deadline
	}
	t.Fatal("no leader elected")
	return -1
}

func submitUntilAccepted(t *testing.T, n *node.Node, coll, body string) (node.TxID, error) {
	t.Helper()
	f, err := n.SubmitEntry(coll, []byte(body))
	if err != nil {
		return node.TxID{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return f.Wait(ctx)
}

// TestClusterReplicatesAndRollsBack runs three nodes: writes commit on a
// majority and every node holds identical ledger bytes; a primary cut off
// from the others keeps accepting writes that can never commit, and when it
// rejoins it rolls them back (they become Invalid) and takes the new
// primary's history.
func TestClusterReplicatesAndRollsBack(t *testing.T) {
	net, nodes, dirs := startCluster(t)
	l := leader(t, nodes, -1)
	var committed []node.TxID
	for i := range 50 {
		id, err := submitUntilAccepted(t, nodes[l], "c", fmt.Sprintf("before-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		committed = append(committed, id)
	}
	waitCommitted(t, nodes[l], committed[len(committed)-1])
	for _, n := range nodes { // followers learn the commit point too
		waitCommitted(t, n, committed[len(committed)-1])
	}

	// Cut the primary off. Its new writes are Pending forever.
	net.partition(uint64(l+1), true)
	var doomed []node.TxID
	for i := range 5 {
		id, err := submitUntilAccepted(t, nodes[l], "c", fmt.Sprintf("doomed-%d", i))
		if err != nil {
			break // it may step down (CheckQuorum) before all are accepted
		}
		doomed = append(doomed, id)
	}
	if len(doomed) == 0 {
		t.Fatal("the cut-off primary accepted no write; the rollback path was not exercised")
	}
	l2 := leader(t, nodes, l)
	var after []node.TxID
	for i := range 20 {
		id, err := submitUntilAccepted(t, nodes[l2], "c", fmt.Sprintf("after-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		after = append(after, id)
	}
	waitCommitted(t, nodes[l2], after[len(after)-1])

	// Heal: the old primary rolls back its uncommitted suffix.
	net.partition(uint64(l+1), false)
	waitCommitted(t, nodes[l], after[len(after)-1])
	for _, id := range doomed {
		if st := nodes[l].Status(id); st != node.StatusInvalid {
			t.Fatalf("write %s made by the cut-off primary: status %v, want Invalid", id, st)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := nodes[l].WaitCommitted(ctx, id)
		cancel()
		if !errors.Is(err, node.ErrInvalid) {
			t.Fatalf("WaitCommitted(%s) = %v, want ErrInvalid", id, err)
		}
	}
	for _, id := range append(committed, after...) {
		for i, n := range nodes {
			if st := n.Status(id); st != node.StatusCommitted {
				t.Fatalf("node %d: status(%s) = %v", i+1, id, st)
			}
		}
	}
	// Every node holds the same entries and receipts, and the same bytes in
	// every committed chunk file (deterministic serialisation, chunk ends
	// decided by the primary's signature flags).
	last := after[len(after)-1]
	for i, n := range nodes {
		e, err := n.Entry(last)
		if err != nil || string(e.Contents) != "after-19" {
			t.Fatalf("node %d: Entry(%s) = %q, %v", i+1, last, e.Contents, err)
		}
		r1, err1 := nodes[0].Receipt(committed[10])
		r2, err2 := n.Receipt(committed[10])
		if err1 != nil || err2 != nil || r1.LeafComponents.WriteSetDigest != r2.LeafComponents.WriteSetDigest {
			t.Fatalf("node %d: receipts differ or fail: %v %v", i+1, err1, err2)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dirs[l2], "ledger", "*.committed"))
	if len(files) == 0 {
		t.Fatal("no committed chunk file to compare")
	}
	for _, f := range files {
		want, _ := os.ReadFile(f)
		for i, d := range dirs {
			got, err := os.ReadFile(filepath.Join(d, "ledger", filepath.Base(f)))
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("node %d: committed chunk %s differs from the primary's (%v)", i+1, filepath.Base(f), err)
			}
		}
	}
}

// TestClusterRollsBackSpeculativeState: a primary cut off from the others
// executes its writes (current entry, new collection, new user are visible
// on it while Pending), and when it rejoins the new primary's history
// truncates them: they are gone from its current entry, collection list and
// users, and its state equals a fresh replay of the committed ledger.
func TestClusterRollsBackSpeculativeState(t *testing.T) {
	net, nodes, _ := startCluster(t)
	l := leader(t, nodes, -1)
	var last node.TxID
	for i := range 10 {
		id, err := submitUntilAccepted(t, nodes[l], "c", fmt.Sprintf("before-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		last = id
	}
	for _, n := range nodes {
		waitCommitted(t, n, last)
	}

	net.partition(uint64(l+1), true)
	cut := nodes[l]
	// Submitted together, so that the cut-off primary takes them before it
	// may step down (CheckQuorum).
	var futs []*node.Future
	for _, w := range [][]ledger.MapWrites{
		{entryWrite("c", "doomed")},
		{entryWrite("doomed-collection", "doomed")},
		{gov.SetUser("doomed-user", auth.RoleAdministrator.String())},
	} {
		f, err := cut.Submit(w)
		if err != nil {
			t.Fatal(err)
		}
		futs = append(futs, f)
	}
	var doomed []node.TxID
	for _, f := range futs {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		id, err := f.Wait(ctx)
		cancel()
		if err != nil {
			t.Fatalf("the cut-off primary refused a write (%v); the rollback path was not exercised", err)
		}
		doomed = append(doomed, id)
	}
	if e, err := cut.LatestEntry("c"); err != nil || e.ID != doomed[0] || string(e.Contents) != "doomed" {
		t.Fatalf("cut-off primary: current entry of c = %+v, %v; want its own Pending write %s", e, err, doomed[0])
	}
	if !slices.Contains(cut.State().Collections(), "doomed-collection") {
		t.Fatalf("cut-off primary: collections %v lack its Pending new collection", cut.State().Collections())
	}
	if _, ok := gov.UserRoles(cut.State(), "doomed-user"); !ok {
		t.Fatal("cut-off primary: its Pending new user is not visible")
	}

	l2 := leader(t, nodes, l)
	var after node.TxID
	for i := range 5 {
		id, err := submitUntilAccepted(t, nodes[l2], "c", fmt.Sprintf("after-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		after = id
	}
	waitCommitted(t, nodes[l2], after)

	net.partition(uint64(l+1), false)
	waitCommitted(t, cut, after)
	for _, id := range doomed {
		if st := cut.Status(id); st != node.StatusInvalid {
			t.Fatalf("doomed write %s: status %v, want Invalid", id, st)
		}
	}
	if e, err := cut.LatestEntry("c"); err != nil || e.ID != after || string(e.Contents) != "after-4" {
		t.Fatalf("rejoined node: current entry of c = %+v, %v; want %s after-4", e, err, after)
	}
	if slices.Contains(cut.State().Collections(), "doomed-collection") {
		t.Fatalf("rejoined node: rolled-back collection still listed: %v", cut.State().Collections())
	}
	if _, ok := gov.UserRoles(cut.State(), "doomed-user"); ok {
		t.Fatal("rejoined node: rolled-back user still present")
	}
	// Once the rejoined node holds nothing uncommitted (the new primary's
	// last signature committed), its latest and committed states both
	// equal a fresh replay of the committed ledger.
	deadline := time.Now().Add(10 * time.Second)
	for cut.CommittedSeqno() != cut.LastSeqno() || cut.State().Applied() != cut.LastSeqno() {
		if time.Now().After(deadline) {
			t.Fatalf("rejoined node: committed %d, last %d, executed %d", cut.CommittedSeqno(), cut.LastSeqno(), cut.State().Applied())
		}
		time.Sleep(5 * time.Millisecond) // polling for the commit of the last signature, bounded by the deadline
	}
	latest, committed := node.StateDumps(cut)
	replay, err := node.ReplayCommitted(cut)
	if err != nil {
		t.Fatal(err)
	}
	if latest != replay || committed != replay {
		t.Fatalf("rejoined node's state differs from a replay of its committed ledger:\nlatest\n%s\ncommitted\n%s\nreplay\n%s", latest, committed, replay)
	}
}

func entryWrite(coll, contents string) ledger.MapWrites {
	return ledger.MapWrites{Name: tables.EntriesMap, Writes: []ledger.KV{{Key: []byte(coll), Value: []byte(contents)}}}
}

// TestProposeConfChange: membership changes go through the node's proposer
// and take effect once committed: with the two other members removed, the
// primary alone commits, cut off from them. A follower refuses proposals
// (DisableProposalForwarding) rather than forward them.
func TestProposeConfChange(t *testing.T) {
	net, nodes, _ := startCluster(t)
	l := leader(t, nodes, -1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	f := (l + 1) % 3
	if _, err := nodes[f].ProposeConfChange(ctx, raftpb.ConfChange{Type: raftpb.ConfChangeRemoveNode, NodeID: uint64(l + 1)}); !errors.Is(err, node.ErrNotPrimary) {
		t.Fatalf("ProposeConfChange on a follower = %v, want ErrNotPrimary", err)
	}
	for i := range nodes {
		if i == l {
			continue
		}
		id, err := nodes[l].ProposeConfChange(ctx, raftpb.ConfChange{Type: raftpb.ConfChangeRemoveNode, NodeID: uint64(i + 1)})
		if err != nil {
			t.Fatalf("removing node %d: %v", i+1, err)
		}
		waitCommitted(t, nodes[l], id)
		net.partition(uint64(i+1), true)
	}
	id, err := submitUntilAccepted(t, nodes[l], "c", "alone")
	if err != nil {
		t.Fatal(err)
	}
	waitCommitted(t, nodes[l], id)
	if e, err := nodes[l].Entry(id); err != nil || string(e.Contents) != "alone" {
		t.Fatalf("Entry(%s) = %+v, %v", id, e, err)
	}
}

// TestSteppedElections drives Raft's clock by hand (Config.Ticks): node 1,
// the only one ticked, times out, campaigns and leads; cut off and no
// longer ticked, it still believes it leads (CheckQuorum needs ticks) while
// nodes 2 and 3, ticked, elect one of them; healed, it follows the new
// primary. No step waits for wall-clock time to pass, only for messages.
func TestSteppedElections(t *testing.T) {
	ticks := map[uint64]chan time.Time{1: make(chan time.Time), 2: make(chan time.Time), 3: make(chan time.Time)}
	const electionTicks = 20 // startCluster's
	net, nodes, _ := startClusterWith(t, func(id uint64, c *node.Config) { c.Ticks = ticks[id] })
	tick := func(ids ...uint64) {
		for _, id := range ids {
			ticks[id] <- time.Time{}
		}
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(time.Millisecond) // waiting for messages between the nodes, bounded by the deadline
		}
	}

	for range electionTicks - 1 {
		tick(1)
	}
	for i, n := range nodes {
		if n.IsPrimary() {
			t.Fatalf("node %d leads before any election timeout", i+1)
		}
	}
	// Raft randomises the timeout in [electionTicks, 2*electionTicks).
	for range electionTicks {
		tick(1)
	}
	waitFor("node 1 to lead", nodes[0].IsPrimary)
	id := appendEntry(t, nodes[0], "c", "first")
	for _, n := range nodes {
		waitCommitted(t, n, id)
	}

	net.partition(1, true)
	for i := 0; !nodes[1].IsPrimary() && !nodes[2].IsPrimary(); i++ {
		if i == 10*electionTicks {
			t.Fatal("no election among nodes 2 and 3 after 10 election timeouts")
		}
		tick(2, 3)
	}
	if !nodes[0].IsPrimary() {
		t.Fatal("unticked, the cut-off node 1 stepped down (CheckQuorum ran without ticks)")
	}
	l2 := 1
	if nodes[2].IsPrimary() {
		l2 = 2
	}
	after := appendEntry(t, nodes[l2], "c", "second")
	waitCommitted(t, nodes[l2], after)

	// Healed, node 1 hears the new primary once that one's heartbeats
	// (ticks) resume its probing of node 1.
	net.partition(1, false)
	third := appendEntry(t, nodes[l2], "c", "third")
	deadline := time.Now().Add(10 * time.Second)
	for nodes[0].Status(third) != node.StatusCommitted {
		if time.Now().After(deadline) {
			t.Fatalf("node 1 did not commit %s after healing: %v", third, nodes[0].Status(third))
		}
		tick(uint64(l2 + 1))
		time.Sleep(time.Millisecond) // lets the heartbeat's round trip run, bounded by the deadline
	}
	if nodes[0].IsPrimary() {
		t.Fatal("node 1 still leads after following the new primary")
	}
}

// TestFollowerStatusOfUnreceivedID: a backup that has not received an id
// the primary handed out in the backup's current view answers Pending for
// it (CCF's evaluate_tx_status: its local view of a seqno beyond its ledger
// is its current view), never Unknown; once it catches up, Committed.
func TestFollowerStatusOfUnreceivedID(t *testing.T) {
	net, nodes, _ := startCluster(t)
	l := leader(t, nodes, -1)
	first := appendEntry(t, nodes[l], "c", "first")
	for _, n := range nodes {
		waitCommitted(t, n, first)
	}
	f := (l + 1) % 3
	net.partition(uint64(f+1), true)
	id := appendEntry(t, nodes[l], "c", "unreceived")
	waitCommitted(t, nodes[l], id)
	if got := nodes[f].LastSeqno(); got >= id.Seqno {
		t.Fatalf("the cut-off backup holds seqno %d >= %d", got, id.Seqno)
	}
	if st := nodes[f].Status(id); st != node.StatusPending {
		t.Fatalf("backup's status of %s it has not received: %v, want Pending", id, st)
	}
	// An id of an older view it has not received is Invalid once a later
	// view is committed, as before; one of a view it has not reached is
	// Unknown.
	if st := nodes[f].Status(node.TxID{View: id.View + 1, Seqno: id.Seqno}); st != node.StatusUnknown {
		t.Fatalf("status of an id of a later view: %v, want Unknown", st)
	}
	net.partition(uint64(f+1), false)
	waitCommitted(t, nodes[f], id)
}

// TestRemovedPrimaryStepsDown: a primary that removes itself from the
// configuration (a retired primary: cmd/ledgerd's network removes every
// Retired node, the primary included) steps down once the removal is
// committed, and the others elect a primary that commits. Without Raft's
// StepDownOnRemoval it stays leader: etcd raft drops its proposals (it
// takes no write and signs nothing) while its heartbeats keep the others
// from electing another, and the service takes no write at all.
func TestRemovedPrimaryStepsDown(t *testing.T) {
	_, nodes, _ := startCluster(t)
	l := leader(t, nodes, -1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	id, err := nodes[l].ProposeConfChange(ctx, raftpb.ConfChange{Type: raftpb.ConfChangeRemoveNode, NodeID: uint64(l + 1)})
	if err != nil {
		t.Fatal(err)
	}
	l2 := leader(t, nodes, l)
	waitCommitted(t, nodes[l2], id)
	after := appendEntry(t, nodes[l2], "c", "after the primary's removal")
	for i, n := range nodes {
		if i != l {
			waitCommitted(t, n, after)
		}
	}
	if nodes[l].IsPrimary() {
		t.Fatal("the removed primary still says it is primary")
	}
	// A write to the removed node is refused, never sequenced.
	if _, err := submitUntilAccepted(t, nodes[l], "c", "to the removed node"); !errors.Is(err, node.ErrNotPrimary) {
		t.Fatalf("a write to the removed node: %v, want ErrNotPrimary", err)
	}
}
