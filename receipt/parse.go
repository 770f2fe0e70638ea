package receipt

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// Parse decodes a receipt from untrusted bytes and checks that it is well
// formed. It accepts:
//
//   - a receipt object, camelCase or snake_case (see Receipt.UnmarshalJSON);
//   - a whole GET /app/transactions/{transactionId}/receipt response body,
//     {"receipt": {...}, "state": "Ready", "transactionId": "2.35"}, or any
//     object with a "receipt" member. A state other than "Ready" gives
//     ErrNotReady; a transactionId that differs from the one in the commit
//     evidence gives ErrMalformed.
//
// Well formed means: at most MaxSize bytes; exactly one of leafComponents and
// leaf; every digest exactly 64 hex digits; commit evidence of the form
// "ce:<view>.<seqno>:<64 hex>"; at most MaxProofLength proof elements, each
// with exactly one of left and right; a non-empty base64 signature. The
// certificates are parsed by Verify, not here. Parse does not verify anything:
// call Verify.
func Parse(data []byte) (*Receipt, error) {
	if len(data) > MaxSize {
		return nil, malformed("%d bytes, more than the limit of %d", len(data), MaxSize)
	}
	f, err := decodeObject(data)
	if err != nil {
		return nil, malformed("couldn't decode JSON object: %w", err)
	}
	if _, ok := f.m["receipt"]; ok || f.has("state") {
		return parseResponse(f)
	}
	return receiptFromFields(f)
}

// parseResponse decodes the receipt inside a GET .../receipt response body.
func parseResponse(f *fields) (*Receipt, error) {
	var state, txID string
	f.decode(&state, "state")
	f.decode(&txID, "transactionId")
	if f.err != nil {
		return nil, f.err
	}
	if state != "" && state != "Ready" {
		return nil, fmt.Errorf("receipt: response state is %q: %w", state, ErrNotReady)
	}
	if !f.has("receipt") {
		return nil, malformed("response has no receipt")
	}
	inner, err := decodeObject(f.m["receipt"])
	if err != nil {
		return nil, malformed("couldn't decode receipt: %w", err)
	}
	r, err := receiptFromFields(inner)
	if err != nil {
		return nil, err
	}
	if err := r.checkTransactionID(txID); err != nil {
		return nil, err
	}
	return r, nil
}

// checkTransactionID checks the response's "transactionId" against the
// commit evidence, when both are present.
func (r *Receipt) checkTransactionID(txID string) error {
	if txID == "" || r.LeafComponents == nil {
		return nil
	}
	id, err := ParseTxID(txID)
	if err != nil {
		return malformed("response transactionId %q: %w", txID, err)
	}
	view, seqno := id.View, id.Seqno
	v, s, err := r.TransactionID()
	if err != nil {
		return err
	}
	if v != view || s != seqno {
		return malformed("response transactionId %q but commit evidence is for %d.%d", txID, v, s)
	}
	return nil
}

// TransactionID returns the view and seqno of the transaction, parsed from
// the commit evidence "ce:<view>.<seqno>:<hex>". Receipts without leaf
// components (signature transactions, CCF 1.x) have no commit evidence and
// give ErrMalformed.
func (r *Receipt) TransactionID() (view, seqno uint64, err error) {
	if r.LeafComponents == nil {
		return 0, 0, malformed("no commit evidence: the receipt has no leaf components")
	}
	return parseCommitEvidence(r.LeafComponents.CommitEvidence)
}

// parseCommitEvidence parses "ce:<view>.<seqno>:<64 hex>" (CCF's commit
// evidence, docs ccf-format.md §4.2).
func parseCommitEvidence(ce string) (view, seqno uint64, err error) {
	rest, ok := strings.CutPrefix(ce, "ce:")
	txID, nonce, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 {
		return 0, 0, malformed("commit evidence %q is not ce:<view>.<seqno>:<hex>", ce)
	}
	if _, err := decodeDigest("commit evidence nonce", nonce); err != nil {
		return 0, 0, err
	}
	id, err := ParseTxID(txID)
	if err != nil {
		return 0, 0, malformed("commit evidence %q: %w", ce, err)
	}
	return id.View, id.Seqno, nil
}

// validate checks that the receipt is well formed (see Parse).
func (r *Receipt) validate() error {
	if (r.LeafComponents == nil) == (r.Leaf == "") {
		return malformed("want exactly one of leafComponents and leaf")
	}
	if r.IsSignatureTransaction && r.LeafComponents != nil {
		return malformed("a signature transaction receipt has a leaf, not leaf components")
	}
	if _, err := r.ComputeRoot(); err != nil {
		return err
	}
	if err := checkOptionalDigest("root", r.Root); err != nil {
		return err
	}
	if err := checkOptionalDigest("nodeId", r.NodeID); err != nil {
		return err
	}
	_, err := r.decodeSignature()
	return err
}

// checkOptionalDigest checks that s is empty or a hex digest.
func checkOptionalDigest(name, s string) error {
	if s == "" {
		return nil
	}
	_, err := decodeDigest(name, s)
	return err
}

// decodeDigest decodes a SHA-256 digest written as exactly 64 hex digits, in
// either case.
func decodeDigest(name, s string) ([32]byte, error) {
	var d [32]byte
	if len(s) != hex.EncodedLen(len(d)) {
		return d, malformed("%s: %d characters, want 64 hex digits", name, len(s))
	}
	if _, err := hex.Decode(d[:], []byte(s)); err != nil {
		return d, malformed("%s: %w", name, err)
	}
	return d, nil
}

// decodeSignature decodes the base64 DER signature.
func (r *Receipt) decodeSignature() ([]byte, error) {
	if r.Signature == "" {
		return nil, malformed("no signature")
	}
	sig, err := base64.StdEncoding.DecodeString(r.Signature)
	if err != nil {
		return nil, malformed("signature is not base64: %w", err)
	}
	return sig, nil
}

// sibling decodes the hash of proof element i and reports whether it is the
// left sibling.
func (p ProofElement) sibling(i int) (h [32]byte, left bool, err error) {
	switch {
	case p.Left != "" && p.Right == "":
		h, err = decodeDigest(fmt.Sprintf("proof element %d left", i), p.Left)
		return h, true, err
	case p.Right != "" && p.Left == "":
		h, err = decodeDigest(fmt.Sprintf("proof element %d right", i), p.Right)
		return h, false, err
	default:
		return h, false, malformed("proof element %d must have exactly one of left and right", i)
	}
}
