package node_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/ledgerd/ledgerd/internal/consensus"
	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/node"
)

// memNet is an in-memory Raft transport between nodes of one test, with
// partitions.
type memNet struct {
	mu    sync.Mutex
	nodes map[uint64]*node.Node
	cut   map[uint64]bool
}

type memTransport struct {
	net *memNet
}

func (t memTransport) Send(msgs []raftpb.Message) {
	t.net.mu.Lock()
	defer t.net.mu.Unlock()
	for _, m := range msgs {
		if t.net.cut[m.From] || t.net.cut[m.To] {
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
