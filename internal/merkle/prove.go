package merkle

import "fmt"

// Leaf returns leaf i (i < Size()).
func (t *Tree) Leaf(i uint64) (Hash, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if err := t.readable(t.edge.size, i); err != nil {
		return Hash{}, fmt.Errorf("merkle: couldn't read leaf %d: %w", i, err)
	}
	if err := t.pruned(t.edge.size, i); err != nil {
		return Hash{}, fmt.Errorf("merkle: couldn't read leaf %d: %w", i, err)
	}
	r := reader{t: t}
	h, err := r.stored(0, i)
	if err != nil {
		return Hash{}, fmt.Errorf("merkle: couldn't read leaf %d: %w", i, err)
	}
	return h, nil
}

// Root returns the root of the tree of the first n leaves,
// 1 <= n <= Size(): MTH(D[0:n]) of RFC 9162 §2.1.1 without prefixes. In CCF
// terms, Root(S) is the root that the signature transaction at seqno S signs.
func (t *Tree) Root(n uint64) (Hash, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if err := t.readable(n, 0); err != nil {
		return Hash{}, fmt.Errorf("merkle: couldn't compute root of %d leaves: %w", n, err)
	}
	if err := t.pruned(n, n); err != nil {
		return Hash{}, fmt.Errorf("merkle: couldn't compute root of %d leaves: %w", n, err)
	}
	if n == t.edge.size {
		return t.edge.Root(), nil
	}
	r, err := t.newReader(n-1, n)
	defer r.release()
	if err == nil {
		var root Hash
		if root, err = r.rangeHash(0, n); err == nil {
			return root, nil
		}
	}
	return Hash{}, fmt.Errorf("merkle: couldn't compute root of %d leaves: %w", n, err)
}

// InclusionProof returns the path of leaf i in the tree of the first n
// leaves (i < n <= Size()), leaf to root: RFC 9162 §2.1.3.1 PATH(i, D[0:n]),
// which is CCF's receipt proof for the transaction at seqno i under the
// signature at seqno n.
func (t *Tree) InclusionProof(i, n uint64) ([]ProofStep, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	proof, err := t.inclusionProof(i, n)
	if err != nil {
		return nil, fmt.Errorf("merkle: couldn't prove inclusion of leaf %d in tree of size %d: %w", i, n, err)
	}
	return proof, nil
}

func (t *Tree) inclusionProof(i, n uint64) ([]ProofStep, error) {
	if err := t.readable(n, i); err != nil {
		return nil, err
	}
	if err := t.pruned(n, i); err != nil {
		return nil, err
	}
	r, err := t.newReader(i, n)
	if err != nil {
		return nil, err
	}
	defer r.release()
	// Walk PATH from the root down and fill the proof from its end.
	proof := make([]ProofStep, inclusionProofLen(i, n))
	j := len(proof)
	for lo, hi := uint64(0), n; hi-lo > 1; {
		k := lo + splitPoint(hi-lo)
		j--
		var h Hash
		if i < k {
			h, err = r.rangeHash(k, hi)
			proof[j] = ProofStep{Left: false, Hash: h}
			hi = k
		} else {
			h, err = r.rangeHash(lo, k)
			proof[j] = ProofStep{Left: true, Hash: h}
			lo = k
		}
		if err != nil {
			return nil, err
		}
	}
	return proof, nil
}

// inclusionProofLen returns the length of the path of leaf i in the tree of
// size n.
func inclusionProofLen(i, n uint64) int {
	steps := 0
	for lo, hi := uint64(0), n; hi-lo > 1; steps++ {
		if k := lo + splitPoint(hi-lo); i < k {
			hi = k
		} else {
			lo = k
		}
	}
	return steps
}

// ConsistencyProof returns the proof that the tree of the first m leaves is
// a prefix of the tree of the first n leaves (1 <= m <= n <= Size()):
// RFC 9162 §2.1.4.1 PROOF(m, D[0:n]) without prefixes, empty when m == n.
func (t *Tree) ConsistencyProof(m, n uint64) ([]Hash, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	proof, err := t.consistencyProof(m, n)
	if err != nil {
		return nil, fmt.Errorf("merkle: couldn't prove consistency of tree sizes %d and %d: %w", m, n, err)
	}
	return proof, nil
}

func (t *Tree) consistencyProof(m, n uint64) ([]Hash, error) {
	if m == 0 || m > n {
		return nil, fmt.Errorf("sizes must satisfy 1 <= m <= n: %w", ErrOutOfRange)
	}
	if err := t.readable(n, 0); err != nil {
		return nil, err
	}
	if err := t.pruned(n, m); err != nil {
		return nil, err
	}
	r, err := t.newReader(m-1, n)
	if err != nil {
		return nil, err
	}
	defer r.release()
	// SUBPROOF(m, D[lo:hi], whole) from the root down; the hashes come out
	// root first, so they are reversed at the end.
	var proof []Hash
	whole := true // D[lo:hi] starts at 0, so the old root need not be sent
	lo, hi := uint64(0), n
	for m != hi {
		k := lo + splitPoint(hi-lo)
		var h Hash
		if m <= k {
			h, err = r.rangeHash(k, hi)
			hi = k
		} else {
			h, err = r.rangeHash(lo, k)
			lo, whole = k, false
		}
		if err != nil {
			return nil, err
		}
		proof = append(proof, h)
	}
	if !whole {
		h, err := r.rangeHash(lo, hi)
		if err != nil {
			return nil, err
		}
		proof = append(proof, h)
	}
	for a, b := 0, len(proof)-1; a < b; a, b = a+1, b-1 {
		proof[a], proof[b] = proof[b], proof[a]
	}
	return proof, nil
}

// readable checks that the tree is open and that leaf i is in the tree of
// size n, 1 <= n <= Size(). The caller holds mu.
func (t *Tree) readable(n, i uint64) error {
	switch {
	case t.f == nil:
		return ErrClosed
	case n == 0 || n > t.edge.size:
		return fmt.Errorf("size %d not in [1, %d]: %w", n, t.edge.size, ErrOutOfRange)
	case i >= n:
		return fmt.Errorf("leaf %d not below size %d: %w", i, n, ErrOutOfRange)
	}
	return nil
}

// Edge returns the right edge of the tree of the first n leaves
// (n <= Size()): the hashes of the complete subtrees that n's set bits
// give, largest first. With FrontierOf it is what a tree needs to go on
// appending after leaf n-1 (a CCF snapshot's tree).
func (t *Tree) Edge(n uint64) ([]Hash, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.f == nil {
		return nil, ErrClosed
	}
	if n > t.edge.size {
		return nil, fmt.Errorf("merkle: edge of %d leaves: size is %d: %w", n, t.edge.size, ErrOutOfRange)
	}
	if n == t.edge.size {
		return append([]Hash(nil), t.edge.hashes...), nil
	}
	if n == 0 {
		return nil, nil
	}
	f, err := t.rightEdge(n)
	if err != nil {
		return nil, fmt.Errorf("merkle: edge of %d leaves: %w", n, err)
	}
	return append([]Hash(nil), f.hashes...), nil
}
