package receipt

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"strings"
)

// Verify checks the receipt against the service certificate, the trusted
// input: the leaf and the proof give the root, which must equal Root if set;
// the node certificate must match NodeID if set; the signature over the root
// must verify with the node key; and the service must endorse the node
// certificate (see the package documentation for each step). It returns nil
// only if every check passes; otherwise an error wrapping ErrMalformed,
// ErrRootMismatch, ErrNodeIDMismatch, ErrBadSignature or ErrNotEndorsed.
func (r *Receipt) Verify(serviceCert *x509.Certificate) error {
	if serviceCert == nil {
		return fmt.Errorf("receipt: no service certificate to check against: %w", ErrNotEndorsed)
	}
	if err := r.validate(); err != nil {
		return err
	}
	node, err := r.nodeCertificate()
	if err != nil {
		return err
	}
	root, err := r.checkRoot()
	if err != nil {
		return err
	}
	if err := r.checkNodeID(node); err != nil {
		return err
	}
	if err := r.checkSignature(node, root); err != nil {
		return err
	}
	return r.checkEndorsement(node, serviceCert)
}

// VerifyPEM parses a receipt (anything Parse accepts) and verifies it against
// the PEM service certificate.
func VerifyPEM(receiptJSON, serviceCertPEM []byte) error {
	serviceCert, err := ParseCertificatePEM(serviceCertPEM)
	if err != nil {
		return fmt.Errorf("receipt: couldn't parse service certificate: %w", err)
	}
	r, err := Parse(receiptJSON)
	if err != nil {
		return err
	}
	return r.Verify(serviceCert)
}

// LeafDigest returns a transaction's Merkle leaf,
// SHA-256(write_set_digest || SHA-256(commit_evidence) || claims_digest),
// with the commit evidence hashed as UTF-8 text (docs ccf-format.md §2;
// CCF doc/use_apps/verify_tx.rst).
func LeafDigest(writeSetDigest [32]byte, commitEvidence string, claimsDigest [32]byte) [32]byte {
	return LeafFromDigests(writeSetDigest, sha256.Sum256([]byte(commitEvidence)), claimsDigest)
}

// LeafFromDigests returns a transaction's Merkle leaf from its three
// digests, SHA-256(write_set_digest || commit_evidence_digest ||
// claims_digest): the one implementation of CCF's leaf in ledgerd, used by
// the node that builds the tree, the auditor that checks it and the
// verifier of receipts.
func LeafFromDigests(writeSetDigest, commitEvidenceDigest, claimsDigest [32]byte) [32]byte {
	var buf [96]byte
	copy(buf[0:], writeSetDigest[:])
	copy(buf[32:], commitEvidenceDigest[:])
	copy(buf[64:], claimsDigest[:])
	return sha256.Sum256(buf[:])
}

// ComputeLeaf returns the receipt's Merkle leaf: LeafDigest of the leaf
// components, or the given Leaf.
func (r *Receipt) ComputeLeaf() ([32]byte, error) {
	c := r.LeafComponents
	if c == nil {
		return decodeDigest("leaf", r.Leaf)
	}
	writeSet, err := decodeDigest("writeSetDigest", c.WriteSetDigest)
	if err != nil {
		return [32]byte{}, err
	}
	claims, err := decodeDigest("claimsDigest", c.ClaimsDigest)
	if err != nil {
		return [32]byte{}, err
	}
	if _, _, err := parseCommitEvidence(c.CommitEvidence); err != nil {
		return [32]byte{}, err
	}
	return LeafDigest(writeSet, c.CommitEvidence, claims), nil
}

// ComputeRoot returns the Merkle root that the leaf and the proof give:
// {"left": h} folds as SHA-256(h || cur), {"right": h} as SHA-256(cur || h).
func (r *Receipt) ComputeRoot() ([32]byte, error) {
	cur, err := r.ComputeLeaf()
	if err != nil {
		return cur, err
	}
	if len(r.Proof) > MaxProofLength {
		return cur, malformed("%d proof elements, more than the limit of %d", len(r.Proof), MaxProofLength)
	}
	for i, p := range r.Proof {
		h, left, err := p.sibling(i)
		if err != nil {
			return cur, err
		}
		if left {
			cur = hashChildren(h, cur)
		} else {
			cur = hashChildren(cur, h)
		}
	}
	return cur, nil
}

// hashChildren returns an interior node of CCF's Merkle tree: SHA-256 of the
// two children, with no domain-separation prefix.
func hashChildren(left, right [32]byte) [32]byte {
	var b [64]byte
	copy(b[:32], left[:])
	copy(b[32:], right[:])
	return sha256.Sum256(b[:])
}

// checkRoot computes the root and checks it against Root, if set.
func (r *Receipt) checkRoot() ([32]byte, error) {
	root, err := r.ComputeRoot()
	if err != nil || r.Root == "" {
		return root, err
	}
	want, err := decodeDigest("root", r.Root)
	if err != nil {
		return root, err
	}
	if root != want {
		return root, fmt.Errorf("receipt: computed %x, receipt says %s: %w", root, r.Root, ErrRootMismatch)
	}
	return root, nil
}

// nodeCertificate parses the node certificate.
func (r *Receipt) nodeCertificate() (*x509.Certificate, error) {
	if r.Cert == "" {
		return nil, malformed("no node certificate (CCF 1.x receipts cannot be verified)")
	}
	node, err := ParseCertificatePEM([]byte(r.Cert))
	if err != nil {
		return nil, malformed("couldn't parse node certificate: %w", err)
	}
	return node, nil
}

// checkNodeID checks NodeID, if set, against the node certificate's key.
func (r *Receipt) checkNodeID(node *x509.Certificate) error {
	if r.NodeID == "" {
		return nil
	}
	if got := NodeIDFromCert(node); !strings.EqualFold(got, r.NodeID) {
		return fmt.Errorf("receipt: node id %s, certificate key gives %s: %w", r.NodeID, got, ErrNodeIDMismatch)
	}
	return nil
}

// checkSignature verifies the signature with the node key, over the root
// used directly as the digest.
func (r *Receipt) checkSignature(node *x509.Certificate, root [32]byte) error {
	pub, ok := node.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return malformed("node certificate key is %T, want ECDSA", node.PublicKey)
	}
	if pub.Curve != elliptic.P256() && pub.Curve != elliptic.P384() {
		return malformed("node certificate key is on %s, want P-256 or P-384", pub.Curve.Params().Name)
	}
	sig, err := r.decodeSignature()
	if err != nil {
		return err
	}
	if !ecdsa.VerifyASN1(pub, root[:], sig) {
		return fmt.Errorf("receipt: root %x: %w", root, ErrBadSignature)
	}
	return nil
}

// checkEndorsement checks that the node certificate is signed by the first
// service endorsement, each endorsement by the next, and the last by the
// service certificate (or the node certificate directly by the service
// certificate). Only the signatures are checked, not CA flags or validity.
func (r *Receipt) checkEndorsement(node, serviceCert *x509.Certificate) error {
	chain := make([]*x509.Certificate, 0, len(r.ServiceEndorsements)+1)
	for i, e := range r.ServiceEndorsements {
		c, err := ParseCertificatePEM([]byte(e))
		if err != nil {
			return malformed("couldn't parse service endorsement %d: %w", i, err)
		}
		chain = append(chain, c)
	}
	chain = append(chain, serviceCert)
	cur := node
	for i, issuer := range chain {
		err := issuer.CheckSignature(cur.SignatureAlgorithm, cur.RawTBSCertificate, cur.Signature)
		if err != nil {
			return fmt.Errorf("receipt: %w: %s is not signed by %s: %w",
				ErrNotEndorsed, chainName(i-1, len(chain)), chainName(i, len(chain)), err)
		}
		cur = issuer
	}
	return nil
}

// chainName names position i of the endorsement chain (-1 is the node
// certificate, n-1 the service certificate) for error messages.
func chainName(i, n int) string {
	switch i {
	case -1:
		return "node certificate"
	case n - 1:
		return "service certificate"
	default:
		return fmt.Sprintf("service endorsement %d", i)
	}
}
