package ledger

import (
	"container/list"
	"os"
	"sync"
)

// chunkCache is an LRU of open completed chunk files and their positions
// tables, so that memory does not grow with the ledger: a table is loaded on
// the first Read in its chunk and dropped with the file when evicted.
//
// Entries are reference counted: an evicted entry's file is closed when its
// last reader releases it, never under a pread in progress.
type chunkCache struct {
	capacity int

	mu sync.Mutex
	ll *list.List // of *cachedChunk, most recently used first
	m  map[uint64]*list.Element
}

// cachedChunk is one open completed chunk.
type cachedChunk struct {
	start uint64
	f     *os.File

	loadOnce sync.Once
	table    []byte // the raw positions table, loaded lazily by (*Ledger).table
	loadErr  error

	refs    int  // guarded by chunkCache.mu
	evicted bool // guarded by chunkCache.mu
}

func newChunkCache(capacity int) *chunkCache {
	return &chunkCache{capacity: capacity, ll: list.New(), m: make(map[uint64]*list.Element)}
}

// acquire returns the cached chunk starting at start, opening path on a
// miss. The caller must release it.
func (c *chunkCache) acquire(start uint64, path string) (*cachedChunk, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[start]; ok {
		c.ll.MoveToFront(e)
		cc := e.Value.(*cachedChunk)
		cc.refs++
		return cc, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	cc := &cachedChunk{start: start, f: f, refs: 1}
	c.insertLocked(cc)
	return cc, nil
}

// add caches a chunk that Sync just completed, with its positions table.
func (c *chunkCache) add(start uint64, f *os.File, table []byte) {
	cc := &cachedChunk{start: start, f: f, table: table}
	cc.loadOnce.Do(func() {})
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[start]; ok {
		c.evictLocked(e)
	}
	c.insertLocked(cc)
}

func (c *chunkCache) insertLocked(cc *cachedChunk) {
	c.m[cc.start] = c.ll.PushFront(cc)
	for c.ll.Len() > c.capacity {
		c.evictLocked(c.ll.Back())
	}
}

func (c *chunkCache) evictLocked(e *list.Element) {
	cc := c.ll.Remove(e).(*cachedChunk)
	delete(c.m, cc.start)
	cc.evicted = true
	if cc.refs == 0 {
		cc.f.Close()
	}
}

// release drops a reference taken by acquire.
func (c *chunkCache) release(cc *cachedChunk) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cc.refs--
	if cc.refs == 0 && cc.evicted {
		cc.f.Close()
	}
}

// remove evicts the chunk starting at start, if cached (before its file is
// renamed back to open, or deleted, by Truncate).
func (c *chunkCache) remove(start uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[start]; ok {
		c.evictLocked(e)
	}
}

// close evicts everything.
func (c *chunkCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.ll.Len() > 0 {
		c.evictLocked(c.ll.Back())
	}
}
