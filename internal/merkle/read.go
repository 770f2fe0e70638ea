package merkle

import (
	"fmt"
	"math/bits"
	"sync"
)

// maxSpanLevel bounds the blocks a reader loads in one ReadAt to 2^5 leaves
// (about 2 KiB of stored hashes).
const maxSpanLevel = 5

// A span is a run of stored hashes loaded with one read: the records of a
// block of consecutive leaves.
type span struct {
	lo  uint64 // stored-hash index of buf[0:HashSize]
	buf []byte
}

// A reader resolves stored hashes for one query, from the right edge, the
// level cache, the spans it loaded, the pending buffer or the file, in that
// order. It is used with the tree's lock held, shared or exclusive.
type reader struct {
	t     *Tree
	spans [2]span
	n     int       // spans in use
	right *Frontier // the right edge of the tree of the query's size, if known
}

// newReader returns a reader for a query about leaf in the tree of the first
// n leaves. It loads, with one read, the records of the aligned block of
// leaves that holds leaf, where the query's low-level siblings are. If n is
// not the tree's size (whose right edge is in memory), it also needs n's
// right edge, the complete subtrees that the hashes along the right edge of
// the tree of size n combine: from the tree's cache of right edges (a few
// sizes, the signed ones, serve most queries), else read once and cached.
func (t *Tree) newReader(leaf, n uint64) (reader, error) {
	r := reader{t: t}
	if n != t.edge.size {
		right, err := t.rightEdge(n)
		if err != nil {
			return reader{}, err
		}
		r.right = right
	}
	level := min(t.cache.low, maxSpanLevel)
	if level == 0 {
		return r, nil
	}
	if err := r.loadBlock(leaf, level); err != nil {
		return reader{}, err
	}
	return r, nil
}

// rightEdge returns the right edge of the tree of n < Size() leaves, from
// the cache or read with one ReadAt of the block holding leaf n-1 (and the
// level cache). The caller holds mu, shared or exclusive.
func (t *Tree) rightEdge(n uint64) (*Frontier, error) {
	if f := t.edges.get(n); f != nil {
		return f, nil
	}
	r := reader{t: t}
	if level := min(t.cache.low, maxSpanLevel); level > 0 {
		if err := r.loadBlock(n-1, level); err != nil {
			return nil, err
		}
	}
	f, err := t.readEdgeWith(&r, n)
	r.release()
	if err != nil {
		return nil, err
	}
	t.edges.put(&f)
	return &f, nil
}

// loadBlock loads the records of the 2^level-aligned block holding leaf,
// clipped to the tree's size.
func (r *reader) loadBlock(leaf uint64, level int) error {
	lo := leaf &^ (1<<level - 1)
	hi := min(lo+1<<level, r.t.edge.size)
	return r.loadRecords(lo, hi)
}

// loadRecords loads the records of leaves [lo, hi) as one span.
func (r *reader) loadRecords(lo, hi uint64) error {
	s, err := r.t.readSpan(storedHashCount(lo), storedHashCount(hi))
	if err != nil {
		return err
	}
	r.spans[r.n] = s
	r.n++
	return nil
}

// stored returns the hash of node k of level.
func (r *reader) stored(level int, k uint64) (Hash, error) {
	if h, ok := r.t.edge.hashAt(level, k); ok {
		return h, nil
	}
	if r.right != nil {
		if h, ok := r.right.hashAt(level, k); ok {
			return h, nil
		}
	}
	if b := r.t.base; b != nil {
		if h, ok := b.hashAt(level, k); ok {
			return h, nil
		}
	}
	c := &r.t.cache
	if h, ok := c.get(level, k); ok {
		return h, nil
	}
	idx := storedHashIndex(level, k)
	for _, s := range r.spans[:r.n] {
		if idx >= s.lo && idx-s.lo < uint64(len(s.buf)/HashSize) {
			return hashAt(s.buf, idx-s.lo), nil
		}
	}
	h, err := r.t.readStored(idx)
	if err != nil {
		return Hash{}, err
	}
	c.fill(level, k, h)
	return h, nil
}

// rangeHash returns MTH(D[lo:hi]) (RFC 9162 §2.1.1, no prefixes) for a
// subtree that the RFC's recursion reaches: lo is a multiple of a power of two
// at least hi-lo. Such a range is the complete subtrees given by the set bits
// of hi-lo, largest first, hashed together from the right.
func (r *reader) rangeHash(lo, hi uint64) (Hash, error) {
	level := bits.TrailingZeros64(hi - lo)
	start := hi - 1<<level
	h, err := r.stored(level, start>>level)
	for err == nil && start > lo {
		level = bits.TrailingZeros64(start - lo)
		start -= 1 << level
		var left Hash
		left, err = r.stored(level, start>>level)
		h = HashChildren(left, h)
	}
	return h, err
}

// hashAt returns node k of level if it is one of the complete subtrees that
// the frontier's size decomposes into, which the frontier holds.
func (f *Frontier) hashAt(level int, k uint64) (Hash, bool) {
	top := f.size >> level
	if top&1 == 0 || k != top-1 {
		return Hash{}, false
	}
	return f.hashes[bits.OnesCount64(top)-1], true
}

// readStored reads stored hash idx from the pending buffer or the file.
func (t *Tree) readStored(idx uint64) (Hash, error) {
	base := storedHashCount(t.synced)
	if idx >= base {
		return hashAt(t.pending, idx-base), nil
	}
	var h Hash
	if _, err := t.f.ReadAt(h[:], fileOffset(idx)); err != nil {
		return Hash{}, fmt.Errorf("couldn't read stored hash %d: %w", idx, err)
	}
	return h, nil
}

// spanBufSize is the size of the buffers spanPool holds: enough for the
// records of any aligned block of 2^maxSpanLevel leaves (2^(maxSpanLevel+1)
// hashes at most, counting those the block's last leaf completes above it).
const spanBufSize = 4 << maxSpanLevel * HashSize

// spanPool recycles the buffers readers load blocks into (see release).
var spanPool = sync.Pool{New: func() any { return new([spanBufSize]byte) }}

// release returns the reader's buffers to spanPool. The hashes it returned
// are copies, so they stay valid.
func (r *reader) release() {
	for i := range r.spans[:r.n] {
		if b := r.spans[i].buf; cap(b) == spanBufSize {
			spanPool.Put((*[spanBufSize]byte)(b[:spanBufSize]))
		}
		r.spans[i] = span{}
	}
	r.n = 0
}

// readSpan reads stored hashes [lo, hi) from the file and the pending buffer.
func (t *Tree) readSpan(lo, hi uint64) (span, error) {
	var buf []byte
	if size := (hi - lo) * HashSize; size <= spanBufSize {
		buf = spanPool.Get().(*[spanBufSize]byte)[:size]
	} else {
		buf = make([]byte, size)
	}
	base := storedHashCount(t.synced)
	if fileHi := min(hi, base); lo < fileHi {
		if _, err := t.f.ReadAt(buf[:(fileHi-lo)*HashSize], fileOffset(lo)); err != nil {
			return span{}, fmt.Errorf("couldn't read stored hashes [%d, %d): %w", lo, fileHi, err)
		}
	}
	if hi > base {
		from := max(lo, base)
		copy(buf[(from-lo)*HashSize:], t.pending[(from-base)*HashSize:(hi-base)*HashSize])
	}
	return span{lo: lo, buf: buf}, nil
}

// hashAt returns the j-th hash of buf.
func hashAt(buf []byte, j uint64) Hash {
	return Hash(buf[j*HashSize : (j+1)*HashSize])
}
