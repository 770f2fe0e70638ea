package merkle

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
)

// HashSize is the size in bytes of a [Hash].
const HashSize = sha256.Size

// A Hash is a SHA-256 digest: a leaf as the ledger computes it or an
// internal node of the tree.
type Hash [HashSize]byte

// String returns h as lowercase hex, as CCF writes roots and proof elements.
func (h Hash) String() string {
	return hex.EncodeToString(h[:])
}

// HashChildren returns the hash of the internal node with children left and
// right: SHA-256(left || right), with no domain-separation prefix
// (merklecpp's sha256_openssl; RFC 9162 §2.1.1 would prefix 0x01).
func HashChildren(left, right Hash) Hash {
	var buf [2 * HashSize]byte
	copy(buf[:HashSize], left[:])
	copy(buf[HashSize:], right[:])
	return sha256.Sum256(buf[:])
}

var (
	// ErrOutOfRange reports a leaf index or tree size outside the tree, or a
	// size outside what the tree can store.
	ErrOutOfRange = errors.New("index out of range")

	// ErrProofInvalid reports a proof that does not verify: a wrong hash, a
	// wrong length or a wrong direction for the leaf index and tree size.
	ErrProofInvalid = errors.New("invalid proof")

	// ErrCorrupt reports a tree file that is not a tree file: too short for
	// its header, or a header that is not ours. A torn tail is not
	// corruption; [Open] cuts it back. The caller can rebuild the tree from
	// the ledger.
	ErrCorrupt = errors.New("corrupt tree file")

	// ErrClosed reports a call on a closed [Tree].
	ErrClosed = errors.New("tree closed")
	// ErrReadOnly: the tree was opened with OpenReadOnly.
	ErrReadOnly = errors.New("tree opened read-only")
)
