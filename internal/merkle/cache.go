package merkle

import (
	"sync"
	"sync/atomic"
)

// defaultCacheBudget bounds the number of stored hashes the level cache
// holds (4 MiB of hashes, plus 4 bytes of state each): whatever the tree's
// size, only the top levels, which every proof and root needs, stay in memory.
const defaultCacheBudget = 1 << 17

// Cache slot states. A reader that misses claims an empty slot, fills it and
// publishes it; readers only read hashes from ready slots, so filling needs
// no lock beyond the tree's read lock.
const (
	slotEmpty uint32 = iota
	slotFilling
	slotReady
)

// A levelCache holds the stored hashes of every level at or above low, all
// the complete subtrees of at least 2^low leaves. low is the smallest level
// whose nodes fit in half of budget, so the cache never exceeds it.
//
// The writer (holding the tree's write lock) appends the hashes it computes
// and resizes the cache. Readers (holding the read lock) fill the slots that
// were not loaded yet, lazily from the file, so Open reads nothing up front.
type levelCache struct {
	budget uint64 // most hashes held
	low    int
	levels [64]cacheLevel // levels[l] for l >= low; the others are empty
}

// A cacheLevel holds the nodes 0..len-1 of one level.
type cacheLevel struct {
	state  []uint32 // slotEmpty, slotFilling or slotReady; atomic access only
	hashes []Hash   // hashes[k] may be read only once state[k] is slotReady
}

// cacheLow returns the lowest cached level for a tree of n leaves: levels
// low and above hold fewer than 2·(n >> low) nodes.
func (c *levelCache) cacheLow(n uint64) int {
	low := 0
	for n>>low > c.budget/2 {
		low++
	}
	return low
}

// get returns the cached hash of node k of level, if it is there.
func (c *levelCache) get(level int, k uint64) (Hash, bool) {
	if level < c.low {
		return Hash{}, false
	}
	l := &c.levels[level]
	if k >= uint64(len(l.state)) || atomic.LoadUint32(&l.state[k]) != slotReady {
		return Hash{}, false
	}
	return l.hashes[k], true
}

// fill stores h, read from the file, as node k of level if that node is
// cached and not filled yet. Concurrent readers may call it.
func (c *levelCache) fill(level int, k uint64, h Hash) {
	if level < c.low {
		return
	}
	l := &c.levels[level]
	if k >= uint64(len(l.state)) || !atomic.CompareAndSwapUint32(&l.state[k], slotEmpty, slotFilling) {
		return
	}
	l.hashes[k] = h
	atomic.StoreUint32(&l.state[k], slotReady)
}

// put records h as node k of level, just computed by the writer; k is the
// level's next node. The caller holds the write lock.
func (c *levelCache) put(level int, k uint64, h Hash) {
	if level < c.low {
		return
	}
	l := &c.levels[level]
	if k != uint64(len(l.state)) {
		panic("merkle: levelCache.put out of order")
	}
	l.state = append(l.state, slotReady)
	l.hashes = append(l.hashes, h)
}

// resize fits the cache to a tree of n leaves after the writer appended or
// truncated: it drops the nodes beyond n, drops the levels that no longer fit
// the budget and adds empty, lazily filled levels that fit again. The caller
// holds the write lock.
func (c *levelCache) resize(n uint64) {
	low := c.cacheLow(n)
	for level := range c.levels {
		l := &c.levels[level]
		nodes := n >> level
		switch {
		case level < low:
			*l = cacheLevel{}
		case level < c.low:
			*l = cacheLevel{state: make([]uint32, nodes), hashes: make([]Hash, nodes)}
		case nodes < uint64(len(l.state)):
			l.state, l.hashes = l.state[:nodes], l.hashes[:nodes]
		case nodes > uint64(len(l.state)):
			grow := nodes - uint64(len(l.state))
			l.state = append(l.state, make([]uint32, grow)...)
			l.hashes = append(l.hashes, make([]Hash, grow)...)
		}
	}
	c.low = low
}

// reset empties the cache, for a tree whose file is not loaded yet; the
// next resize adds every level it keeps as empty.
func (c *levelCache) reset() {
	*c = levelCache{budget: c.budget, low: len(c.levels)}
}

// edgeCacheSize bounds the right edges an edgeCache holds: those of the
// trees the last signatures signed, which receipts prove against.
const edgeCacheSize = 1024

// An edgeCache holds the right edges of trees of earlier sizes, so that a
// proof in the tree a signature signed does not re-read that tree's right
// edge. Readers fill it under the tree's read lock; the writer drops the
// sizes beyond the tree's when it truncates.
type edgeCache struct {
	mu sync.Mutex
	m  map[uint64]*Frontier
}

func (c *edgeCache) get(n uint64) *Frontier {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[n]
}

func (c *edgeCache) put(f *Frontier) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= edgeCacheSize {
		c.m = make(map[uint64]*Frontier)
	}
	c.m[f.size] = f
}

// dropAbove forgets the right edges of trees larger than n leaves.
func (c *edgeCache) dropAbove(n uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for size := range c.m {
		if size > n {
			delete(c.m, size)
		}
	}
}
