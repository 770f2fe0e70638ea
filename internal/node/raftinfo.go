package node

import (
	"cmp"
	"slices"
	"sync"
	"time"

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
	// Acks is, on the primary only, its view of each other member's
	// replication (CCF's consensus details acks), by Raft id: republished
	// every Raft tick while primary. Nil on a backup.
	Acks []PeerAck
}

// PeerAck is the primary's view of one other member, from Raft's progress.
type PeerAck struct {
	ID uint64
	// Match is the highest seqno known to be in its log (Raft's
	// Progress.Match): CCF's acknowledged seqno.
	Match uint64
	// RecentActive: the primary has heard from it within the current
	// election timeout (Raft's Progress.RecentActive, as CheckQuorum uses it).
	RecentActive bool
	// LastAck is when its last acknowledgement (an append or heartbeat
	// response) arrived; the node's start if none has since.
	LastAck time.Time
}

// ackTimes records when each peer's last acknowledgement arrived. Written
// by Step (the transport's goroutines), read by the loop.
type ackTimes struct {
	mu    sync.Mutex
	at    map[uint64]time.Time
	since time.Time // the node's start
}

func (a *ackTimes) heard(id uint64, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.at == nil {
		a.at = map[uint64]time.Time{}
	}
	a.at[id] = now
}

func (a *ackTimes) last(id uint64) time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	if t, ok := a.at[id]; ok {
		return t
	}
	return a.since
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
	var acks []PeerAck
	if st.RaftState == raft.StateLeader {
		for id, pr := range n.rn.Status().Progress {
			if id != st.ID {
				acks = append(acks, PeerAck{ID: id, Match: pr.Match, RecentActive: pr.RecentActive, LastAck: n.acks.last(id)})
			}
		}
		slices.SortFunc(acks, func(a, b PeerAck) int { return cmp.Compare(a.ID, b.ID) })
	}
	n.raftInfo.Store(&RaftInfo{ID: st.ID, Leader: st.Lead, View: st.Term, Role: role,
		Voters: slices.Clone(conf.Voters), Learners: slices.Clone(conf.Learners), ConfIndex: cs.ConfIndex, Acks: acks})
}
