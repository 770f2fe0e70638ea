package merkle

import "fmt"

// A ProofStep is one element of an inclusion proof (RFC 9162 §2.1.3 calls
// the list an "inclusion path"), exactly CCF's receipt proof element
// (ccf-format.md §4.1): {"left": h} is ProofStep{Left: true, Hash: h} and
// {"right": h} is ProofStep{Left: false, Hash: h}.
type ProofStep struct {
	// Left reports that Hash is the left sibling: cur = H(Hash || cur).
	// Otherwise Hash is the right sibling: cur = H(cur || Hash).
	Left bool
	// Hash is the sibling subtree's hash.
	Hash Hash
}

// RootFromInclusionProof folds proof over leaf, leaf to root, and returns the
// root it implies. This is what a receipt verifier does (ccf-format.md §4.1
// step 3) before checking the signature over the root; it does not check that
// the proof's shape fits any leaf index or tree size, see [VerifyInclusion].
func RootFromInclusionProof(leaf Hash, proof []ProofStep) Hash {
	cur := leaf
	for _, s := range proof {
		if s.Left {
			cur = HashChildren(s.Hash, cur)
		} else {
			cur = HashChildren(cur, s.Hash)
		}
	}
	return cur
}

// VerifyInclusion checks that proof proves leaf to be leaf i of the tree of
// size n with the given root. It follows RFC 9162 §2.1.3.2 without the 0x01
// prefix, and also checks that every step's direction and the proof's length
// are the ones the shape of the tree of size n dictates for leaf i.
// The error wraps [ErrProofInvalid].
func VerifyInclusion(leaf Hash, i, n uint64, proof []ProofStep, root Hash) error {
	if err := checkInclusion(leaf, i, n, proof, root); err != nil {
		return fmt.Errorf("merkle: couldn't verify inclusion of leaf %d in tree of size %d: %w", i, n, err)
	}
	return nil
}

func checkInclusion(leaf Hash, i, n uint64, proof []ProofStep, root Hash) error {
	if i >= n {
		return fmt.Errorf("%w: leaf index not below tree size", ErrProofInvalid)
	}
	fn, sn := i, n-1
	cur := leaf
	for j, s := range proof {
		if sn == 0 {
			return fmt.Errorf("%w: %d steps, want %d", ErrProofInvalid, len(proof), j)
		}
		left := fn&1 == 1 || fn == sn
		if s.Left != left {
			return fmt.Errorf("%w: step %d has the wrong direction", ErrProofInvalid, j)
		}
		if left {
			cur = HashChildren(s.Hash, cur)
			// A last node with no right sibling is promoted unchanged.
			for fn&1 == 0 && fn != 0 {
				fn, sn = fn>>1, sn>>1
			}
		} else {
			cur = HashChildren(cur, s.Hash)
		}
		fn, sn = fn>>1, sn>>1
	}
	if sn != 0 {
		return fmt.Errorf("%w: proof too short (%d steps)", ErrProofInvalid, len(proof))
	}
	if cur != root {
		return fmt.Errorf("%w: root mismatch", ErrProofInvalid)
	}
	return nil
}

// VerifyConsistency checks that proof proves the tree of size m with root
// rootM to be a prefix of the tree of size n with root rootN (1 <= m <= n).
// It is the RFC 9162 §2.1.4.2 algorithm without the 0x01 prefix; for m == n
// the proof must be empty and the roots equal. The error wraps
// [ErrProofInvalid].
func VerifyConsistency(m, n uint64, rootM, rootN Hash, proof []Hash) error {
	if err := checkConsistency(m, n, rootM, rootN, proof); err != nil {
		return fmt.Errorf("merkle: couldn't verify consistency of tree sizes %d and %d: %w", m, n, err)
	}
	return nil
}

func checkConsistency(m, n uint64, rootM, rootN Hash, proof []Hash) error {
	switch {
	case m == 0 || m > n:
		return fmt.Errorf("%w: sizes must satisfy 1 <= m <= n", ErrProofInvalid)
	case m == n:
		if len(proof) != 0 {
			return fmt.Errorf("%w: non-empty proof between equal sizes", ErrProofInvalid)
		}
		if rootM != rootN {
			return fmt.Errorf("%w: root mismatch", ErrProofInvalid)
		}
		return nil
	case len(proof) == 0:
		return fmt.Errorf("%w: empty proof", ErrProofInvalid)
	}
	if m&(m-1) == 0 {
		// The old tree is a complete subtree of the new one: its root is the
		// proof's implicit first element.
		proof = append([]Hash{rootM}, proof...)
	}
	fn, sn := m-1, n-1
	for fn&1 == 1 {
		fn, sn = fn>>1, sn>>1
	}
	fr, sr := proof[0], proof[0]
	for _, c := range proof[1:] {
		if sn == 0 {
			return fmt.Errorf("%w: proof too long", ErrProofInvalid)
		}
		if fn&1 == 1 || fn == sn {
			fr = HashChildren(c, fr)
			sr = HashChildren(c, sr)
			for fn&1 == 0 && fn != 0 {
				fn, sn = fn>>1, sn>>1
			}
		} else {
			sr = HashChildren(sr, c)
		}
		fn, sn = fn>>1, sn>>1
	}
	switch {
	case sn != 0:
		return fmt.Errorf("%w: proof too short", ErrProofInvalid)
	case fr != rootM:
		return fmt.Errorf("%w: old root mismatch", ErrProofInvalid)
	case sr != rootN:
		return fmt.Errorf("%w: new root mismatch", ErrProofInvalid)
	}
	return nil
}
