package node_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/auth"
	"github.com/ledgerd/ledgerd/internal/gov"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/node"
)

// neverSigning configures a node that signs once after genesis and then
// not for an hour: what it sequences afterwards stays Pending.
func neverSigning(c *node.Config) {
	c.SignatureInterval = time.Hour
	c.SignatureTxs = 1 << 30
}

func submitWrites(t *testing.T, n *node.Node, w ...ledger.MapWrites) node.TxID {
	t.Helper()
	f, err := n.Submit(w)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := f.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestReadYourWrites: reads see the node's latest executed state, as CCF's
// endpoints do: a write is visible (current entry, collection list, users)
// as soon as it is answered, while it is still Pending. What only committed
// data may answer (entry by id, receipts) still waits for commit, and the
// committed state (which the checkpoint saves) holds none of it.
func TestReadYourWrites(t *testing.T) {
	n := openNode(t, t.TempDir(), neverSigning)
	defer n.Close()
	for i := range 20 {
		coll, body := fmt.Sprintf("new-%d", i), fmt.Sprintf("v-%d", i)
		id := appendEntry(t, n, coll, body)
		if st := n.Status(id); st != node.StatusPending {
			t.Fatalf("status of %s = %v, want Pending (nothing is signed)", id, st)
		}
		e, err := n.LatestEntry(coll)
		if err != nil || e.ID != id || string(e.Contents) != body || e.Collection != coll {
			t.Fatalf("LatestEntry(%s) right after the append = %+v, %v; want %s %q", coll, e, err, id, body)
		}
		if !slices.Contains(n.State().Collections(), coll) {
			t.Fatalf("collection %s not listed right after its first append: %v", coll, n.State().Collections())
		}
	}
	for i := range 100 {
		body := fmt.Sprintf("same-%d", i)
		id := appendEntry(t, n, "same", body)
		e, err := n.LatestEntry("same")
		if err != nil || e.ID != id || string(e.Contents) != body {
			t.Fatalf("append %d: LatestEntry = %+v, %v; want %s %q", i, e, err, id, body)
		}
		if c, ok := n.State().Collection("same"); !ok || c.Count != uint64(i+1) || c.Latest != id {
			t.Fatalf("append %d: index = %+v, %v", i, c, ok)
		}
		if _, err := n.Entry(id); !errors.Is(err, node.ErrUncommitted) {
			t.Fatalf("Entry(%s) of a Pending write = %v, want ErrUncommitted", id, err)
		}
		if _, err := n.Receipt(id); !errors.Is(err, node.ErrUncommitted) {
			t.Fatalf("Receipt(%s) of a Pending write = %v, want ErrUncommitted", id, err)
		}
	}
	submitWrites(t, n, gov.SetUser("alice", auth.RoleContributor.String()))
	if r, ok := gov.UserRoles(n.State(), "alice"); !ok || len(r) != 1 || r[0] != auth.RoleContributor.String() {
		t.Fatalf("user alice right after her Pending creation: %v %v", r, ok)
	}
	submitWrites(t, n, gov.RemoveUser("alice"))
	if _, ok := gov.UserRoles(n.State(), "alice"); ok {
		t.Fatal("user alice still listed right after her Pending removal")
	}

	latest, committed := node.StateDumps(n)
	replay, err := node.ReplayCommitted(n)
	if err != nil {
		t.Fatal(err)
	}
	if committed != replay {
		t.Fatalf("committed state differs from a replay of the committed ledger:\n%s\nwant\n%s", committed, replay)
	}
	if latest == committed {
		t.Fatal("the latest state equals the committed one although 120 writes are Pending")
	}
}
