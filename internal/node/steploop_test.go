package node_test

import (
	"io/fs"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/ledgerd/ledgerd/internal/consensus"
	"github.com/ledgerd/ledgerd/internal/durable"
	"github.com/ledgerd/ledgerd/internal/node"
)

// sendLog is a transport that records every Send call.
type sendLog struct {
	mu    sync.Mutex
	calls [][]raftpb.Message
	more  chan struct{} // signalled after each call
}

func (s *sendLog) Send(msgs []raftpb.Message) {
	s.mu.Lock()
	s.calls = append(s.calls, append([]raftpb.Message(nil), msgs...))
	s.mu.Unlock()
	select {
	case s.more <- struct{}{}:
	default:
	}
}

// count returns the number of messages of type t sent, and in how many
// Send calls.
func (s *sendLog) count(t raftpb.MessageType) (msgs int, perCall []int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.calls {
		k := 0
		for _, m := range c {
			if m.Type == t {
				k++
			}
		}
		if k > 0 {
			msgs += k
			perCall = append(perCall, k)
		}
	}
	return msgs, perCall
}

// armedFS blocks the fsyncs of its files while armed, and says when one
// waits: the test knows the loop is inside a Ready.
type armedFS struct {
	durable.FS
	mu      sync.Mutex
	armed   chan struct{} // non-nil while armed; closed to release
	waiting chan struct{}
}

func (a *armedFS) arm() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.armed = make(chan struct{})
}

func (a *armedFS) release() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.armed != nil {
		close(a.armed)
		a.armed = nil
	}
}

func (a *armedFS) OpenFile(name string, flag int, perm fs.FileMode) (durable.File, error) {
	f, err := a.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return armedFile{f, a}, nil
}

type armedFile struct {
	durable.File
	a *armedFS
}

func (f armedFile) Sync() error {
	f.a.mu.Lock()
	c := f.a.armed
	f.a.mu.Unlock()
	if c != nil {
		f.a.waiting <- struct{}{}
		<-c
	}
	return f.File.Sync()
}

// TestLoopStepsEveryWaitingMessage is the regression test of the run
// loop's "step every peer message already received" (commit 04c5a3b):
// messages that arrive while the loop is busy in a Ready must all be
// stepped before its next cycle, not one per cycle (under load a primary's
// followers' acknowledgements then queued, ever staler, and three-node
// commit p50 fell to 1.8-4.8 s instead of ~0.3 s).
//
// A follower (no ticks, so no election), past its start (it answered a
// heartbeat of view 2), gets a heartbeat of view 3 from "node 2" (the
// test): its Ready must sync the new term, and the test holds that fsync. Meanwhile k more heartbeats arrive. Released, the loop
// finishes that Ready (one response), then steps the k waiting heartbeats
// in one go: their k responses leave in one Ready, one Send. Stepping one
// message per cycle sends them in k Sends. Counts only, no timing.
func TestLoopStepsEveryWaitingMessage(t *testing.T) {
	const k = 8
	afs := &armedFS{FS: durable.OS, waiting: make(chan struct{}, 1)}
	tr := &sendLog{more: make(chan struct{}, 1)}
	n := openNode(t, t.TempDir(), func(c *node.Config) {
		c.FS = afs
		c.Transport = tr
		c.NoBootstrap = true
		c.Ticks = make(chan time.Time) // never ticked: no election, no heartbeat of its own
		c.Raft = consensus.Config{ID: 1, Peers: []uint64{1, 2, 3}, ElectionTicks: 10, HeartbeatTicks: 1}
	})
	defer n.Close()
	// First a heartbeat of view 2, answered: the loop is past its start.
	n.Step(raftpb.Message{Type: raftpb.MsgHeartbeat, From: 2, To: 1, Term: 2})
	waitSent := func(want int) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			if got, _ := tr.count(raftpb.MsgHeartbeatResp); got >= want {
				return
			}
			select {
			case <-tr.more:
			case <-deadline:
				got, per := tr.count(raftpb.MsgHeartbeatResp)
				t.Fatalf("%d heartbeat responses sent (per Send: %v), want %d", got, per, want)
			}
		}
	}
	waitSent(1)

	hb := raftpb.Message{Type: raftpb.MsgHeartbeat, From: 2, To: 1, Term: 3}
	afs.arm()
	n.Step(hb)
	select {
	case <-afs.waiting: // the loop is in the Ready of the new term, at its fsync
	case <-time.After(10 * time.Second):
		t.Fatal("the heartbeat of a new term caused no fsync")
	}
	for range k {
		n.Step(hb)
	}
	afs.release()

	waitSent(2 + k)
	got, per := tr.count(raftpb.MsgHeartbeatResp)
	if got != 2+k || len(per) != 3 || per[1] != 1 || per[2] != k {
		t.Fatalf("heartbeat responses per Send: %v, want [1 1 %d]: the %d heartbeats waiting while the loop was busy were not all stepped before its next Ready", per, k, k)
	}
}
