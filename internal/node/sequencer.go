package node

import (
	"crypto/cipher"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/ledgerd/ledgerd/internal/consensus"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/merkle"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// run is the node's one goroutine that drives Raft. Everything that changes
// the log happens here, in this order, every cycle:
//
//  1. handle what Raft has ready (persist, send, commit, apply), for at
//     most one Raft tick (under load every Ready's fsync sequences more);
//  2. while primary, for at most one Raft tick: if a signature is due,
//     propose it; else sequence the queued submissions into a batch and
//     propose it; then handle the Ready that produces.
//
// A submission is answered as soon as it is sequenced: it has its final
// view and seqno in the log (Pending). Persisting is group commit: while one
// batch is written and fsynced, and for at least SyncInterval between
// fsyncs, newly queued submissions are sequenced behind it, and the next
// Ready persists them all with one fsync.
//
// Each transaction is serialised with its final seqno and view: proposals
// are numbered from the ledger's last seqno (the Raft log's last index once
// Ready is drained), continuing from the proposals not yet persisted.
func (n *Node) run() {
	defer close(n.donec)
	ticks := n.cfg.Ticks
	if ticks == nil {
		tick := time.NewTicker(n.cfg.Raft.TickInterval)
		defer tick.Stop()
		ticks = tick.C
	}
	// The signature ticker runs only while this node is primary: only the
	// primary signs, and on a backup it would wake the loop (and the
	// process) every SignatureInterval for nothing.
	var sigTick *time.Ticker
	defer func() {
		if sigTick != nil {
			sigTick.Stop()
		}
	}()
	snapTick := time.NewTicker(n.cfg.SnapshotInterval)
	defer snapTick.Stop()
	if err := n.campaignIfAlone(); err != nil {
		n.fatal(err)
		n.failQueued(ErrStopped)
		return
	}
	for {
		var sigc <-chan time.Time
		if primary := n.isPrimary.Load(); primary && sigTick == nil {
			sigTick = time.NewTicker(max(n.cfg.SignatureInterval, time.Millisecond))
		} else if !primary && sigTick != nil {
			sigTick.Stop()
			sigTick = nil
		}
		if sigTick != nil {
			sigc = sigTick.C
		}
		var heldc <-chan struct{} // ready while stepAck has held messages
		if len(n.held) > 0 {
			heldc = closedChan
		}
		select {
		case <-n.stopc:
			n.failQueued(ErrStopped)
			return
		case <-heldc:
			n.stepHeld()
		case <-ticks:
			n.rn.Tick()
			if n.isPrimary.Load() {
				n.publishRaftInfo() // the backups' progress (RaftInfo.Acks)
			}
		case m := <-n.recvc:
			_ = n.rn.Step(m)
			// And every other peer message already received: a cycle
			// under load runs for up to a tick, and taking one message
			// per cycle would leave the followers' acknowledgements
			// queued, ever staler, and commit ever further behind.
			for range len(n.recvc) {
				_ = n.rn.Step(<-n.recvc)
			}
		case f := <-n.ctrlc:
			f()
		case <-n.qsignal:
		case <-sigc: // wakes the primary's loop; signatureDue decides
		case <-snapTick.C:
			if err := n.checkpoint(); err != nil {
				n.log.Warn("couldn't checkpoint state", "err", err)
			}
		}
		if err := n.cycle(); err != nil {
			if !errors.Is(err, ErrStopped) { // stopped while persisting was stalled
				n.fatal(err)
			}
			n.failQueued(ErrStopped)
			return
		}
	}
}

// campaignIfAlone makes a single-member group elect itself at once instead
// of waiting for an election timeout. The configuration is read once the
// bootstrap conf changes are applied: before, a new group of several
// members reads as empty, and every member would campaign at once.
func (n *Node) campaignIfAlone() error {
	if err := n.drainReady(); err != nil { // apply the bootstrap conf change first
		return err
	}
	if cs := n.storage.State().Conf; len(cs.Voters) == 1 && cs.Voters[0] == n.cfg.Raft.ID {
		_ = n.rn.Campaign()
	}
	return n.drainReady()
}

func (n *Node) cycle() error {
	n.cycleStart = n.cfg.Now()
	if err := n.drainReadyForATick(); err != nil {
		return err
	}
	// While primary: a due signature goes first (under a steady load the
	// queue is never empty, and commit latency is bounded by signatures),
	// then the next batch.
	for n.isPrimary.Load() {
		if n.tickPassed() {
			// Let the loop tick Raft and take peers' messages, then come
			// straight back for the rest of the queue and of the log.
			n.signalQueue()
			return nil
		}
		signed := false
		if n.signatureDue() {
			var err error
			if signed, err = n.proposeSignature(); err != nil {
				return err
			}
		}
		if !signed {
			if n.queued() == 0 || !n.windowOpen() {
				return nil
			}
			n.yieldToSubmitters()
			if err := n.proposeQueued(true); err != nil {
				return err
			}
		}
		if err := n.drainReadyForATick(); err != nil {
			return err
		}
	}
	n.rejectQueuedIfFollower()
	return nil
}

// signalQueue wakes the loop for queued submissions.
func (n *Node) signalQueue() {
	select {
	case n.qsignal <- struct{}{}:
	default:
	}
}

func (n *Node) drainReady() error {
	for n.rn.HasReady() {
		if err := n.signBeforeReady(); err != nil {
			return err
		}
		if err := n.handleReady(n.rn.Ready()); err != nil {
			return err
		}
	}
	return nil
}

// drainReadyForATick is drainReady for at most one Raft tick from the
// cycle's start: under a steady load every Ready's fsync sequences the next
// batch, and the loop must still tick Raft and take peers' messages. The
// cycle checks tickPassed before it relies on the log being drained.
func (n *Node) drainReadyForATick() error {
	for n.rn.HasReady() {
		if n.tickPassed() {
			n.signalQueue() // come straight back for the rest
			return nil
		}
		if err := n.signBeforeReady(); err != nil {
			return err
		}
		if err := n.handleReady(n.rn.Ready()); err != nil {
			return err
		}
	}
	return nil
}

// tickPassed reports whether the current cycle has run for a Raft tick.
func (n *Node) tickPassed() bool {
	return n.cfg.Now().Sub(n.cycleStart) >= n.cfg.Raft.TickInterval
}

// yieldToSubmitters lets the goroutines that are ready to run, typically
// API handlers about to submit, run before the queue is taken. Under load
// the batch grows to everything they submit (each batch costs a proposal and
// a wake-up of every submitter); on an idle machine it returns at once.
func (n *Node) yieldToSubmitters() { runtime.Gosched() }

// handleReady is the durability protocol (see doc.go for its invariants).
// Its steps run in this order for every Ready; the crash window after each
// is written with it, and recover() handles each on restart.
func (n *Node) handleReady(rd raft.Ready) error {
	// 0. Role. A node that stops leading forgets what it predicted of its
	// proposals not yet persisted: their ids stop being Pending here, and
	// turn Invalid once a later view commits.
	// A node that starts leading owes its view a signature at once (CCF's
	// new primary signs as soon as it is elected; see doc.go, Failover).
	if rd.SoftState != nil {
		leads := rd.SoftState.RaftState == raft.StateLeader
		if leads && !n.isPrimary.Load() {
			n.viewUnsigned = true
		}
		n.isPrimary.Store(leads)
		if !leads {
			n.viewUnsigned = false
			n.forgetProposals()
		}
	}
	if rd.SoftState != nil || rd.HardState.Term != n.RaftInfo().View && !raft.IsEmptyHardState(rd.HardState) {
		n.publishRaftInfo()
	}
	// 0b. Replicate in parallel. The primary sends its appends (and
	// heartbeats) now, before it writes and fsyncs them itself, so the
	// followers persist while it does (Raft thesis 10.2.1; etcd's server
	// does the same, as the Ready contract allows). Its own vote for them
	// still waits for its fsync (Advance, step 11): an entry is committed
	// once a quorum, with or without the primary, has it on disk. Not when
	// this Ready changes term or vote (durable before any message, step 8),
	// and responses (which acknowledge this node's own log or vote) wait for
	// step 9.
	msgs := rd.Messages
	if n.isPrimary.Load() && n.transport != nil && len(msgs) > 0 && !n.hardStateMustSync(rd.HardState) {
		var now []raftpb.Message
		now, msgs = splitResponses(msgs)
		n.transport.Send(now)
	}
	// 0c. Snapshot. A snapshot from the primary, verified when fetched,
	// replaces the log, the derived files and the state before the
	// entries that follow it are written (raftsnap.go: installReceived).
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := n.installReceived(rd.Snapshot); err != nil {
			return err
		}
	} else {
		n.incoming = nil // Raft did not restore it (not past the commit point): drop the file
	}
	if len(rd.Entries) > 0 {
		// 1. Truncate. Entries that replace part of the log (a new
		// primary's suffix), or proposals this node executed but had not
		// persisted (Raft's unstable log overwritten), roll the ledger,
		// tree, signature index and latest state back first (CCF's
		// rollback). Never below the commit point.
		// Crash after: the ledger is durably cut (Truncate syncs); what
		// was cut was uncommitted, and Raft sends the new suffix again.
		if err := n.truncateFor(rd.Entries); err != nil {
			return err
		}
		// 2. Write. The entries go to the ledger, one write per Ready,
		// not fsynced yet. Entries Raft made (a new leader's empty entry,
		// conf changes) are serialised here, the same on every node.
		// Crash after: they may be torn or missing. Clients may hold their
		// ids (Pending) but none is committed: after recovery the node
		// leads a new view, and those ids are Invalid.
		raws, err := n.writeLedger(rd.Entries)
		if err != nil {
			return err
		}
		// 3. Delayed fsync. It starts no sooner than SyncInterval after
		// the previous one started (group commit): on the primary now, in
		// another goroutine; on a follower, which has nothing to sequence
		// meanwhile, inline at step 7 (startSync).
		synced := n.startSync()
		// 4. Derive. Append the entries' leaves to the Merkle tree and
		// signatures to the signature index (written, not fsynced:
		// recovery recomputes both from the ledger), verifying every
		// signature against the tree; execute into the latest state the
		// entries this node did not sequence itself (a follower's).
		// Crash after: the tree may hold leaves the ledger lost; recovery
		// cuts it to the ledger and checks it against the signatures.
		err = n.index(raws)
		// 5. Due signature. A signature still due (the Ready's entries
		// were not signed with them: see signBeforeReady) is proposed
		// here, ahead of the submissions sequenced during the fsync, so
		// commit latency stays bounded.
		if err == nil && n.signatureDue() {
			_, err = n.proposeSignature()
		}
		// 6. Sequence during the fsync. On the primary, queued
		// submissions are sequenced, executed and answered (Pending) while
		// the fsync runs; the next Ready persists them. At most MaxBatch
		// wait beyond the ledger (mayOverlap).
		// Crash meanwhile: answered ids that never reached the ledger;
		// Invalid after recovery, never Committed with other contents.
		// 7. Durable. Wait for the fsync. Only after it may Raft hear the
		// entries are stable (Advance, step 11) and count this node's vote
		// for them: nothing is Committed before a quorum has it on disk.
		if err := n.sequenceUntilSynced(synced, err); err != nil {
			return err
		}
		n.persisted(rd.Entries, raws)
	}
	// 8. Hard state. Term and vote must be durable before any message is
	// sent; the commit index need not be (it is recoverable from a quorum).
	if !raft.IsEmptyHardState(rd.HardState) {
		if err := n.storage.SetHardState(rd.HardState, n.hardStateMustSync(rd.HardState)); err != nil {
			return err
		}
	}
	// 9. Only now may the other messages go out (etcd raft's Ready
	// contract): a follower's acknowledgements, a candidate's votes.
	if len(msgs) > 0 && n.transport != nil {
		n.transport.Send(msgs)
	}
	// 10. Commit. Apply Raft-committed conf changes, then advance CCF's
	// commit to the last signature Raft has committed, folding the
	// executed transactions up to it into the committed state.
	// Crash after Raft commit but before this: recovery finds the commit
	// point from the hard state and the signature index and re-derives the
	// state from the last checkpoint (a committed state).
	if err := n.applyCommitted(rd.CommittedEntries); err != nil {
		return err
	}
	// 11. Advance: Raft learns the entries are stable and the Ready done.
	n.rn.Advance(rd)
	// 12. A snapshot sent (a descriptor: the backup fetches the file,
	// raftsnap.go) is reported finished: Raft probes the backup from the
	// snapshot on, and the backup's answer once installed (or its refusal
	// while not, which sends the snapshot again) follows.
	for _, m := range rd.Messages {
		if m.Type == raftpb.MsgSnap {
			n.rn.ReportSnapshot(m.To, raft.SnapshotFinish)
		}
	}
	return nil
}

// hardStateMustSync reports whether hs changes term or vote, which must be
// durable before any message goes out.
func (n *Node) hardStateMustSync(hs raftpb.HardState) bool {
	if raft.IsEmptyHardState(hs) {
		return false
	}
	prev := n.storage.State().Hard
	return hs.Term != prev.Term || hs.Vote != prev.Vote
}

// isResponse reports whether m answers for this node's own log or vote
// (etcd raft's messages "after append"): it may go out only once the
// Ready's entries and hard state are durable.
func isResponse(m raftpb.Message) bool {
	switch m.Type {
	case raftpb.MsgAppResp, raftpb.MsgVoteResp, raftpb.MsgPreVoteResp:
		return true
	}
	return false
}

// splitResponses returns the messages of msgs that may go out before the
// Ready is persisted, and the responses, which may not, each in order.
func splitResponses(msgs []raftpb.Message) (early, after []raftpb.Message) {
	for _, m := range msgs {
		if isResponse(m) {
			after = append(after, m)
		} else {
			early = append(early, m)
		}
	}
	return early, after
}

// truncateFor rolls the log and the latest state back before ents if they
// replace part of either (step 1).
func (n *Node) truncateFor(ents []raftpb.Entry) error {
	if first := ents[0].Index; first <= n.ledger.LastSeqno() {
		return n.rollback(first - 1)
	}
	if r := n.firstReplaced(ents); r != 0 {
		return n.rollback(r - 1)
	}
	return nil
}

// writeLedger appends ents to the ledger, not fsynced, and returns their
// CCF bytes (step 2). Entries a leader proposed carry their CCF bytes; the
// empty entry of a new leader and conf changes are serialised here,
// deterministically, so every node writes the same bytes.
//
// An entry serialised here is encrypted with the ledger secret of its
// seqno, which a rekey earlier in ents (not executed yet on a follower)
// may have changed: those rekeys are looked for when there is such an entry.
func (n *Node) writeLedger(ents []raftpb.Entry) ([][]byte, error) {
	raws := make([][]byte, len(ents))
	scan := slices.ContainsFunc(ents, func(e raftpb.Entry) bool { return e.Type != raftpb.EntryNormal || len(e.Data) == 0 })
	applied := n.state.Applied()
	var pending []tables.Rekey // rekeys in ents the state has not executed
	for i, e := range ents {
		raw, err := n.rawFor(e, pending)
		if err != nil {
			return nil, err
		}
		raws[i] = raw
		if scan && e.Index > applied && e.Type == raftpb.EntryNormal && len(e.Data) > 0 {
			if value, ok := rekeyIn(raw); ok {
				pending = append(pending, tables.Rekey{Seqno: e.Index, Value: value})
			}
		}
	}
	if err := n.ledger.Append(raws...); err != nil {
		return nil, fmt.Errorf("couldn't append to the ledger: %w", err)
	}
	return raws, nil
}

// startSync starts the ledger's fsync, no sooner than SyncInterval after
// the previous one started (step 3); sequenceUntilSynced waits for it (step
// 7). The primary fsyncs in another goroutine, and meanwhile sequences
// submissions and steps acknowledgements (step 6). A follower has nothing
// to do meanwhile but derive (step 4), so its fsync is not started here but
// run inline at step 7, at the same earliest start: a goroutine and two
// hand-offs fewer per Ready, and the wait for SyncInterval overlaps its
// deriving instead. Either way the fsync ends before step 7 returns, so
// every later step, and every crash window, is the same.
func (n *Node) startSync() pendingSync {
	start := n.lastSyncAt.Add(n.cfg.SyncInterval)
	now := n.cfg.Now()
	if start.Before(now) {
		start = now
	}
	n.lastSyncAt = start
	if !n.isPrimary.Load() {
		return pendingSync{start: start}
	}
	synced := make(chan error, 1)
	go func() { synced <- n.syncAt(start, false) }()
	return pendingSync{start: start, done: synced}
}

// pendingSync is a Ready's fsync (startSync).
type pendingSync struct {
	start time.Time  // the earliest it may start
	done  chan error // its result; nil: run inline at step 7 (a follower)
}

// syncAt waits until start, then fsyncs the ledger (syncLedger).
func (n *Node) syncAt(start time.Time, inline bool) error {
	if d := start.Sub(n.cfg.Now()); d > 0 {
		time.Sleep(d)
	}
	return n.syncLedger(inline)
}

// sequenceUntilSynced sequences queued submissions while the fsync runs
// (step 6), then returns once it has (step 7): with its error first, else
// err (from deriving or sequencing). A follower's fsync runs here (startSync).
func (n *Node) sequenceUntilSynced(ps pendingSync, err error) error {
	var serr error
	if ps.done == nil {
		serr = n.syncAt(ps.start, true)
	} else {
	sequencing:
		for {
			for err == nil && n.mayOverlap() {
				n.yieldToSubmitters()
				err = n.proposeQueued(false)
			}
			n.refuseQueuedIfStalled()
			select {
			case serr = <-ps.done:
				break sequencing
			case <-n.qsignal:
			case m := <-n.recvcWhilePrimary():
				n.stepAck(m)
			}
		}
	}
	if serr != nil {
		return fmt.Errorf("couldn't sync the ledger: %w", serr)
	}
	return err
}

// recvcWhilePrimary is the channel of peers' messages while this node is
// the primary, else nil (a follower's loop takes them between Readies).
func (n *Node) recvcWhilePrimary() <-chan raftpb.Message {
	if n.isPrimary.Load() {
		return n.recvc
	}
	return nil
}

// stepAck steps a peer's message received while the primary waits for its
// fsync (step 7), which is where a loaded primary spends most of its time:
// followers' acknowledgements of the current term are stepped at once, so
// that commit advances without waiting for the loop (up to a tick later).
// Anything else (a vote, a message of another term, which may change the
// role) is held for the loop, which steps it before anything else.
func (n *Node) stepAck(m raftpb.Message) {
	if (m.Type == raftpb.MsgAppResp || m.Type == raftpb.MsgHeartbeatResp) && m.Term == n.rn.BasicStatus().Term {
		_ = n.rn.Step(m)
		return
	}
	n.held = append(n.held, m)
}

// closedChan is always ready.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// stepHeld steps the messages stepAck held, in the order received.
func (n *Node) stepHeld() {
	for _, m := range n.held {
		_ = n.rn.Step(m)
	}
	n.held = n.held[:0]
}

// persisted records that ents are durable: Raft's storage serves them from
// memory (as the CCF bytes Storage.Entries would return) and lastSeqno
// covers them.
func (n *Node) persisted(ents []raftpb.Entry, raws [][]byte) {
	cached := make([]raftpb.Entry, len(ents))
	for i, e := range ents {
		cached[i] = e
		if e.Type == raftpb.EntryNormal {
			cached[i].Data = raws[i] // what Storage.Entries would return
		}
	}
	n.storage.Cache(cached)
	n.lastSeqno.Store(n.ledger.LastSeqno())
	n.stats.Batches.Add(1)
}

// firstReplaced returns the index of the first of ents that is at or below
// the latest executed seqno but is not the entry this node executed there
// (0 if none): every transaction this node executed but has not persisted
// was sequenced by it and has a hint holding its exact bytes.
func (n *Node) firstReplaced(ents []raftpb.Entry) uint64 {
	applied := n.state.Applied()
	j := 0
	for _, e := range ents {
		if e.Index > applied {
			return 0
		}
		for j < len(n.hints) && n.hints[j].seqno < e.Index {
			j++
		}
		if j == len(n.hints) || n.hints[j].seqno != e.Index {
			return e.Index
		}
		if h := n.hints[j]; h.confChange && (e.Type != raftpb.EntryNormal || len(e.Data) == 0) {
			continue
		}
		if len(e.Data) == 0 || &n.hints[j].raw[0] != &e.Data[0] {
			return e.Index
		}
	}
	return 0
}

// mayOverlap reports whether the primary may sequence submissions while a
// batch syncs: whenever any are queued, unless MaxBatch of them already wait
// for the next Ready. That bounds the answered but unpersisted transactions
// when the disk stalls; submissions then wait in the queue, and beyond
// MaxQueue are refused (ErrBusy). Signatures are not starved (a due one is
// proposed before them), nor are ticks and peers' messages
// (drainReadyForATick returns to the loop after a tick).
func (n *Node) mayOverlap() bool {
	return n.isPrimary.Load() && n.queued() > 0 && n.nextSeqno()-n.ledger.LastSeqno()-1 < uint64(n.cfg.MaxBatch) && n.windowOpen()
}

// windowOpen reports whether the primary may sequence more submissions:
// whether its oldest proposal that Raft has not committed was sequenced
// less than CommitWindow ago.
func (n *Node) windowOpen() bool {
	commit := n.rn.BasicStatus().Commit
	for len(n.uncommitted) > 0 && n.uncommitted[0].last <= commit {
		n.uncommitted = n.uncommitted[1:]
	}
	return len(n.uncommitted) == 0 || n.cfg.Now().Sub(n.uncommitted[0].at) < n.cfg.CommitWindow
}

// rekeyIn returns the EncryptedLedgerSecretsMap value of a serialised
// entry, if it is a rekey.
func rekeyIn(raw []byte) ([]byte, bool) {
	e, err := ledger.ParseEntry(raw)
	if err != nil || !consensus.HasPublicMaps(e) {
		return nil, false
	}
	d, err := e.PublicDomain()
	if err != nil {
		return nil, false
	}
	return tables.RekeyOf(d.Maps)
}

// rawFor returns the CCF bytes to store for Raft entry e; pending are
// rekeys before it that the state has not executed yet.
func (n *Node) rawFor(e raftpb.Entry, pending []tables.Rekey) ([]byte, error) {
	if e.Type == raftpb.EntryNormal && len(e.Data) > 0 {
		seqno, view, err := ledger.EntrySeqnoView(e.Data)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", e.Index, err)
		}
		if seqno != e.Index || view != e.Term {
			return nil, fmt.Errorf("entry at index %d term %d claims seqno %d view %d", e.Index, e.Term, seqno, view)
		}
		return e.Data, nil
	}
	var writes []ledger.MapWrites
	if e.Type != raftpb.EntryNormal {
		writes = consensus.ConfChangeWrites(e)
	}
	rekeys := n.state.rekeys()
	if len(pending) > 0 {
		rekeys = append(rekeys[:len(rekeys):len(rekeys)], pending...)
	}
	aead, err := n.keys.AEAD(rekeys, e.Index)
	if err != nil {
		return nil, err
	}
	return n.encode(nil, e.Term, e.Index, writes, 0, aead)
}

// index appends the leaves of persisted entries to the Merkle tree and
// records signatures, verifying each signature against the tree.
func (n *Node) index(raws [][]byte) error {
	leaves := make([]merkle.Hash, 0, len(raws))
	for _, raw := range raws {
		n.bytesSinceSnap += int64(len(raw))
		e, err := ledger.ParseEntry(raw)
		if err != nil {
			return fmt.Errorf("couldn't parse entry: %w", err)
		}
		h := n.hintFor(e.Seqno, raw)
		leaf := h.leaf
		if h.raw == nil {
			if leaf, err = leafOf(raw, e); err != nil {
				return fmt.Errorf("entry %d: %w", e.Seqno, err)
			}
		}
		if h.raw == nil { // not sequenced by this node: execute it now
			if err := n.derive(e); err != nil {
				return err
			}
		}
		n.stats.Appends.Add(1)
		if !consensus.HasPublicMaps(e) {
			leaves = append(leaves, leaf)
			n.txsSinceSig++
			continue
		}
		ps, err := signatureOf(e)
		if err != nil {
			return fmt.Errorf("entry %d: %w", e.Seqno, err)
		}
		if ps != nil {
			if err := n.tree.Append(leaves...); err != nil {
				return err
			}
			leaves = leaves[:0]
			if err := n.checkSignature(ps, e.Seqno, h.raw != nil); err != nil {
				return fmt.Errorf("signature at %d: %w", e.Seqno, err)
			}
			if err := n.sigs.Append(e.Seqno); err != nil {
				return err
			}
			n.lastSig, n.txsSinceSig = e.Seqno, 0
			n.stats.Signatures.Add(1)
		} else {
			n.txsSinceSig++
			n.noteSnapshotEvidence(e)
		}
		leaves = append(leaves, leaf)
	}
	if err := n.tree.Append(leaves...); err != nil {
		return err
	}
	return n.flushDerived()
}

// hint is what the primary learnt about an entry while serialising it, so
// that persisting and applying it need not hash or decrypt it again.
type hint struct {
	seqno uint64
	raw   []byte // the serialised entry (identity, not contents, is compared)
	leaf  merkle.Hash
	// confChange: the entry proposed was a Raft conf change, whose bytes
	// are serialised at persist time (and which Raft may have turned into
	// an empty entry).
	confChange bool
}

// hintFor returns the hint recorded for exactly this serialised entry at
// seqno, dropping hints of earlier seqnos.
func (n *Node) hintFor(seqno uint64, raw []byte) hint {
	for len(n.hints) > 0 && n.hints[0].seqno <= seqno {
		h := n.hints[0]
		n.hints = n.hints[1:]
		if h.seqno == seqno && len(h.raw) > 0 && len(raw) > 0 && &h.raw[0] == &raw[0] {
			return h
		}
	}
	return hint{}
}

// checkSignature verifies a signature transaction against the local tree,
// as CCF backups do for every signature they receive. own: this node
// serialised it in this process (its hint), signing proposedRoot with its
// key a moment ago; then only the root is checked (the persisted entries
// have the root it signed), not the ECDSA signature again: the followers
// verify it, and a restarted node verifies what it replays (recover.go).
func (n *Node) checkSignature(ps *tables.PrimarySignature, seqno uint64, own bool) error {
	if ps.Seqno != seqno {
		return fmt.Errorf("signature claims seqno %d", ps.Seqno)
	}
	root, err := n.tree.Root(seqno)
	if err != nil {
		return err
	}
	if own {
		return tables.CheckRoot(ps, root)
	}
	v := n.verifierFor(seqno)
	err = v.Verify(ps, root)
	if err == nil {
		return nil
	}
	// A service recovered from a previous one: the identity that signed
	// seqno may be recorded by a recovery transaction after it.
	if serr := n.scanPrevious(seqno + 1); serr != nil {
		return serr
	}
	if w := n.verifierFor(seqno); w != v {
		return w.Verify(ps, root)
	}
	return err
}

// leafOf is the Merkle leaf of an entry: ledger.Entry.Leaf (raw is e.Raw).
func leafOf(raw []byte, e *ledger.Entry) (merkle.Hash, error) {
	leaf, err := e.Leaf()
	return merkle.Hash(leaf), err
}

func signatureOf(e *ledger.Entry) (*tables.PrimarySignature, error) {
	d, err := e.PublicDomain()
	if err != nil {
		return nil, err
	}
	ps, _, err := tables.ParseSignature(d)
	return ps, err
}

// rollback drops the uncommitted suffix after last (a follower received a
// conflicting suffix from a new primary, or Raft replaced proposals this
// node had executed but not persisted): the latest state and query index
// (CCF's rollback of the KV store), ledger, tree, signature index and what
// the sequencer knows of this node's own proposals.
func (n *Node) rollback(last uint64) error {
	if last < n.committed.Load() {
		return fmt.Errorf("refusing to roll back to %d below the commit point %d", last, n.committed.Load())
	}
	n.log.Warn("rolling back uncommitted suffix", "from", last+1, "to", max(n.ledger.LastSeqno(), n.state.Applied()))
	n.state.rollback(last)
	n.forgetProposals()
	for len(n.snapshotTriggers) > 0 && n.snapshotTriggers[len(n.snapshotTriggers)-1] > last {
		n.snapshotTriggers = n.snapshotTriggers[:len(n.snapshotTriggers)-1]
	}
	if n.recoveredNoted != nil && n.recoveredNoted.seqno > last {
		n.recoveredNoted = nil
	}
	if last >= n.ledger.LastSeqno() {
		return nil
	}
	if err := n.ledger.Truncate(last); err != nil {
		return err
	}
	n.storage.Forget(last)
	if err := n.tree.Truncate(last + 1); err != nil {
		return err
	}
	if err := n.sigs.TruncateAfter(last); err != nil {
		return err
	}
	n.lastSig = n.sigs.Last()
	n.lastSeqno.Store(last)
	return nil
}

// forgetProposals drops what the sequencer knows of proposals not yet
// persisted: the node stopped being primary, or its log was rolled back.
// Their ids are no longer Pending here; they turn Invalid once a later view
// commits.
func (n *Node) forgetProposals() {
	n.lastProposed.Store(nil)
	n.proposeNext = 0
	n.hints = nil
	n.uncommitted = nil
	n.sigProposed = 0
}

func (n *Node) queued() int {
	n.qmu.Lock()
	defer n.qmu.Unlock()
	return len(n.queue)
}

func (n *Node) takeQueue(max int) []*proposal {
	n.qmu.Lock()
	defer n.qmu.Unlock()
	k := min(max, len(n.queue))
	batch := make([]*proposal, k)
	copy(batch, n.queue)
	n.queue = append(n.queue[:0], n.queue[k:]...)
	return batch
}

func (n *Node) failQueued(err error) {
	for _, p := range n.takeQueue(1 << 30) {
		p.fut.resolve(TxID{}, err)
	}
}

// rejectQueuedIfFollower fails submissions once another node leads; while
// no leader is known they wait (an election is under way).
func (n *Node) rejectQueuedIfFollower() {
	if n.rn.BasicStatus().Lead == raft.None {
		n.expireQueued()
		return
	}
	for _, p := range n.takeQueue(1 << 30) {
		p.fut.resolve(TxID{}, ErrNotPrimary)
	}
}

// expireQueued refuses, with ErrNotPrimary, the clients' submissions that
// have waited longer than twice the election timeout while no primary is
// known: the node may be cut off from the others (a primary that stepped
// down for want of a quorum, or a backup during a partition), and its
// clients should try another node rather than wait for an election that
// may not come. The node's own proposals (genesis, its record) wait on:
// they are what a new service needs once its first election is over.
func (n *Node) expireQueued() {
	limit := 2 * time.Duration(n.cfg.Raft.ElectionTicks) * n.cfg.Raft.TickInterval
	now := n.cfg.Now()
	var expired []*proposal
	n.qmu.Lock()
	kept := n.queue[:0]
	for _, p := range n.queue {
		if !p.queued.IsZero() && now.Sub(p.queued) > limit {
			expired = append(expired, p)
		} else {
			kept = append(kept, p)
		}
	}
	n.queue = kept
	n.qmu.Unlock()
	for _, p := range expired {
		p.fut.resolve(TxID{}, ErrNotPrimary)
	}
}

// proposeQueued sequences up to MaxBatch queued submissions: each gets the
// next seqno and the current view, is serialised as a CCF entry (encrypted,
// with its commit evidence digest), and the batch is proposed to Raft as one
// message. Once Raft has taken it, each submission is answered with its id.
// last: the loop takes a Ready right after (not so while a fsync runs, step
// 6, when more batches may follow into the same Ready).
func (n *Node) proposeQueued(last bool) error {
	batch := n.failStaleRekeys(n.takeQueue(n.cfg.MaxBatch))
	if len(batch) == 0 {
		return nil
	}
	// The proposer executes the batch: the latest state includes it before
	// any of its submitters is answered, so each reads its own write.
	signs := n.signsBatch(batch, last)
	signed := false
	view, next, err := n.propose(func(view, first uint64) (proposed, error) {
		p := proposed{ents: make([]raftpb.Entry, len(batch)), writes: make([][]ledger.MapWrites, len(batch))}
		var err error
		p.hints, err = n.encodeBatch(p.ents, batch, view, first)
		for i, b := range batch {
			p.writes[i] = b.writes
		}
		if err != nil || !signs {
			return p, err
		}
		// The batch's signature goes with it: one message to each
		// follower, one follower fsync, and the batch is committable.
		e, h, ok, err := n.signatureEntry(view, first+uint64(len(batch)), p.hints)
		if err != nil || !ok {
			return p, err
		}
		p.ents, p.hints, p.writes = append(p.ents, e), append(p.hints, h), append(p.writes, nil)
		signed = true
		return p, nil
	})
	if err != nil {
		for _, p := range batch {
			p.fut.resolve(TxID{}, err)
		}
		// Raft appended nothing and no id of the batch was handed out;
		// earlier proposals stand (a change of leader forgets them).
		if n.genesisQueued { // dropped with the batch: queue it again
			n.genesisQueued = false
			n.queueGenesisIfNeeded()
		}
		return nil
	}
	if signed {
		n.signed(next + uint64(len(batch)))
	}
	for i, p := range batch {
		p.fut.resolve(TxID{View: view, Seqno: next + uint64(i)}, nil)
	}
	n.genesisQueued = false // it was at the front of the queue
	return nil
}

// signsBatch reports whether a batch about to be proposed is signed in the
// same proposal: whether a signature would be due once it is (signatureDue,
// counting the batch), or, if the batch is the last before a Ready, whether
// signBeforeReady would sign it. Not a batch with a rekey, after which the
// signature's ledger secret is one the state does not hold yet: that one is
// signed on its own (step 5, or the next cycle).
func (n *Node) signsBatch(batch []*proposal, last bool) bool {
	if !n.isPrimary.Load() || n.genesisQueued || len(batch) == 0 {
		return false
	}
	for _, p := range batch {
		if _, ok := tables.RekeyOf(p.writes); ok {
			return false
		}
	}
	if last && n.unsignedProposals()+len(batch) >= readySignatureTxs {
		return true
	}
	return n.viewUnsigned || n.unsignedTxs()+len(batch) >= n.cfg.SignatureTxs || n.cfg.Now().Sub(n.lastSigAt) >= n.cfg.SignatureInterval
}

// nextSeqno is the seqno Raft gives the next proposal: the one after the
// ledger's last, or after the proposals that are not persisted yet.
func (n *Node) nextSeqno() uint64 {
	return max(n.ledger.LastSeqno()+1, n.proposeNext)
}

// sequenced records that Raft took proposals up to (view, last). It is
// published before any of their ids is handed out, so a status query with
// such an id finds it Pending.
func (n *Node) sequenced(view, last uint64) {
	if k := len(n.uncommitted); k > 0 && n.cfg.Now().Sub(n.uncommitted[k-1].at) < time.Millisecond {
		n.uncommitted[k-1].last = last // one record per millisecond at most
	} else {
		n.uncommitted = append(n.uncommitted, proposedAt{last: last, at: n.cfg.Now()})
	}
	n.proposeNext = last + 1
	n.lastProposed.Store(&TxID{View: view, Seqno: last})
}

// encodeBatch serialises a batch: on the sequencer's goroutine, helped by
// one more goroutine per further core for batches of 64 or more.
//
// Each entry is encrypted with the ledger secret of its seqno: the latest
// one, or, after a rekey earlier in the batch, that rekey's.
func (n *Node) encodeBatch(ents []raftpb.Entry, batch []*proposal, view, next uint64) ([]hint, error) {
	hints := make([]hint, len(batch))
	aeads, err := n.batchSecrets(batch, next)
	if err != nil {
		return nil, err
	}
	encodeRange := func(lo, hi int) error {
		for i := lo; i < hi; i++ {
			raw, err := n.encodeTx(nil, view, next+uint64(i), batch[i].writes, 0, batch[i].claims, aeads(i))
			if err != nil {
				return err
			}
			ents[i] = raftpb.Entry{Data: raw}
			hints[i] = hint{seqno: next + uint64(i), raw: raw}
			if e, err := ledger.ParseEntry(raw); err == nil {
				hints[i].leaf, _ = leafOf(raw, e)
			}
		}
		return nil
	}
	workers := min(runtime.GOMAXPROCS(0), len(batch)/64+1)
	per := (len(batch) + workers - 1) / workers
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := 1; w < workers; w++ {
		wg.Go(func() { errs[w] = encodeRange(w*per, min((w+1)*per, len(batch))) })
	}
	errs[0] = encodeRange(0, min(per, len(batch)))
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return hints, nil
}

// batchSecrets returns, for a batch sequenced from seqno next, the AES-GCM
// of each entry's ledger secret: the latest executed state's for next, then,
// after each rekey in the batch, that rekey's secret.
func (n *Node) batchSecrets(batch []*proposal, next uint64) (func(i int) cipher.AEAD, error) {
	rekeys := n.state.rekeys()
	first, err := n.keys.AEAD(rekeys, next)
	if err != nil {
		return nil, err
	}
	var aeads []cipher.AEAD // nil unless the batch holds a rekey
	for i, p := range batch {
		value, ok := tables.RekeyOf(p.writes)
		if !ok {
			continue
		}
		if aeads == nil {
			aeads = make([]cipher.AEAD, len(batch))
			for j := range aeads {
				aeads[j] = first
			}
		}
		rekeys = append(rekeys[:len(rekeys):len(rekeys)], tables.Rekey{Seqno: next + uint64(i), Value: value})
		a, err := n.keys.AEAD(rekeys, next+uint64(i)+1)
		if err != nil {
			return nil, err
		}
		for j := i + 1; j < len(aeads); j++ {
			aeads[j] = a
		}
	}
	if aeads == nil {
		return func(int) cipher.AEAD { return first }, nil
	}
	return func(i int) cipher.AEAD { return aeads[i] }, nil
}

// failStaleRekeys answers with an error, and drops from the batch, each
// rekey that does not follow the latest ledger secret as it will be when it
// is sequenced (decided before a rollback or another rekey changed it):
// its chain of past secrets would be wrong.
func (n *Node) failStaleRekeys(batch []*proposal) []*proposal {
	var latest []byte
	out := batch[:0]
	for _, p := range batch {
		if _, ok := tables.RekeyOf(p.writes); !ok {
			out = append(out, p)
			continue
		}
		if latest == nil {
			var err error
			if latest, err = n.keys.Secret(n.state.rekeys(), math.MaxUint64); err != nil {
				p.fut.resolve(TxID{}, err)
				continue
			}
		}
		fresh, err := n.keys.CheckRekey(latest, p.writes)
		if err != nil {
			p.fut.resolve(TxID{}, err)
			continue
		}
		latest = fresh
		out = append(out, p)
	}
	return out
}

// encode serialises a transaction at (view, seqno) as a CCF ledger entry,
// its private domain encrypted with aead (the ledger secret of seqno).
func (n *Node) encode(dst []byte, view, seqno uint64, writes []ledger.MapWrites, flags uint8, aead cipher.AEAD) ([]byte, error) {
	return n.encodeTx(dst, view, seqno, writes, flags, [32]byte{}, aead)
}

// encodeTx is encode with the transaction's claims digest (CCF's claims:
// the snapshot evidence carries the snapshot's digest).
func (n *Node) encodeTx(dst []byte, view, seqno uint64, writes []ledger.MapWrites, flags uint8, claims [32]byte, aead cipher.AEAD) ([]byte, error) {
	tx := ledger.Tx{
		View:                 view,
		Seqno:                seqno,
		Flags:                flags,
		ClaimsDigest:         claims,
		CommitEvidenceDigest: n.evidence.digest(view, seqno),
		Maps:                 writes,
	}
	return ledger.AppendEntry(dst, &tx, aead)
}

func (n *Node) signatureDue() bool {
	// The genesis transaction endorses this node: nothing is signed before it.
	unsigned := n.unsignedTxs()
	if !n.isPrimary.Load() || unsigned == 0 || n.genesisQueued {
		return false
	}
	// A new primary signs its view's first entry (Raft's empty entry, which
	// follows whatever its log held unsigned from older views) at once.
	if n.viewUnsigned {
		return true
	}
	return unsigned >= n.cfg.SignatureTxs || n.cfg.Now().Sub(n.lastSigAt) >= n.cfg.SignatureInterval
}

// unsignedTxs is the number of transactions in the log, this node's
// proposals included, after the last signature, persisted or proposed.
func (n *Node) unsignedTxs() int {
	last := n.nextSeqno() - 1
	if n.sigProposed > n.lastSig { // this node's signature, not persisted yet
		return int(last - min(last, n.sigProposed))
	}
	return n.txsSinceSig + int(last-min(last, n.ledger.LastSeqno()))
}

// signBeforeReady proposes a signature just before the loop takes a Ready,
// so that it goes out, and is persisted by the followers, with the batches
// it signs: one follower fsync commits them. Signed one Ready later (step
// 5), a batch would wait for a second round of the followers' fsyncs, since
// only signatures are committable. It signs if a signature is due, or if
// the Ready carries at least readySignatureTxs unsigned transactions of this
// node's: under load, every Ready of the primary then ends with a signature,
// at the cost of at most one signature per readySignatureTxs transactions.
func (n *Node) signBeforeReady() error {
	if !n.signatureDue() && !(n.isPrimary.Load() && !n.genesisQueued && n.unsignedProposals() >= readySignatureTxs) {
		return nil
	}
	_, err := n.proposeSignature()
	return err
}

// readySignatureTxs: see signBeforeReady.
const readySignatureTxs = 16

// unsignedProposals is the number of this node's proposals not persisted
// yet that no signature follows.
func (n *Node) unsignedProposals() int {
	k := 0
	for i := len(n.hints) - 1; i >= 0 && n.hints[i].seqno > n.sigProposed; i-- {
		k++
	}
	return k
}

// proposeSignature proposes a signature transaction at the next seqno S over
// the Merkle root of leaves [0..S-1]: the tree's (every persisted entry of
// the log), then those of this node's proposals not yet persisted, from
// their hints (proposedRoot), as CCF's primary signs the history it has
// executed. If those leaves are not all known (a conf change is among the
// unpersisted entries: its bytes are made at persist time), it proposes
// nothing and reports false; the signature stays due, and is proposed once
// they are persisted (step 5).
func (n *Node) proposeSignature() (bool, error) {
	skipped := false
	_, seqno, err := n.propose(func(view, seqno uint64) (proposed, error) {
		e, h, ok, err := n.signatureEntry(view, seqno, nil)
		if err != nil {
			return proposed{}, err
		}
		if !ok {
			skipped = true
			return proposed{}, errSkipped
		}
		return proposed{ents: []raftpb.Entry{e}, hints: []hint{h}}, nil
	})
	if skipped {
		return false, nil
	}
	// A dropped proposal (leadership just changed) is not an error: the new
	// primary signs.
	if errors.Is(err, ErrNotPrimary) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	n.signed(seqno)
	return true, nil
}

// signed records that this node proposed a signature at seqno.
func (n *Node) signed(seqno uint64) {
	n.lastSigAt = n.cfg.Now()
	n.sigProposed = seqno
	n.viewUnsigned = false
}

// errSkipped: a builder proposes nothing (proposeSignature).
var errSkipped = errors.New("nothing proposed")

// signatureEntry serialises the signature transaction at seqno over the
// root of leaves [0, seqno): the tree's, then the unpersisted proposals'
// (n.hints), then more's (a batch proposed with it). ok is false, and
// nothing is made, if those leaves are not all known (proposedRoot). If the
// current chunk has reached ChunkSize, the signature is flagged to end the
// chunk (CCF's LedgerChunker), so every node cuts its chunk files at the
// same seqnos.
func (n *Node) signatureEntry(view, seqno uint64, more []hint) (raftpb.Entry, hint, bool, error) {
	if last := n.ledger.LastSeqno(); seqno <= last || n.tree.Size() != last+1 {
		return raftpb.Entry{}, hint{}, false, fmt.Errorf("signing at %d with %d leaves in the tree and seqno %d last in the ledger", seqno, n.tree.Size(), last)
	}
	root, ok, err := n.proposedRoot(seqno, more)
	if err != nil || !ok {
		return raftpb.Entry{}, hint{}, false, err
	}
	id := n.cfg.Identities.Node
	writes, err := tables.SignRoot(id.Key, id.ID, id.CertPEM, view, seqno, root)
	if err != nil {
		return raftpb.Entry{}, hint{}, false, err
	}
	var flags uint8
	if n.ledger.OpenChunkBytes() >= n.cfg.ChunkSize || n.chunkRequested.Swap(false) {
		flags = ledger.FlagForceChunkAfter
	}
	// A snapshot is taken at this signature once it is committed: the
	// chunk ends with it, so that a node joining from the snapshot
	// writes the same chunk files as the others (CCF).
	if n.snapshotPoint(seqno, max(n.lastSig, n.sigProposed)) || n.snapshotRequested.Load() {
		flags |= ledger.FlagForceChunkAfter
		if n.snapshotRequested.Swap(false) {
			n.snapshotRequestedAt = seqno
		}
	}
	aead, err := n.aeadAt(seqno)
	if err != nil {
		return raftpb.Entry{}, hint{}, false, err
	}
	raw, err := n.encode(nil, view, seqno, writes, flags, aead)
	if err != nil {
		return raftpb.Entry{}, hint{}, false, err
	}
	e, err := ledger.ParseEntry(raw)
	if err != nil {
		return raftpb.Entry{}, hint{}, false, err
	}
	leaf, err := leafOf(raw, e)
	if err != nil {
		return raftpb.Entry{}, hint{}, false, err
	}
	return raftpb.Entry{Data: raw}, hint{seqno: seqno, raw: raw, leaf: leaf}, true, nil
}

// proposedRoot returns the Merkle root of leaves [0, seqno): the tree's,
// followed by the leaves of this node's proposals not yet persisted (their
// hints), then more's, in seqno order. ok is false if those hints do not
// hold exactly the leaves [tree size, seqno): a conf change is among them,
// whose bytes (and so leaf) are made at persist time.
func (n *Node) proposedRoot(seqno uint64, more []hint) (root merkle.Hash, ok bool, err error) {
	size := n.tree.Size()
	if size == seqno {
		root, err = n.tree.Root(seqno)
		return root, err == nil, err
	}
	edge, err := n.tree.Edge(size)
	if err != nil {
		return merkle.Hash{}, false, err
	}
	f, err := merkle.FrontierOf(size, edge)
	if err != nil {
		return merkle.Hash{}, false, err
	}
	for _, hs := range [][]hint{n.hints, more} {
		for _, h := range hs {
			if h.seqno != f.Size() || h.confChange || h.leaf == (merkle.Hash{}) {
				return merkle.Hash{}, false, nil
			}
			f.Append(h.leaf)
		}
	}
	if f.Size() != seqno {
		return merkle.Hash{}, false, nil
	}
	return f.Root(), true, nil
}
