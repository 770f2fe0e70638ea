package receipt

import (
	"encoding/json"
	"errors"
)

// Errors a caller can act on. Every error about a receipt returned by this
// package wraps exactly one of them.
var (
	// ErrMalformed means the receipt (or response body) is not well formed:
	// bad JSON, a missing or badly encoded field, or an unusable certificate.
	ErrMalformed = errors.New("malformed receipt")
	// ErrNotReady means the response body is a GET .../receipt response whose
	// state is not "Ready" (the service is still loading the transaction);
	// ask again later.
	ErrNotReady = errors.New("receipt not ready")
	// ErrRootMismatch means the root computed from the leaf and the proof is
	// not the root stated in the receipt.
	ErrRootMismatch = errors.New("computed root does not match the receipt's root")
	// ErrBadSignature means the signature over the root does not verify with
	// the node certificate's key.
	ErrBadSignature = errors.New("signature over the root does not verify")
	// ErrNodeIDMismatch means the receipt's node id is not the SHA-256 of the
	// node certificate's public key.
	ErrNodeIDMismatch = errors.New("node id does not match the node certificate")
	// ErrNotEndorsed means the node certificate is not endorsed by the
	// service certificate, directly or through the service endorsements.
	ErrNotEndorsed = errors.New("node certificate is not endorsed by the service")
)

// Limits on untrusted input.
const (
	// MaxSize is the largest input Parse accepts, in bytes.
	MaxSize = 1 << 20
	// MaxProofLength is the largest number of proof elements accepted: a
	// Merkle tree of 2^64 leaves needs no more.
	MaxProofLength = 64
)

// Receipt is a CCF / Azure Confidential Ledger JSON receipt for one
// transaction. Digests are hex strings, as on the wire; the zero value is not
// a valid receipt. It marshals to the camelCase form of API 2022-05-13 and
// unmarshals from camelCase or snake_case (see UnmarshalJSON).
type Receipt struct {
	// Cert is the PEM node certificate, endorsed by the service. CCF 1.x
	// receipts have none, and cannot be verified.
	Cert string `json:"cert"`
	// IsSignatureTransaction is set when the receipt is for a signature
	// transaction; Leaf is then the signed root and Proof is empty.
	IsSignatureTransaction bool `json:"isSignatureTransaction,omitempty"`
	// LeafComponents are the parts the leaf is hashed from. Exactly one of
	// LeafComponents and Leaf is set.
	LeafComponents *LeafComponents `json:"leafComponents,omitempty"`
	// Leaf is the hex Merkle leaf, given directly by signature-transaction
	// and CCF 1.x receipts.
	Leaf string `json:"leaf,omitempty"`
	// NodeID is the hex SHA-256 of the node's DER SubjectPublicKeyInfo; it
	// is checked when set.
	NodeID string `json:"nodeId"`
	// Proof is the inclusion proof from the leaf up to the root.
	Proof []ProofElement `json:"proof"`
	// Root is the hex Merkle root, stated by CCF 1.x receipts only; it is
	// checked when set.
	Root string `json:"root,omitempty"`
	// ServiceEndorsements are PEM certificates endorsing Cert, in order: Cert
	// is signed by the first, each by the next, the last by the service.
	ServiceEndorsements []string `json:"serviceEndorsements"`
	// Signature is the base64 DER ECDSA signature by the node key over the
	// root.
	Signature string `json:"signature"`
}

// LeafComponents are the parts a transaction's Merkle leaf is hashed from
// (see LeafDigest).
type LeafComponents struct {
	// ClaimsDigest is the hex digest of the application claims (zeros when
	// there are none).
	ClaimsDigest string `json:"claimsDigest"`
	// CommitEvidence is "ce:<view>.<seqno>:<64 hex>", revealed only once the
	// transaction is committed.
	CommitEvidence string `json:"commitEvidence"`
	// WriteSetDigest is the hex SHA-256 of the serialised ledger entry.
	WriteSetDigest string `json:"writeSetDigest"`
}

// ProofElement is one step of an inclusion proof: the hex hash of the
// sibling subtree, on the left or on the right. Exactly one of Left and Right
// is set.
type ProofElement struct {
	Left  string `json:"left,omitempty"`
	Right string `json:"right,omitempty"`
}

// Compile-time checks that the JSON methods have the signatures encoding/json
// looks for.
var (
	_ json.Marshaler   = Receipt{}
	_ json.Unmarshaler = (*Receipt)(nil)
)

// MarshalJSON encodes the receipt in the camelCase form of API 2022-05-13,
// with empty lists as [] rather than null.
func (r Receipt) MarshalJSON() ([]byte, error) {
	type plain Receipt // drops the methods, so json.Marshal does not recurse
	p := plain(r)
	if p.Proof == nil {
		p.Proof = []ProofElement{}
	}
	if p.ServiceEndorsements == nil {
		p.ServiceEndorsements = []string{}
	}
	return json.Marshal(p)
}

// UnmarshalJSON decodes a receipt object in camelCase (cert, leafComponents,
// nodeId, serviceEndorsements, isSignatureTransaction, ...) or snake_case
// (leaf_components, node_id, service_endorsements, is_signature_transaction,
// ...), and checks that it is well formed (see Parse). Key names are matched
// exactly; unknown keys are ignored; a null member is the same as an absent
// one, and null leaves the receipt unchanged.
func (r *Receipt) UnmarshalJSON(data []byte) error {
	if isNull(data) {
		return nil
	}
	f, err := decodeObject(data)
	if err != nil {
		return malformed("couldn't decode receipt: %w", err)
	}
	out, err := receiptFromFields(f)
	if err != nil {
		return err
	}
	*r = *out
	return nil
}

// receiptFromFields decodes and validates a receipt object.
func receiptFromFields(f *fields) (*Receipt, error) {
	var r Receipt
	f.decode(&r.Cert, "cert")
	f.decode(&r.IsSignatureTransaction, "isSignatureTransaction", "is_signature_transaction")
	f.decode(&r.LeafComponents, "leafComponents", "leaf_components")
	f.decode(&r.Leaf, "leaf")
	f.decode(&r.NodeID, "nodeId", "node_id")
	f.decode(&r.Proof, "proof")
	f.decode(&r.Root, "root")
	f.decode(&r.ServiceEndorsements, "serviceEndorsements", "service_endorsements")
	f.decode(&r.Signature, "signature")
	if f.err != nil {
		return nil, f.err
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// UnmarshalJSON decodes leaf components in camelCase or snake_case.
func (c *LeafComponents) UnmarshalJSON(data []byte) error {
	if isNull(data) {
		return nil
	}
	f, err := decodeObject(data)
	if err != nil {
		return malformed("couldn't decode leaf components: %w", err)
	}
	var out LeafComponents
	f.decode(&out.ClaimsDigest, "claimsDigest", "claims_digest")
	f.decode(&out.CommitEvidence, "commitEvidence", "commit_evidence")
	f.decode(&out.WriteSetDigest, "writeSetDigest", "write_set_digest")
	if f.err != nil {
		return f.err
	}
	*c = out
	return nil
}

// UnmarshalJSON decodes {"left": h} or {"right": h}; an element with both
// keys or neither is malformed.
func (p *ProofElement) UnmarshalJSON(data []byte) error {
	if isNull(data) {
		return nil
	}
	f, err := decodeObject(data)
	if err != nil {
		return malformed("couldn't decode proof element: %w", err)
	}
	if f.has("left") == f.has("right") {
		return malformed("proof element must have exactly one of left and right")
	}
	var out ProofElement
	f.decode(&out.Left, "left")
	f.decode(&out.Right, "right")
	if f.err != nil {
		return f.err
	}
	*p = out
	return nil
}
