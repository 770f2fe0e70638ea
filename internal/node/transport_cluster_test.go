package node_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/ledgerd/ledgerd/internal/consensus"
	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/node"
	"github.com/ledgerd/ledgerd/internal/transport"
)

// TestClusterOverTransport runs the three-node service of startCluster over
// internal/transport (mutual TLS on loopback) instead of memNet: a primary
// is elected, writes commit on every node, and when the primary's network
// goes away, the other two elect a new primary that commits.
func TestClusterOverTransport(t *testing.T) {
	base := t.TempDir()
	opts := identity.Options{DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}}
	var ids []*identity.Identities
	for i := range 3 {
		dir := filepath.Join(base, fmt.Sprint(i+1))
		if i > 0 {
			os.MkdirAll(dir, 0o700)
			for _, f := range []string{identity.ServiceCertFile, identity.ServiceKeyFile, identity.LedgerSecretFile} {
				b, err := os.ReadFile(filepath.Join(base, "1", f))
				if err != nil {
					t.Fatal(err)
				}
				os.WriteFile(filepath.Join(dir, f), b, 0o600)
			}
		}
		id, err := identity.LoadOrCreate(dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	members := map[string]bool{}
	for _, id := range ids {
		members[id.Node.ID] = true
	}
	nodes := make([]*node.Node, 3)
	trs := make([]*transport.Transport, 3)
	lns := make([]net.Listener, 3)
	served := make([]chan struct{}, 3)
	for i := range 3 {
		var target atomic.Pointer[node.Node]
		raftID := uint64(i + 1)
		tr, err := transport.New(transport.Config{
			RaftID:      raftID,
			Cert:        ids[i].Node.TLSCertificate(ids[i].Service),
			ServiceCert: ids[i].Service.Cert,
			Allowed:     func(id string) bool { return members[id] },
			Deliver: func(m raftpb.Message) {
				if n := target.Load(); n != nil {
					n.Step(m)
				}
			},
			Unreachable: func(id uint64) {
				if n := target.Load(); n != nil {
					n.ReportUnreachable(id)
				}
			},
			ReportSnapshot: func(id uint64, failed bool) {
				if n := target.Load(); n != nil {
					n.ReportSnapshot(id, failed)
				}
			},
			Logger: quietLogger(),
		})
		if err != nil {
			t.Fatal(err)
		}
		trs[i] = tr
		if lns[i], err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		nodes[i] = openNode(t, filepath.Join(base, fmt.Sprint(i+1)), func(c *node.Config) {
			c.Raft = consensus.Config{ID: raftID, Peers: []uint64{1, 2, 3}, TickInterval: 5 * time.Millisecond, ElectionTicks: 20, HeartbeatTicks: 2}
			c.Transport = tr
			c.NoBootstrap = raftID != 1
		})
		target.Store(nodes[i])
		served[i] = make(chan struct{})
		go func() {
			defer close(served[i])
			tr.Serve(lns[i])
		}()
	}
	t.Cleanup(func() {
		for i := range 3 {
			trs[i].Close()
			<-served[i]
			nodes[i].Close()
		}
	})
	for i := range 3 {
		for j := range 3 {
			if i != j {
				if err := trs[i].AddPeer(uint64(j+1), ids[j].Node.ID, lns[j].Addr().String()); err != nil {
					t.Fatal(err)
				}
			}
		}
	}

	l := leader(t, nodes, -1)
	var last node.TxID
	for i := range 20 {
		id, err := submitUntilAccepted(t, nodes[l], "c", fmt.Sprintf("over-tls-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		last = id
	}
	for _, n := range nodes {
		waitCommitted(t, n, last)
	}

	// The primary's network goes: the other two elect a primary and commit.
	trs[l].Close()
	l2 := leader(t, nodes, l)
	id, err := submitUntilAccepted(t, nodes[l2], "c", "after the primary's network went")
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range nodes {
		if i != l {
			waitCommitted(t, n, id)
		}
	}
}
