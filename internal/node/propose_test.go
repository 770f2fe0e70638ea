package node_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/ledgerd/ledgerd/internal/node"
)

// TestLoopCallsAfterStop: the calls that reach the loop goroutine never
// block on a stopped node: reports are dropped, a proposal is refused.
func TestLoopCallsAfterStop(t *testing.T) {
	n := openNode(t, t.TempDir(), nil)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 1000 { // more than the loop's work queue holds
			n.ReportUnreachable(2)
			n.ReportSnapshot(2, true)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("ReportUnreachable/ReportSnapshot blocked on a stopped node")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := n.ProposeConfChange(ctx, raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: 2}); !errors.Is(err, node.ErrStopped) {
		t.Fatalf("ProposeConfChange on a stopped node = %v, want ErrStopped", err)
	}
}
