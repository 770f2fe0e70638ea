package node

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"

	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/tables"
	"github.com/ledgerd/ledgerd/receipt"
)

// Receipt builds the receipt of a committed transaction (ccf-format §4.1):
// its leaf components, the inclusion path of its leaf in the tree signed by
// the first signature after it, that signature, and the signing node's
// certificate. The cost is O(log n) hash reads.
func (n *Node) Receipt(id TxID) (*receipt.Receipt, error) {
	switch n.Status(id) {
	case StatusPending:
		return nil, ErrUncommitted
	case StatusInvalid:
		return nil, ErrInvalid
	case StatusUnknown:
		return nil, ErrNotFound
	}
	if n.sigs.LastAtOrBefore(id.Seqno) == id.Seqno {
		return n.signatureReceipt(id.Seqno)
	}
	sigSeqno, ok, err := n.sigs.FirstAfter(id.Seqno)
	if err != nil || !ok {
		return nil, fmt.Errorf("node: no signature after committed %s: %v", id, err)
	}
	raw, err := n.ledger.Read(id.Seqno)
	if err != nil {
		return nil, err
	}
	e, err := ledger.ParseEntry(raw)
	if err != nil {
		return nil, err
	}
	claims, _, err := headerDigests(e)
	if err != nil {
		return nil, err
	}
	path, err := n.tree.InclusionProof(id.Seqno, sigSeqno)
	if err != nil {
		return nil, err
	}
	ps, err := n.signatureAt(sigSeqno)
	if err != nil {
		return nil, err
	}
	ws := sha256.Sum256(raw)
	r := &receipt.Receipt{
		Cert: ps.Cert,
		LeafComponents: &receipt.LeafComponents{
			ClaimsDigest:   hex.EncodeToString(claims[:]),
			CommitEvidence: n.evidence.commitEvidence(id.View, id.Seqno),
			WriteSetDigest: hex.EncodeToString(ws[:]),
		},
		NodeID:              ps.Node,
		Proof:               make([]receipt.ProofElement, len(path)),
		ServiceEndorsements: []string{},
		Signature:           ps.Sig,
	}
	for i, p := range path {
		if p.Left {
			r.Proof[i].Left = hex.EncodeToString(p.Hash[:])
		} else {
			r.Proof[i].Right = hex.EncodeToString(p.Hash[:])
		}
	}
	return r, nil
}

// signatureReceipt is the receipt of a signature transaction: its leaf is
// the root it signs, with an empty proof.
func (n *Node) signatureReceipt(seqno uint64) (*receipt.Receipt, error) {
	ps, err := n.signatureAt(seqno)
	if err != nil {
		return nil, err
	}
	return &receipt.Receipt{
		Cert: ps.Cert, IsSignatureTransaction: true, Leaf: ps.Root, NodeID: ps.Node,
		Proof: []receipt.ProofElement{}, ServiceEndorsements: []string{}, Signature: ps.Sig,
	}, nil
}

// sigCache caches parsed signature transactions (a few thousand receipts
// share each signature).
type sigCache struct {
	mu sync.Mutex
	m  map[uint64]*tables.PrimarySignature
}

const sigCacheSize = 4096

func (n *Node) signatureAt(seqno uint64) (*tables.PrimarySignature, error) {
	c := &n.sigCache
	c.mu.Lock()
	ps, ok := c.m[seqno]
	c.mu.Unlock()
	if ok {
		return ps, nil
	}
	raw, err := n.ledger.Read(seqno)
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
