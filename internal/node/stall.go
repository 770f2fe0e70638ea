package node

import (
	"fmt"
	"time"

	"github.com/ledgerd/ledgerd/internal/ledger"
)

// Stall describes why persisting is stalled: the disk is full or the
// process has no file descriptor left. See Node.Stalled.
type Stall struct {
	// Err wraps ErrNoSpace or ErrNoDescriptors, and the I/O error.
	Err error
	// Since is when the stall began.
	Since time.Time
}

// Longest wait between two attempts to persist a stalled batch.
const maxStallBackoff = 500 * time.Millisecond

// Stalled returns the current stall, or nil while the node persists
// normally. While stalled the node refuses writes (Submit returns st.Err),
// and goes on serving reads, statuses and receipts of what it holds.
func (n *Node) Stalled() *Stall { return n.stall.Load() }

// syncLedger makes the entries appended to the ledger durable. A shortage
// of disk space or file descriptors (ledger.IsResourceExhausted) does not
// stop the node, unlike any other I/O error: the node stalls. It refuses new
// writes, and tries again with a backoff until the entries are durable. The
// Ready that holds them waits meanwhile: its messages are not sent and Raft
// does not learn the entries are stable, so nothing that is not on disk is
// acknowledged to peers or committed. Once the Sync succeeds the node
// resumes by itself. (etcd panics when its WAL cannot be written; CCF stops
// the node. A ledger service must degrade instead: reads need no disk.)
//
// inline: the loop itself runs it (a follower's fsync, startSync).
func (n *Node) syncLedger(inline bool) error {
	backoff := 10 * time.Millisecond
	for {
		err := n.ledger.Sync()
		if err == nil {
			n.endStall()
			return nil
		}
		if !ledger.IsResourceExhausted(err) {
			return err
		}
		n.beginStall(err)
		if inline {
			// What the loop does while the fsync runs in another
			// goroutine (sequenceUntilSynced), now that it runs this.
			n.refuseQueuedIfStalled()
		}
		select {
		case <-n.stopc:
			return ErrStopped
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxStallBackoff)
	}
}

// beginStall records a stall, once per episode.
func (n *Node) beginStall(err error) {
	if n.stall.Load() != nil {
		return
	}
	kind := ErrNoDescriptors
	if ledger.IsNoSpace(err) {
		kind = ErrNoSpace
	}
	n.stall.Store(&Stall{Err: fmt.Errorf("%w (%w)", kind, err), Since: n.cfg.Now()})
	n.stats.Stalls.Add(1)
	n.log.Error("couldn't persist the ledger; refusing writes and retrying until it succeeds", "err", err)
	n.signalQueue() // the loop refuses what is queued (refuseQueuedIfStalled)
}

// refuseQueuedIfStalled refuses, with the stall's error, the clients'
// submissions still queued during a stall, as Submit refuses new ones:
// nothing commits meanwhile, so the commit window keeps them from being
// sequenced, and they would wait for the disk. The node's own proposals
// (genesis, its record) wait on.
func (n *Node) refuseQueuedIfStalled() {
	st := n.stall.Load()
	if st == nil {
		return
	}
	var refused []*proposal
	n.qmu.Lock()
	kept := n.queue[:0]
	for _, p := range n.queue {
		if !p.queued.IsZero() {
			refused = append(refused, p)
		} else {
			kept = append(kept, p)
		}
	}
	n.queue = kept
	n.qmu.Unlock()
	for _, p := range refused {
		p.fut.resolve(TxID{}, st.Err)
	}
}

// endStall ends a stall, if any.
func (n *Node) endStall() {
	if st := n.stall.Swap(nil); st != nil {
		n.log.Warn("the ledger is persisted again; accepting writes", "stalled_for", n.cfg.Now().Sub(st.Since).String())
	}
}

// flushDerived writes the new records of the Merkle tree and signature
// index (derived files: written here, fsynced at checkpoints). A full disk
// is not an error: the records stay buffered, and a later flush writes them.
func (n *Node) flushDerived() error {
	if err := n.tree.Flush(); err != nil && !ledger.IsNoSpace(err) {
		return err
	}
	if err := n.sigs.Flush(); err != nil && !ledger.IsNoSpace(err) {
		return err
	}
	return nil
}
