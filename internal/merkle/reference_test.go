package merkle

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"testing"
)

// refTree is the naive reference: RFC 9162 §2.1 MTH, PATH and PROOF without
// prefixes, by recursion over a leaf slice, memoised by range.
type refTree struct {
	leaves []Hash
	memo   map[[2]int]Hash
}

func newRefTree(leaves []Hash) *refTree {
	return &refTree{leaves: leaves, memo: map[[2]int]Hash{}}
}

// refSplit returns the largest power of two smaller than n (n >= 2).
func refSplit(n int) int {
	k := 1
	for 2*k < n {
		k *= 2
	}
	return k
}

// mth returns MTH(D[lo:hi]); a single leaf is returned as it is.
func (r *refTree) mth(lo, hi int) Hash {
	if hi-lo == 1 {
		return r.leaves[lo]
	}
	if h, ok := r.memo[[2]int{lo, hi}]; ok {
		return h
	}
	k := refSplit(hi - lo)
	h := HashChildren(r.mth(lo, lo+k), r.mth(lo+k, hi))
	r.memo[[2]int{lo, hi}] = h
	return h
}

// path returns PATH(m, D[lo:hi]), leaf to root.
func (r *refTree) path(m, lo, hi int) []ProofStep {
	if hi-lo == 1 {
		return nil
	}
	k := refSplit(hi - lo)
	if m < k {
		return append(r.path(m, lo, lo+k), ProofStep{Left: false, Hash: r.mth(lo+k, hi)})
	}
	return append(r.path(m-k, lo+k, hi), ProofStep{Left: true, Hash: r.mth(lo, lo+k)})
}

// proof returns PROOF(m, D[0:n]).
func (r *refTree) proof(m, n int) []Hash {
	return r.subproof(m, 0, n, true)
}

// subproof returns SUBPROOF(m, D[lo:hi], b), m relative to lo.
func (r *refTree) subproof(m, lo, hi int, b bool) []Hash {
	if m == hi-lo {
		if b {
			return nil
		}
		return []Hash{r.mth(lo, hi)}
	}
	k := refSplit(hi - lo)
	if m <= k {
		return append(r.subproof(m, lo, lo+k, b), r.mth(lo+k, hi))
	}
	return append(r.subproof(m-k, lo+k, hi, false), r.mth(lo, lo+k))
}

// bottomUpLevels builds the tree as merklecpp does: pair each level's nodes
// left to right and promote an odd last node unchanged. levels[0] is the
// leaves and the last level holds the root.
func bottomUpLevels(leaves []Hash) [][]Hash {
	levels := [][]Hash{leaves}
	for cur := leaves; len(cur) > 1; {
		var next []Hash
		for j := 0; j+1 < len(cur); j += 2 {
			next = append(next, HashChildren(cur[j], cur[j+1]))
		}
		if len(cur)%2 == 1 {
			next = append(next, cur[len(cur)-1])
		}
		levels = append(levels, next)
		cur = next
	}
	return levels
}

// bottomUpPath returns merklecpp's path of leaf i: at each level, the
// sibling if there is one; a promoted node adds no step.
func bottomUpPath(levels [][]Hash, i int) []ProofStep {
	var path []ProofStep
	for _, level := range levels[:len(levels)-1] {
		switch {
		case i%2 == 1:
			path = append(path, ProofStep{Left: true, Hash: level[i-1]})
		case i+1 < len(level):
			path = append(path, ProofStep{Left: false, Hash: level[i+1]})
		}
		i /= 2
	}
	return path
}

// testLeaf returns the test leaf i: SHA-256 of i as a little-endian uint64.
func testLeaf(i uint64) Hash {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], i)
	return sha256.Sum256(b[:])
}

// testLeaves returns leaves 0..n-1, with a salt so that two sequences differ.
func testLeaves(n int, salt uint64) []Hash {
	leaves := make([]Hash, n)
	for i := range leaves {
		leaves[i] = testLeaf(uint64(i) + salt<<32)
	}
	return leaves
}

func TestBottomUpEqualsReference(t *testing.T) {
	leaves := testLeaves(300, 0)
	ref := newRefTree(leaves)
	for n := 1; n <= len(leaves); n++ {
		levels := bottomUpLevels(leaves[:n])
		if got, want := levels[len(levels)-1][0], ref.mth(0, n); got != want {
			t.Fatalf("n=%d: bottom-up root %v, reference %v", n, got, want)
		}
		for i := 0; i < n; i++ {
			if got, want := bottomUpPath(levels, i), ref.path(i, 0, n); !slices.Equal(got, want) {
				t.Fatalf("n=%d i=%d: bottom-up path differs from reference", n, i)
			}
		}
	}
}
