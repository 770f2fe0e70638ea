package node

import (
	"slices"

	"go.etcd.io/raft/v3"
)

// RaftInfo is what this node knows of its Raft group, as the node endpoints
// report it (CCF's consensus details): its own Raft id, the leader's (0
// while none is known: an election is under way), the current view (Raft
// term), its role, and the voters and learners of the configuration it has
// applied.
type RaftInfo struct {
	ID       uint64
	Leader   uint64
	View     uint64
	Role     string // "Leader", "Follower" or "Candidate" (CCF's LeadershipState; a pre-candidate is a Candidate)
	Voters   []uint64
	Learners []uint64
	// ConfIndex is the index of the configuration change that made the
	// configuration (0: the initial one).
	ConfIndex uint64
}

// RaftInfo returns what this node last published of its Raft group. Its
// slices must not be modified.
func (r *Reader) RaftInfo() RaftInfo {
	if p := r.raftInfo.Load(); p != nil {
		return *p
	}
	return RaftInfo{Role: "Follower"}
}

// publishRaftInfo publishes the Raft group as the loop sees it now. Loop
// goroutine only: after the RawNode is built, on every Ready with a new
// soft or hard state, and after a configuration change is applied.
func (n *Node) publishRaftInfo() {
	st := n.rn.BasicStatus()
	cs := n.storage.State()
	conf := cs.Conf
	role := "Follower"
	switch st.RaftState {
	case raft.StateLeader:
		role = "Leader"
	case raft.StateCandidate, raft.StatePreCandidate:
		role = "Candidate"
	}
	n.raftInfo.Store(&RaftInfo{ID: st.ID, Leader: st.Lead, View: st.Term, Role: role,
		Voters: slices.Clone(conf.Voters), Learners: slices.Clone(conf.Learners), ConfIndex: cs.ConfIndex})
}
