package node_test

import (
	"slices"
	"testing"
	"time"
)

// TestRaftInfoNamesTheLeader: in a three-node group every node's RaftInfo
// names the same leader, in the same view, with itself as Leader there and
// Follower elsewhere, and the three voters; after the leader is cut off, the
// others report the new leader in a later view.
func TestRaftInfoNamesTheLeader(t *testing.T) {
	net, nodes, _ := startCluster(t)
	l := leader(t, nodes, -1)
	check := func(l int, exclude int) uint64 {
		t.Helper()
		want := nodes[l].RaftInfo()
		if want.Role != "Leader" || want.Leader != want.ID || want.ID != uint64(l+1) {
			t.Fatalf("leader %d reports %+v", l+1, want)
		}
		deadline := time.Now().Add(20 * time.Second)
		for i, n := range nodes {
			if i == l || i == exclude {
				continue
			}
			for {
				got := n.RaftInfo()
				if got.Leader == want.ID && got.View == want.View {
					if got.Role != "Follower" || got.ID != uint64(i+1) || !slices.Equal(got.Voters, []uint64{1, 2, 3}) {
						t.Fatalf("follower %d reports %+v", i+1, got)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("follower %d reports %+v; the leader %+v", i+1, got, want)
				}
				time.Sleep(5 * time.Millisecond) // polling for the heartbeat, bounded by the deadline
			}
		}
		return want.View
	}
	view := check(l, -1)
	net.partition(uint64(l+1), true)
	l2 := leader(t, nodes, l)
	if view2 := check(l2, l); view2 <= view {
		t.Fatalf("the new leader's view %d is not after %d", view2, view)
	}
}
