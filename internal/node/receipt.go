package node

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/merkle"
	"github.com/ledgerd/ledgerd/internal/tables"
	"github.com/ledgerd/ledgerd/receipt"
)

// Receipt builds the receipt of a committed transaction (ccf-format §4.1):
// its leaf components, the inclusion path of its leaf in the tree signed by
// the first signature after it, that signature, and the signing node's
// certificate. The cost is O(log n) hash reads.
//
// The Merkle tree and the signature index are derived files, so a receipt
// is checked before it is served: the signature index must point at a
// signature transaction after the transaction, and the proof folded over
// the leaf recomputed from the ledger must give the root that signature
// signed. If not, the derived files are rebuilt from the ledger (with a
// logged warning) and the receipt built again; a receipt that does not
// verify is never served.
func (r *Reader) Receipt(id TxID) (*receipt.Receipt, error) {
	gen := r.repair.gen.Load()
	rc, err := r.receipt(id)
	if !errors.Is(err, errDerived) {
		return rc, err
	}
	r.log.Warn("derived files disagree with the ledger; rebuilding them from the ledger", "tx", id.String(), "err", err)
	if err := r.rebuild(gen); err != nil {
		return nil, fmt.Errorf("node: couldn't rebuild the derived files: %w", err)
	}
	rc, err = r.receipt(id)
	if errors.Is(err, errDerived) {
		r.log.Error("receipt still disagrees with the ledger after a rebuild", "tx", id.String(), "err", err)
	}
	return rc, err
}

// errDerived marks a receipt that the derived files got wrong.
var errDerived = errors.New("derived files disagree with the ledger")

func (r *Reader) receipt(id TxID) (*receipt.Receipt, error) {
	switch r.Status(id) {
	case StatusPending:
		return nil, ErrUncommitted
	case StatusInvalid:
		return nil, ErrInvalid
	case StatusUnknown:
		return nil, ErrNotFound
	}
	if err := r.held(id.Seqno); err != nil {
		return nil, err
	}
	if r.sigs.LastAtOrBefore(id.Seqno) == id.Seqno {
		return r.signatureReceipt(id.Seqno)
	}
	sigSeqno, ok, err := r.sigs.FirstAfter(id.Seqno)
	if err != nil || !ok || sigSeqno <= id.Seqno {
		return nil, fmt.Errorf("%w: no signature after committed %s in the signature index (%d, %v)", errDerived, id, sigSeqno, err)
	}
	raw, err := r.ledger.Read(id.Seqno)
	if err != nil {
		return nil, err
	}
	e, err := ledger.ParseEntry(raw)
	if err != nil {
		return nil, err
	}
	claims, ce, err := e.HeaderDigests()
	if err != nil {
		return nil, err
	}
	ws := ledger.WriteSetDigest(raw)
	leaf := receipt.LeafFromDigests(ws, ce, claims)
	path, err := r.tree.InclusionProof(id.Seqno, sigSeqno)
	if err != nil {
		return nil, fmt.Errorf("%w: inclusion proof of %d in %d: %v", errDerived, id.Seqno, sigSeqno, err)
	}
	ps, err := r.signatureAt(sigSeqno)
	if err != nil {
		return nil, fmt.Errorf("%w: signature index names %d: %v", errDerived, sigSeqno, err)
	}
	if ps.Seqno != sigSeqno {
		return nil, fmt.Errorf("%w: signature at %d says seqno %d", errDerived, sigSeqno, ps.Seqno)
	}
	root := merkle.RootFromInclusionProof(leaf, path)
	if hex.EncodeToString(root[:]) != ps.Root {
		return nil, fmt.Errorf("%w: the proof of %d folds to a root the signature at %d did not sign", errDerived, id.Seqno, sigSeqno)
	}
	evidence, endorsements := r.evidence, []string{}
	if end, _ := r.keys.Previous(); id.Seqno <= end {
		// The previous service's transaction (disaster.go): its commit
		// evidence is keyed from its own first secret, and the new service
		// endorses its service certificate.
		if evidence = r.prevEvidence.Load().at(id.Seqno); evidence == nil {
			return nil, fmt.Errorf("%w: the receipt of %s needs the previous service's ledger secrets, not recovered yet", tables.ErrNotRecovered, id)
		}
		endorsements = r.serviceEndorsements(id.Seqno)
	}
	rc := &receipt.Receipt{
		Cert: ps.Cert,
		LeafComponents: &receipt.LeafComponents{
			ClaimsDigest:   hex.EncodeToString(claims[:]),
			CommitEvidence: evidence.commitEvidence(id.View, id.Seqno),
			WriteSetDigest: hex.EncodeToString(ws[:]),
		},
		NodeID:              ps.Node,
		Proof:               make([]receipt.ProofElement, len(path)),
		ServiceEndorsements: endorsements,
		Signature:           ps.Sig,
	}
	for i, p := range path {
		if p.Left {
			rc.Proof[i].Left = hex.EncodeToString(p.Hash[:])
		} else {
			rc.Proof[i].Right = hex.EncodeToString(p.Hash[:])
		}
	}
	return rc, nil
}

// repairState serialises rebuilds of the derived files: receipts that fail
// together wait for one rebuild.
type repairState struct {
	mu   sync.Mutex
	gen  atomic.Uint64 // rebuilds done
	last time.Time     // when the last rebuild finished
}

// repairInterval bounds how often the derived files are rebuilt: a
// disagreement a rebuild did not cure (a damaged ledger read, a bug) must
// not make every receipt request cost a rebuild.
const repairInterval = time.Minute

// repairDerived rebuilds the Merkle tree and the signature index from the
// ledger on the loop goroutine (which owns them), unless a rebuild has
// finished since gen was read.
func (n *Node) repairDerived(gen uint64) error {
	n.repair.mu.Lock()
	defer n.repair.mu.Unlock()
	if n.repair.gen.Load() != gen {
		return nil
	}
	if !n.repair.last.IsZero() && time.Since(n.repair.last) < repairInterval {
		return fmt.Errorf("rebuilt less than %s ago and still disagreeing; not again yet", repairInterval)
	}
	done := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := n.onLoop(ctx, func() { done <- n.rebuildDerived() }); err != nil {
		return err
	}
	select {
	case err := <-done:
		n.repair.last = time.Now()
		if err == nil {
			n.repair.gen.Add(1)
		}
		return err
	case <-n.donec:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// rebuildDerived replaces the Merkle tree and the signature index with ones
// rebuilt from the ledger, every signature verified again. It runs on the
// loop goroutine, between cycles, and holds it for the rebuild.
func (n *Node) rebuildDerived() error {
	last := n.ledger.LastSeqno()
	size := n.tree.Size()
	if size != last+1 {
		return fmt.Errorf("the tree holds %d leaves and the ledger ends at %d", size, last)
	}
	if err := n.tree.Truncate(n.tree.Base()); err != nil {
		return err
	}
	if err := n.resetSigs(); err != nil {
		return err
	}
	n.sigCache.reset()
	if err := n.replaySuffix(last); err != nil {
		return err
	}
	n.log.Warn("rebuilt the Merkle tree and the signature index from the ledger", "leaves", n.tree.Size(), "signatures", n.sigs.Count())
	return nil
}

// signatureReceipt is the receipt of a signature transaction: its leaf is
// the root it signs, with an empty proof.
func (r *Reader) signatureReceipt(seqno uint64) (*receipt.Receipt, error) {
	ps, err := r.signatureAt(seqno)
	if err != nil {
		return nil, fmt.Errorf("%w: signature index names %d: %v", errDerived, seqno, err)
	}
	return &receipt.Receipt{
		Cert: ps.Cert, IsSignatureTransaction: true, Leaf: ps.Root, NodeID: ps.Node,
		Proof: []receipt.ProofElement{}, ServiceEndorsements: r.serviceEndorsements(seqno), Signature: ps.Sig,
	}, nil
}

// sigCache caches parsed signature transactions (a few thousand receipts
// share each signature).
type sigCache struct {
	mu sync.Mutex
	m  map[uint64]*tables.PrimarySignature
}

const sigCacheSize = 4096

func (c *sigCache) reset() {
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}

func (r *Reader) signatureAt(seqno uint64) (*tables.PrimarySignature, error) {
	c := &r.sigCache
	c.mu.Lock()
	ps, ok := c.m[seqno]
	c.mu.Unlock()
	if ok {
		return ps, nil
	}
	raw, err := r.ledger.Read(seqno)
	if err != nil {
		return nil, err
	}
	e, err := ledger.ParseEntry(raw)
	if err != nil {
		return nil, err
	}
	ps, err = signatureOf(e)
	if err != nil {
		return nil, err
	}
	if ps == nil {
		return nil, fmt.Errorf("node: entry %d is not a signature", seqno)
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= sigCacheSize {
		c.m = make(map[uint64]*tables.PrimarySignature)
	}
	c.m[seqno] = ps
	c.mu.Unlock()
	return ps, nil
}
