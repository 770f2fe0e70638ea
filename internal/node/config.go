package node

import (
	"context"
	"errors"
	"fmt"
	"github.com/ledgerd/ledgerd/internal/tables"
	"log/slog"
	"time"

	"github.com/ledgerd/ledgerd/internal/consensus"
	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/ledger"

	"github.com/ledgerd/ledgerd/internal/durable"
)

// Config configures a node. Zero fields take the documented defaults.
type Config struct {
	// Dir is the data directory. The ledger is in Dir/ledger; the Merkle
	// tree, signature index, Raft state and state snapshot beside it.
	Dir string
	// Identities are the service and node identities and the ledger secret
	// (see identity.LoadOrCreate). Required.
	Identities *identity.Identities
	// SignatureInterval is the longest time a transaction waits for the
	// signature that makes it committable. Default 5ms.
	SignatureInterval time.Duration
	// SignatureTxs emits a signature after this many transactions even if
	// SignatureInterval has not passed. Default 5000.
	SignatureTxs int
	// SyncInterval is the shortest time between the starts of two fsyncs
	// of the ledger: transactions sequenced meanwhile join the next one
	// (group commit). Appends are answered once sequenced, so it delays
	// only commit, by at most this much; an fsync costs this machine class
	// ~150µs of CPU, whatever its size. Default 2ms; negative: no wait.
	SyncInterval time.Duration
	// ChunkSize is the size after which the next signature ends the current
	// ledger chunk file (CCF ledger.chunk_size). Default 5 MB.
	ChunkSize int64
	// MaxQueue bounds the submissions waiting to be sequenced; Submit
	// returns ErrBusy beyond it. Default 65536.
	MaxQueue int
	// MaxBatch bounds the transactions proposed to Raft in one batch.
	// Default 8192.
	MaxBatch int
	// CommitWindow bounds how far the primary runs ahead of commit: it
	// sequences queued submissions only while its oldest proposal that Raft
	// has not committed was sequenced less than CommitWindow ago. When the
	// followers (or its own disk) fall behind, submissions wait in the
	// queue (and beyond MaxQueue are refused) rather than pile up answered
	// but uncommitted, so the time from a write to its commit stays bounded
	// under overload. Default 20ms.
	CommitWindow time.Duration
	// SnapshotInterval is how often the applied state, the query index and
	// the sizes of the derived files are checkpointed, bounding the ledger
	// suffix replayed at start-up. Default 10s.
	SnapshotInterval time.Duration
	// SnapshotTxs checkpoints after this many applied transactions. Default
	// 100000: a crash's replay then costs ~0.4 s of CPU at 1 KiB entries.
	SnapshotTxs int
	// SnapshotBytes checkpoints after this many bytes of ledger entries
	// were appended, so that the replay after a crash stays bounded in
	// bytes when entries are large. Default 128 MiB.
	SnapshotBytes int64
	// SnapshotTxInterval is CCF's snapshots.tx_count: every node takes a
	// snapshot (snapshot.go) at the first committed signature of each
	// window of this many seqnos, and the primary records its evidence.
	// Default 10000 (CCF's default); negative: no snapshots.
	SnapshotTxInterval int
	// SnapshotsKept bounds the committed snapshot files kept in
	// Dir/snapshots (the oldest are removed). Default 5.
	SnapshotsKept int
	// NoBootstrap stops this node from founding a new service: by default a
	// node that finds no service record writes the genesis transaction
	// (single node, or the first member of a new group). Set it on the
	// other founding members.
	NoBootstrap bool
	// UnsafeAcceptLostTail starts the node even when its durable commit
	// point lies beyond the ledger it can recover (committed transactions
	// missing: a truncated or deleted chunk). Their seqnos are then issued
	// again, so two signed histories exist for them. Never the default:
	// restore the ledger files instead.
	UnsafeAcceptLostTail bool
	// Genesis is written in the genesis transaction, after the service
	// and node records: initial users, members, constitution.
	Genesis []ledger.MapWrites
	// StartOpening founds the service in CCF's status Opening instead of
	// Open: the data plane is refused until the members open the service
	// (the constitution's transition_service_to_open). Only the genesis
	// transaction reads it.
	StartOpening bool
	// RPCAddress and PeerAddress are this node's client and node-to-node
	// addresses (host:port), recorded in its record of the nodes table so
	// that joiners and peers reach it. Empty: not recorded.
	RPCAddress, PeerAddress string
	// Quote is this node's attestation, recorded in its record (a joiner's
	// is recorded by the join; the founder's here), so that every node can
	// list every Trusted node's quote. Nil: not recorded.
	Quote *tables.NodeQuoteInfo
	// Recover starts a new service over the ledger of a previous service
	// whose nodes are all lost (ledgerd --recover; disaster.go). Read on
	// the first start only: later starts find recovery.json.
	Recover *Recover
	// Raft configures consensus. Raft.ID defaults to 1.
	Raft consensus.Config
	// Transport sends Raft messages to the other members; peers deliver
	// theirs with Node.Step. Nil for a single-node service.
	Transport consensus.Transport
	// FetchSnapshot fetches the latest committed snapshot file of the
	// member with Raft id from (cmd/ledgerd: GET /ledgerd/node/snapshot on
	// the node-to-node interface), at most MaxSnapshotFile bytes. A backup
	// calls it when its primary sends a Raft snapshot (a MsgSnap: the
	// backup needs entries the primary no longer holds), verifies the file
	// against the service certificate and installs it (raftsnap.go). Nil:
	// such a MsgSnap is dropped, and the backup cannot catch up.
	FetchSnapshot func(ctx context.Context, from uint64) ([]byte, error)
	// Logger receives structured logs. Default slog.Default().
	Logger *slog.Logger
	// FS is the file system of the data directory's durable files (the
	// ledger, the Merkle tree, the signature index, the Raft state and the
	// checkpoint). Default durable.OS; crash tests pass a simulated disk
	// (durable/simdisk) that loses what was not fsynced.
	FS durable.FS
	// Now is the clock (for tests). Default time.Now. It decides when a
	// signature is due, when a sequencer cycle has run for a tick and when
	// the next fsync may start; a test that stops it should set
	// SyncInterval < 0, or each fsync waits SyncInterval more of real time
	// than the last.
	Now func() time.Time
	// Ticks drives Raft's logical clock (for tests): the loop ticks Raft
	// once per value received, instead of every Raft.TickInterval. A test
	// that sends on an unbuffered channel knows the tick was taken when the
	// send returns, and so steps elections and leases (ElectionTicks,
	// HeartbeatTicks) without the wall clock. Default nil: the wall clock.
	Ticks <-chan time.Time
}

func (c Config) withDefaults() Config {
	c.FS = durable.Or(c.FS)
	if c.SignatureInterval == 0 {
		c.SignatureInterval = 5 * time.Millisecond
	}
	if c.SyncInterval == 0 {
		c.SyncInterval = 2 * time.Millisecond
	}
	if c.SignatureTxs == 0 {
		c.SignatureTxs = 5000
	}
	if c.ChunkSize == 0 {
		c.ChunkSize = 5_000_000
	}
	if c.MaxQueue == 0 {
		c.MaxQueue = 1 << 16
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 8192
	}
	if c.CommitWindow == 0 {
		c.CommitWindow = 20 * time.Millisecond
	}
	if c.SnapshotInterval == 0 {
		c.SnapshotInterval = 10 * time.Second
	}
	if c.SnapshotTxs == 0 {
		c.SnapshotTxs = 100_000
	}
	if c.SnapshotTxInterval == 0 {
		c.SnapshotTxInterval = 10_000
	}
	if c.SnapshotsKept <= 0 {
		c.SnapshotsKept = 5
	}
	if c.SnapshotBytes == 0 {
		c.SnapshotBytes = 128 << 20
	}
	if c.Raft.ID == 0 {
		c.Raft.ID = 1
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Raft.Logger == nil {
		c.Raft.Logger = c.Logger
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.Raft = c.Raft.WithDefaults()
	return c
}

func (c Config) validate() error {
	switch {
	case c.Dir == "":
		return errors.New("node: Config.Dir is required")
	case c.Identities == nil:
		return errors.New("node: Config.Identities is required (see identity.LoadOrCreate)")
	case len(c.Identities.LedgerSecret) != 32:
		return errors.New("node: the ledger secret must be 32 bytes")
	case c.SignatureInterval < 0 || c.SignatureTxs < 1:
		return errors.New("node: SignatureInterval must be >= 0 and SignatureTxs >= 1")
	case c.ChunkSize < 1 || c.ChunkSize > 1<<32-1:
		return fmt.Errorf("node: ChunkSize must be in [1, 2^32-1] (CCF's positions are uint32), got %d", c.ChunkSize)
	case c.CommitWindow < 0:
		return errors.New("node: CommitWindow must not be negative")
	case c.MaxBatch < 1 || c.MaxQueue < c.MaxBatch:
		return errors.New("node: MaxBatch must be >= 1 and MaxQueue >= MaxBatch")
	}
	return c.Raft.Validate()
}
