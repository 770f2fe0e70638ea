package merkle

import (
	"fmt"
	"math/bits"
)

// A Frontier is the right edge of a growing tree (a "compact range"): the
// hashes of the complete subtrees that the leaves appended so far decompose
// into, largest first, one per set bit of Size(). It computes roots over a
// stream of leaves in O(log n) memory and one hash per leaf amortized, for
// auditors that walk a ledger once.
//
// The zero value is an empty Frontier ready to use. A Frontier is not safe
// for concurrent use.
type Frontier struct {
	size   uint64
	hashes []Hash // hashes[j] covers the j-th set bit of size, from the top
}

// Append adds leaf as leaf number Size(). It panics if the Frontier already
// holds [MaxSize] leaves.
func (f *Frontier) Append(leaf Hash) {
	if f.size >= MaxSize {
		panic("merkle: Frontier.Append beyond MaxSize")
	}
	f.push(leaf, nil)
}

// Size returns the number of leaves appended so far.
func (f *Frontier) Size() uint64 {
	return f.size
}

// Root returns the root of the tree over all leaves appended so far, the
// RFC 9162 §2.1.1 MTH without prefixes. It returns the zero Hash if no leaf
// was appended: CCF's tree always holds at least leaf 0.
func (f *Frontier) Root() Hash {
	if len(f.hashes) == 0 {
		return Hash{}
	}
	root := f.hashes[len(f.hashes)-1]
	for j := len(f.hashes) - 2; j >= 0; j-- {
		root = HashChildren(f.hashes[j], root)
	}
	return root
}

// push appends leaf and calls emit, if not nil, with the leaf and then with
// the hash of each subtree the leaf completes, bottom-up: the leaf's record in
// the stored-hash order.
func (f *Frontier) push(leaf Hash, emit func(Hash)) {
	h := leaf
	if emit != nil {
		emit(h)
	}
	for k := f.size; k&1 == 1; k >>= 1 {
		last := len(f.hashes) - 1
		h = HashChildren(f.hashes[last], h)
		f.hashes = f.hashes[:last]
		if emit != nil {
			emit(h)
		}
	}
	f.hashes = append(f.hashes, h)
	f.size++
}

// FrontierOf returns the Frontier of a tree of size leaves given its right
// edge (the hashes of the complete subtrees size's set bits give, largest
// first), as Tree.Edge returns it: untrusted input is checked for shape only.
func FrontierOf(size uint64, hashes []Hash) (*Frontier, error) {
	if size > MaxSize {
		return nil, fmt.Errorf("merkle: frontier of %d leaves: %w", size, ErrOutOfRange)
	}
	if want := bits.OnesCount64(size); len(hashes) != want {
		return nil, fmt.Errorf("merkle: a frontier of %d leaves has %d hashes, not %d", size, want, len(hashes))
	}
	return &Frontier{size: size, hashes: append([]Hash(nil), hashes...)}, nil
}

// Hashes returns the frontier's hashes, largest subtree first.
func (f *Frontier) Hashes() []Hash { return append([]Hash(nil), f.hashes...) }
