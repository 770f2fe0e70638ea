// Package merkle implements CCF's history tree: the Merkle tree over the
// ledger's transactions whose roots the signature transactions sign and whose
// paths are the receipts' proofs.
//
// # Tree shape and hashing
//
// The tree is merklecpp's HistoryTree (CCF, see ccf-format.md §2): leaves are
// 32-byte digests inserted as they are, an internal node is
// SHA-256(left || right) with no domain-separation prefix, and levels are
// built bottom-up pairing left to right with an odd last node promoted
// unchanged. That is the left-complete shape of RFC 9162 §2.1.1 (split at the
// largest power of two smaller than n), hashed without the 0x00/0x01
// prefixes, so the proofs of RFC 9162 §2.1.3 (inclusion) and §2.1.4
// (consistency) apply with those prefixes removed.
//
// The ledger inserts leaf 0 = 32 zero bytes and leaf i = the transaction at
// seqno i, and signs at seqno S the root over leaves [0, S-1], that is
// Root(S). This package is generic: the caller appends leaf 0.
//
// # Storage
//
// A [Tree] keeps every complete-subtree hash in one append-only file, in the
// "stored hash index" order of golang.org/x/mod/sumdb/tlog: leaf n's record is
// the leaf followed by the hashes of the subtrees it completes, so n leaves
// take 2n - popcount(n) hashes and reopening a tree never rehashes the ledger.
//
//	offset 0:  16-byte header "ledgerd/merkle\x00" + format version (1)
//	offset 16: stored hash 0, stored hash 1, ... (32 bytes each)
//
// The size is implied by the file length. A torn tail left by a crash is cut
// back to the largest size whose records are complete and hash-consistent.
//
// A [Frontier] computes roots over a stream of leaves in O(log n) memory, for
// auditors that walk a ledger once.
package merkle
