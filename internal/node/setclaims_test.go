package node_test

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/node"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// TestEndpointClaimsDigestReplicated: a transaction recording a claims
// digest set by a user-defined endpoint (tables.ClaimsDigestWrites) has that
// claims digest on every node of a cluster, the backups' taken from the
// primary's entry, so every node's receipt of it carries the digest and
// verifies; a restarted node replaying its ledger answers the same.
func TestEndpointClaimsDigestReplicated(t *testing.T) {
	_, nodes, dirs := startCluster(t)
	l := leader(t, nodes, -1)
	digest := sha256.Sum256([]byte("alice transferred 5 from a to b"))
	f, err := nodes[l].Submit([]ledger.MapWrites{
		{Name: "app.accounts", Writes: []ledger.KV{{Key: []byte("a"), Value: []byte("1")}}},
		tables.ClaimsDigestWrites(digest),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := f.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	after, err := submitUntilAccepted(t, nodes[l], "c", "after")
	if err != nil {
		t.Fatal(err)
	}
	ids, err := identity.LoadOrCreate(dirs[0], identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	check := func(i int, n *node.Node) {
		t.Helper()
		verifyReceipt(t, n, ids, id)
		r, err := n.Receipt(id)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.VerifyClaimsDigest(digest); err != nil {
			t.Fatalf("node %d: %v", i+1, err)
		}
	}
	for i, n := range nodes {
		waitCommitted(t, n, after)
		check(i, n)
	}
	// A backup restarted alone replays its ledger: the same digest.
	b := (l + 1) % len(nodes)
	if err := nodes[b].Close(); err != nil {
		t.Fatal(err)
	}
	n := openNode(t, dirs[b], func(c *node.Config) { c.Dir = dirs[b] })
	defer n.Close()
	check(b, n)
}
