package node_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/node"
)

// TestCutOffNodeRefusesWrites: a primary cut off from the others steps
// down (CheckQuorum) and then knows no primary. A write submitted to it
// must not wait for an election that cannot come: it is refused with
// ErrNotPrimary within a few election timeouts, and never written.
func TestCutOffNodeRefusesWrites(t *testing.T) {
	net, nodes, _ := startCluster(t)
	l := leader(t, nodes, -1)
	if _, err := submitUntilAccepted(t, nodes[l], "c", "before"); err != nil {
		t.Fatal(err)
	}
	net.partition(uint64(l+1), true)
	deadline := time.Now().Add(20 * time.Second)
	for nodes[l].IsPrimary() || nodes[l].RaftInfo().Leader != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the cut-off primary did not step down")
		}
		time.Sleep(5 * time.Millisecond) // polling for the step-down, bounded by the deadline
	}
	f, err := nodes[l].SubmitEntry("c", []byte("while cut off"))
	if err != nil {
		if errors.Is(err, node.ErrNotPrimary) {
			return
		}
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := f.Wait(ctx); !errors.Is(err, node.ErrNotPrimary) {
		t.Fatalf("a write to a node that knows no primary: %v, want ErrNotPrimary", err)
	}
}
