// Package receipt verifies CCF and Azure Confidential Ledger JSON receipts
// offline, with nothing but the service certificate that a client pins.
//
// A receipt proves that a transaction is part of the ledger: it carries the
// transaction's Merkle leaf (or the parts it is hashed from), an inclusion
// proof up to a Merkle root, the node's signature over that root, and the node
// certificate, which the service endorses. Verify checks it the way CCF
// (doc/use_apps/verify_tx.rst, python/src/ccf/receipt.py) and the Azure SDK
// (azure/confidentialledger/receipt/_receipt_verification.py) do:
//
//  1. Leaf. With leaf components, the leaf is
//     SHA-256(write_set_digest || SHA-256(commit_evidence) || claims_digest),
//     where the two digests are the hex-decoded 32-byte values and the commit
//     evidence is hashed as its UTF-8 text "ce:<view>.<seqno>:<hex>"
//     (see LeafDigest). Signature-transaction and CCF 1.x receipts carry the
//     leaf itself instead.
//  2. Root. The proof is folded from the leaf upwards: an element
//     {"left": h} means h is the left sibling, so cur = SHA-256(h || cur); an
//     element {"right": h} gives cur = SHA-256(cur || h). CCF's Merkle tree
//     has no domain-separation prefix (unlike RFC 6962). If the receipt also
//     states a root (CCF 1.x), it must equal the computed one.
//  3. Node id. If the receipt has a node id, it must be the lowercase hex
//     SHA-256 of the node certificate's DER SubjectPublicKeyInfo.
//  4. Signature. The signature is an ASN.1 DER ECDSA signature by the node key
//     (P-256 or P-384) with the 32-byte root used directly as the digest: the
//     root is not hashed again (ecdsa.VerifyASN1(pub, root[:], sig)).
//  5. Endorsement. The node certificate must be signed by the service
//     certificate, or by the first of the service endorsements, each of which
//     is signed by the next, the last one by the service certificate. Only the
//     signatures over the to-be-signed certificates are checked: the real
//     service's certificates need not be CAs and may have expired, which is
//     also what CCF's check_endorsement does.
//
// The service certificate is the trusted input; everything in the receipt is
// untrusted until Verify returns nil. Parse accepts a receipt object in either
// the camelCase (API 2022-05-13 and later) or snake_case (CCF, and the real
// service in 2022) spelling, or a whole GET .../receipt response body.
//
// Every error about a receipt wraps one of ErrMalformed, ErrNotReady,
// ErrRootMismatch, ErrBadSignature, ErrNodeIDMismatch or ErrNotEndorsed,
// which callers can check with errors.Is.
package receipt
