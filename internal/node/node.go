package node

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/ledgerd/ledgerd/internal/consensus"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/merkle"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// Errors a caller can act on.
var (
	// ErrBusy: the submission queue is full; retry later (HTTP 503).
	ErrBusy = errors.New("node: too many pending transactions")
	// ErrStopped: the node is shutting down or stopped after a fatal error.
	ErrStopped = errors.New("node: stopped")
	// ErrNotPrimary: another node is the primary; writes go there.
	ErrNotPrimary = errors.New("node: not the primary")
	// ErrUncommitted: the transaction is not committed yet.
	ErrUncommitted = errors.New("node: transaction not committed yet")
	// ErrNotFound: no such transaction (unknown or invalid).
	ErrNotFound = errors.New("node: transaction not found")
	// ErrInvalid: the transaction was rolled back and will never commit.
	ErrInvalid = errors.New("node: transaction invalid (rolled back)")
	// ErrNotEntry: the transaction exists but holds no ledger entry of the
	// requested collection (e.g. a signature or governance transaction).
	ErrNotEntry = errors.New("node: transaction holds no ledger entry")
	// ErrNoSpace: the disk is full; writes are refused until the ones
	// already sequenced are persisted (HTTP 507). Reads are served.
	ErrNoSpace = errors.New("node: the disk is full; writes are refused until space is freed")
	// ErrNoDescriptors: the process has no file descriptor left; writes
	// are refused until the ones already sequenced are persisted (HTTP 503).
	ErrNoDescriptors = errors.New("node: out of file descriptors; writes are refused until some are freed")
)

// Node is one ledgerd node. Its methods are safe for concurrent use.
//
// A Node is its write side (the queue, the proposer, the Raft Ready loop,
// recovery) around its read side, the embedded Reader: the loop writes the
// files and the state the Reader holds, and publishes the commit point the
// Reader's answers depend on; the Reader's methods are promoted to Node.
type Node struct {
	Reader

	cfg Config

	verifier *tables.Verifier // of signature transactions
	// A recovered service (disaster.go): the previous service's signatures'
	// verifier, what recovery.json says, whether this is the first start of
	// the recovery, and the seqno that recorded the recovered secrets.
	prevs       []prevService // by End
	prevScanned uint64        // the ledger from this seqno on was scanned for them (0: not yet)
	// snapWarned: when warnSnapshotFailed last logged for each peer.
	snapWarnMu    sync.Mutex
	snapWarned    map[uint64]time.Time
	recovery      *recoveryFile
	firstRecovery bool
	recoveredAt   uint64
	// recoveredNoted: the transaction recording the recovered secrets,
	// appended, not yet installed (noteRecoveredSecrets). Loop-owned.
	recoveredNoted *notedRecovered
	hs             *consensus.HardStateFile
	storage        *consensus.Storage
	rn             *raft.RawNode // owned by the loop goroutine
	acks           ackTimes      // when each peer's last acknowledgement arrived (RaftInfo.Acks)

	// Owned by the loop goroutine.
	hints       []hint    // what the primary learnt serialising its proposals, in seqno order
	proposeNext uint64    // seqno of the next proposal, while proposals are not yet persisted
	lastSyncAt  time.Time // when the last ledger fsync was allowed to start
	txsSinceSig int       // transactions persisted since the last signature
	lastSig     uint64    // seqno of the last signature in the log
	lastSigAt   time.Time // when this node last proposed a signature
	// sigProposed: seqno of the last signature this node proposed (0 once
	// its proposals are forgotten); above lastSig while not yet persisted.
	sigProposed uint64
	// viewUnsigned: this node leads a view it has not signed in yet; the
	// next signature is due at once (signatureDue).
	viewUnsigned bool
	// chunkRequested makes the next signature end the chunk (RequestLedgerChunk).
	chunkRequested atomic.Bool
	cycleStart     time.Time // start of the current sequencer cycle
	raftCommit     uint64    // highest Raft-committed index delivered
	sinceSnap      int       // transactions applied since the last checkpoint
	transport      consensus.Transport
	recvc          chan raftpb.Message
	held           []raftpb.Message // peers' messages stepAck left for the loop
	uncommitted    []proposedAt     // proposals Raft has not committed, oldest first (windowOpen)
	ctrlc          chan func()      // work for the loop goroutine (onLoop)
	execLock       chan struct{}    // the executor's lock (Exec)
	genesisQueued  bool

	// Snapshots (snapshot.go). snapshotRequested: trigger_snapshot asked
	// for one at the next signature; snapshotRequestedAt: that signature's
	// seqno; snapshotTriggers: the seqnos of trigger_snapshot's
	// transactions appended and not yet committed (loop-owned, as are
	// pendingSnaps).
	snapshotRequested   atomic.Bool
	snapshotRequestedAt uint64
	snapshotTriggers    []uint64
	pendingSnaps        []*pendingSnapshot
	evidenceSeen        []seenEvidence
	// startup is the snapshot this node started from (nil: it holds the
	// whole ledger); set at open, and when it installs one (raftsnap.go).
	startup *Snapshot
	// Raft snapshots (raftsnap.go): the latest snapshot's descriptor sent
	// to backups (snapSrc), a fetch from the primary in progress
	// (fetching), and the verified snapshot Raft is installing (incoming,
	// loop-owned).
	snapSrc    snapSource
	fetching   atomic.Bool
	fetchRetry fetchBackoff // guarded by fetching
	incoming   *receivedSnapshot

	// bytesSinceSnap is the bytes of entries appended since the last
	// checkpoint (Config.SnapshotBytes). Loop-owned.
	bytesSinceSnap int64

	// Submission queue (any goroutine → loop).
	qmu     sync.Mutex
	queue   []*proposal
	qsignal chan struct{}

	stats Stats
	stall atomic.Pointer[Stall] // non-nil while persisting is stalled

	stopOnce sync.Once
	stopc    chan struct{}
	donec    chan struct{}
	fatalErr atomic.Pointer[error]
}

// Stats are counters for metrics. Read with Node.Stats.
type Stats struct {
	Appends    atomic.Uint64 // transactions persisted by this node
	Signatures atomic.Uint64
	Batches    atomic.Uint64
	Stalls     atomic.Uint64 // times persisting stalled for lack of disk space or descriptors
}

// proposedAt records that the proposals up to seqno last were sequenced at
// (or within a millisecond after) at.
type proposedAt struct {
	last uint64
	at   time.Time
}

type proposal struct {
	writes []ledger.MapWrites
	claims [32]byte // the transaction's claims digest (snapshot evidence)
	fut    *Future
	// queued is when a client's submission was queued (zero for the
	// node's own: genesis, its record), for expireQueued.
	queued time.Time
}

// Future is the result of Submit: it resolves to the transaction id once
// the primary has sequenced the transaction into the log with its final
// view and seqno (status Pending), as CCF answers a write once it is
// executed locally. Pending promises nothing durable: the transaction is
// durable once it is Committed, and becomes Invalid if a crash or a change
// of primary loses it first (see Node.WaitCommitted).
type Future struct {
	done chan struct{}
	id   TxID
	err  error
}

func newFuture() *Future { return &Future{done: make(chan struct{})} }

func (f *Future) resolve(id TxID, err error) {
	f.id, f.err = id, err
	close(f.done)
}

// Done is closed when the future has resolved.
func (f *Future) Done() <-chan struct{} { return f.done }

// Wait blocks until the transaction is sequenced (Pending) or ctx ends.
func (f *Future) Wait(ctx context.Context) (TxID, error) {
	select {
	case <-f.done:
		return f.id, f.err
	case <-ctx.Done():
		return TxID{}, ctx.Err()
	}
}

// Open opens (or creates) the node's data directory, recovers it, and starts
// the node. A node with an empty ledger founds a new service unless
// cfg.NoBootstrap.
func Open(cfg Config) (*Node, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	var serviceKey *ecdsa.PrivateKey
	if cfg.Identities.Service != nil {
		serviceKey = cfg.Identities.Service.Key
	}
	keys, err := tables.NewKeyring(cfg.Identities.LedgerSecret, serviceKey)
	if err != nil {
		return nil, err
	}
	donec := make(chan struct{})
	n := &Node{
		Reader: Reader{
			log:      cfg.Logger,
			keys:     keys,
			evidence: newEvidenceKey(cfg.Identities.LedgerSecret),
			state:    newState(),
			commitCh: make(chan struct{}),
			stopped:  donec,
		},
		cfg:       cfg,
		qsignal:   make(chan struct{}, 1),
		recvc:     make(chan raftpb.Message, 1024),
		ctrlc:     make(chan func(), 64),
		execLock:  make(chan struct{}, 1),
		stopc:     make(chan struct{}),
		donec:     donec,
		verifier:  tables.NewVerifier(cfg.Identities.Service.Cert),
		transport: cfg.Transport,
		acks:      ackTimes{since: cfg.Now()},
	}
	n.rebuild = n.repairDerived
	if err := n.setupRecovery(); err != nil {
		return nil, err
	}
	if err := n.openFiles(); err != nil {
		n.closeFiles()
		return nil, err
	}
	if err := n.recover(); err != nil {
		n.closeFiles()
		return nil, err
	}
	n.restorePendingSnapshots()
	n.pruneAside()
	go n.run()
	return n, nil
}

func (n *Node) openFiles() error {
	fsys := n.cfg.FS
	if err := fsys.MkdirAll(n.cfg.Dir, 0o700); err != nil {
		return err
	}
	installing, err := n.finishInterruptedInstall()
	if err != nil {
		return err
	}
	if n.ledger, err = ledger.Open(filepath.Join(n.cfg.Dir, "ledger"), ledger.Options{Logger: n.log, PreopenChunks: true, FS: fsys}); err != nil {
		var ce *ledger.CorruptionError
		if errors.As(err, &ce) {
			return fmt.Errorf("%w; restore the ledger files (ledger/) from a backup or a copy of this node's directory", err)
		}
		return err
	}
	startup, err := n.loadStartup()
	if err != nil {
		return err
	}
	if startup != nil {
		if err := n.setUpStartupLedger(startup); err != nil {
			return err
		}
	}
	treePath := filepath.Join(n.cfg.Dir, "merkle.tree")
	if n.tree, err = merkle.OpenFS(fsys, treePath); errors.Is(err, merkle.ErrCorrupt) && startup == nil {
		// Derived data: keep the damaged file for inspection, rebuild.
		n.log.Warn("merkle.tree is not a tree file; rebuilding it from the ledger", "path", treePath, "err", err)
		if err = fsys.Rename(treePath, treePath+".corrupt"); err == nil {
			n.tree, err = merkle.OpenFS(fsys, treePath)
		}
	}
	if err != nil {
		return err
	}
	if n.sigs, err = openSigIndex(fsys, filepath.Join(n.cfg.Dir, "signatures.idx")); err != nil {
		return err
	}
	if n.hs, err = consensus.OpenHardStateFS(fsys, filepath.Join(n.cfg.Dir, "raft.state")); err != nil {
		return err
	}
	n.storage = consensus.NewStorage(n.ledger, n.hs)
	n.storage.SetSnapshotSource(n.raftSnapshot)
	if startup != nil {
		if err := n.setUpStartupRaft(startup); err != nil {
			return err
		}
	}
	if installing {
		return n.installDone()
	}
	return nil
}

func (n *Node) closeFiles() error {
	var errs []error
	if n.tree != nil {
		errs = append(errs, n.tree.Sync(), n.tree.Close())
	}
	if n.sigs != nil {
		errs = append(errs, n.sigs.Close())
	}
	if n.hs != nil {
		errs = append(errs, n.hs.Sync(), n.hs.Close())
	}
	if n.ledger != nil {
		errs = append(errs, n.ledger.Close())
	}
	return errors.Join(errs...)
}

// Close stops the node, failing queued submissions with ErrStopped, writes
// a final checkpoint and closes its files.
func (n *Node) Close() error {
	n.stopOnce.Do(func() { close(n.stopc) })
	<-n.donec
	err := n.checkpoint()
	return errors.Join(err, n.closeFiles())
}

// Done is closed when the node's sequencer has stopped: after Close, or
// after a fatal error (see Err).
func (n *Node) Done() <-chan struct{} { return n.donec }

// Err returns the fatal error that stopped the node, if any.
func (n *Node) Err() error {
	if p := n.fatalErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Submit queues a transaction writing the given maps. The future resolves
// once it is sequenced and executed (Pending): reads see its writes from
// then on; WaitCommitted waits for it to be durable. The node keeps writes
// (and reads serve their values) until the transaction is committed or
// rolled back: the caller must not change them after Submit.
// While persisting is stalled (see Stalled) it refuses with the stall's
// error, which wraps ErrNoSpace or ErrNoDescriptors.
func (n *Node) Submit(writes []ledger.MapWrites) (*Future, error) {
	select {
	case <-n.stopc:
		return nil, ErrStopped
	case <-n.donec: // stopped after a fatal error: nothing would sequence it
		return nil, ErrStopped
	default:
	}
	if st := n.stall.Load(); st != nil {
		return nil, st.Err
	}
	p := &proposal{writes: writes, claims: entryClaimsDigest(writes), fut: newFuture(), queued: n.cfg.Now()}
	n.qmu.Lock()
	if len(n.queue) >= n.cfg.MaxQueue {
		n.qmu.Unlock()
		return nil, ErrBusy
	}
	n.queue = append(n.queue, p)
	n.qmu.Unlock()
	n.signalQueue()
	return p.fut, nil
}

// SubmitEntry queues a user ledger entry: contents in the given collection.
func (n *Node) SubmitEntry(collection string, contents []byte) (*Future, error) {
	return n.Submit(EntryWrites(collection, contents))
}

// EntryWrites is the write set of a user ledger entry: the contents in
// EntriesMap and a fresh random secret key in EntryClaimsMap, from which
// Submit computes the transaction's claims digest (entryClaimsDigest).
func EntryWrites(collection string, contents []byte) []ledger.MapWrites {
	key := make([]byte, EntryKeySize)
	if _, err := rand.Read(key); err != nil {
		panic("node: crypto/rand failed: " + err.Error()) // crypto/rand never fails on supported platforms
	}
	return []ledger.MapWrites{
		{Name: tables.EntriesMap, Writes: []ledger.KV{{Key: []byte(collection), Value: contents}}},
		{Name: tables.EntryClaimsMap, Writes: []ledger.KV{{Key: []byte(collection), Value: key}}},
	}
}

// TaggedEntryWrites is the write set of a user ledger entry with tags
// (EntryWrites, and the tags joined with ',' in EntryTagsMap). No tag may be
// empty or hold a comma; the caller checks.
func TaggedEntryWrites(collection string, contents []byte, tags []string) []ledger.MapWrites {
	w := EntryWrites(collection, contents)
	if len(tags) == 0 {
		return w
	}
	return append(w, ledger.MapWrites{Name: tables.EntryTagsMap,
		Writes: []ledger.KV{{Key: []byte(collection), Value: []byte(strings.Join(tags, ","))}}})
}

// EntryKeySize is the size of an entry's application claim secret key.
const EntryKeySize = 32

// entryClaimsDigest is the claims digest of a transaction with the given
// writes (tables.EntryClaimsDigest), so any node or auditor holding the
// ledger secret can recompute it from the entry.
func entryClaimsDigest(writes []ledger.MapWrites) [32]byte { return tables.EntryClaimsDigest(writes) }

// Step delivers a Raft message from a peer. It never blocks: if the node is
// overwhelmed the message is dropped, which Raft tolerates (it retries).
func (n *Node) Step(m raftpb.Message) {
	if m.Type == raftpb.MsgSnap {
		n.receiveSnapshot(m) // fetched and verified first (raftsnap.go)
		return
	}
	if m.Type == raftpb.MsgAppResp || m.Type == raftpb.MsgHeartbeatResp {
		n.acks.heard(m.From, n.cfg.Now())
	}
	select {
	case n.recvc <- m:
	default:
	}
}

// Stats returns the node's counters.
func (n *Node) Stats() *Stats { return &n.stats }

// publishCommit publishes a new commit point to the Reader and wakes its
// WaitCommitted callers.
func (n *Node) publishCommit(seqno uint64) {
	n.committed.Store(seqno)
	n.cmu.Lock()
	close(n.commitCh)
	n.commitCh = make(chan struct{})
	n.cmu.Unlock()
}

func (n *Node) fatal(err error) {
	err = fmt.Errorf("node: fatal: %w", err)
	n.fatalErr.CompareAndSwap(nil, &err)
	n.log.Error("node stopping after a fatal error", "err", err)
}
