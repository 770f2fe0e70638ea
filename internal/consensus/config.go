package consensus

import (
	"errors"
	"log/slog"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// Transport sends Raft messages to peers. Send must not block on the network
// for long: the Ready loop calls it after persisting, in order.
type Transport interface {
	Send(msgs []raftpb.Message)
}

// Config configures the Raft member of a node.
type Config struct {
	// ID is this member's Raft id (non-zero).
	ID uint64
	// Peers are the founding members, used only when the log is empty and
	// this node bootstraps a new service. A single-node service has one peer:
	// itself.
	Peers []uint64
	// Joining: the node joins an existing group (it has been added to its
	// configuration, or will be) and must not bootstrap one, whatever its
	// log: it starts with no configuration and learns it from the leader's
	// log, as etcd's joining members do.
	Joining bool
	// TickInterval is the duration of one Raft tick. Default 10ms.
	TickInterval time.Duration
	// ElectionTicks is Raft's election timeout in ticks. Default 50.
	ElectionTicks int
	// HeartbeatTicks is the leader's heartbeat interval in ticks. Default 5.
	HeartbeatTicks int
	// Logger receives Raft's logs. Default: slog.Default().
	Logger *slog.Logger
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.TickInterval == 0 {
		c.TickInterval = 10 * time.Millisecond
	}
	if c.ElectionTicks == 0 {
		c.ElectionTicks = 50
	}
	if c.HeartbeatTicks == 0 {
		c.HeartbeatTicks = 5
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports a configuration Raft would reject, saying how to fix it.
func (c Config) Validate() error {
	switch {
	case c.ID == 0:
		return errors.New("consensus: ID must be non-zero")
	case c.HeartbeatTicks <= 0 || c.ElectionTicks <= c.HeartbeatTicks:
		return errors.New("consensus: ElectionTicks must be greater than HeartbeatTicks (> 0)")
	case c.TickInterval <= 0:
		return errors.New("consensus: TickInterval must be positive")
	}
	return nil
}

// NewRawNode builds the RawNode over storage, bootstrapping a new group of
// Peers when the log is empty. applied is the highest index whose effects the
// node has already applied (Raft will not hand back entries at or below it).
func NewRawNode(c Config, storage *Storage, applied uint64) (*raft.RawNode, error) {
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	rc := &raft.Config{
		ID:              c.ID,
		ElectionTick:    c.ElectionTicks,
		HeartbeatTick:   c.HeartbeatTicks,
		Storage:         storage,
		Applied:         applied,
		MaxSizePerMsg:   4 << 20,
		MaxInflightMsgs: 256,
		// Backpressure is applied before proposing (the node's submission
		// queue is bounded), so Raft itself does not drop proposals.
		MaxUncommittedEntriesSize: 0,
		MaxCommittedSizePerReady:  64 << 20,
		CheckQuorum:               true,
		// Entries carry a seqno predicted by the proposer (node.propose):
		// the seqno is serialised in the entry and its IV, and must equal
		// the Raft index. A proposal forwarded by a follower to the leader
		// would land at whatever index the leader has next, so followers
		// refuse proposals instead (ErrProposalDropped); writes go to the
		// primary.
		DisableProposalForwarding: true,
		PreVote:                   true,
		// A leader that applies its own removal (a retired node's, once
		// committed) steps down at once, and the others elect a primary.
		// Without it etcd raft keeps it leader: it drops its proposals (no
		// write, no signature) but its heartbeats hold off any election,
		// so the service takes no write while it runs
		// (TestRemovedPrimaryStepsDown and TestRandomFaults' membership
		// invariant fail without it).
		StepDownOnRemoval: true,
		Logger:            raftLogger{c.Logger.With("component", "raft")},
	}
	rn, err := raft.NewRawNode(rc)
	if err != nil {
		return nil, err
	}
	if last, _ := storage.LastIndex(); !c.Joining && last == 0 && raft.IsEmptyHardState(storage.State().Hard) {
		peers := make([]raft.Peer, len(c.Peers))
		for i, id := range c.Peers {
			peers[i] = raft.Peer{ID: id}
		}
		if len(peers) == 0 {
			peers = []raft.Peer{{ID: c.ID}}
		}
		if err := rn.Bootstrap(peers); err != nil {
			return nil, err
		}
	}
	return rn, nil
}
