package ledger

import (
	"container/list"
	"io"
	"path/filepath"
	"sync"

	"github.com/ledgerd/ledgerd/internal/durable"
)

// chunkCache is an LRU of open completed chunk files, so that reads do not
// re-open a chunk they read recently: reads are preads (os.File.ReadAt) on
// the cached descriptor. Its size bounds the descriptors the ledger holds
// (Options.CacheChunks).
//
// Positions tables are loaded whole only for chunks read sequentially (a
// read of the seqno after the chunk's previous read: replay, scans), and at
// most maxTables of them are held, so that memory does not grow with the
// ledger; a random read fetches just the two positions it needs with one
// pread.
//
// Entries are reference counted: an evicted entry's file is closed when its
// last reader releases it, never under a pread in progress.
type chunkCache struct {
	capacity  int
	maxTables int
	fs        durable.FS // set by Open

	mu     sync.Mutex
	ll     *list.List // of *cachedChunk, most recently used first
	m      map[uint64]*list.Element
	tables int // entries holding a table
}

// cachedChunk is one open completed chunk.
type cachedChunk struct {
	start uint64
	f     chunkFile

	// Guarded by chunkCache.mu.
	table    []byte // the raw positions table, if loaded; never modified once set
	lastRead uint64 // seqno of the last read, to detect sequential reads
	refs     int
	evicted  bool
}

// chunkFile is an open completed chunk: an *os.File, or on Unix a bare
// descriptor (see openReadOnly).
type chunkFile interface {
	io.ReaderAt
	io.Closer
}

// maxCachedTables bounds the positions tables the cache holds.
const maxCachedTables = 16

func newChunkCache(capacity int) *chunkCache {
	return &chunkCache{capacity: capacity, maxTables: min(capacity, maxCachedTables), ll: list.New(),
		m: make(map[uint64]*list.Element)}
}

// access is what acquire returns about a read of one seqno.
type access struct {
	cc         *cachedChunk
	table      []byte // the chunk's positions table, if loaded
	sequential bool   // the chunk's previous read was of seqno-1
}

// acquire returns the cached chunk m, opening it in dir on a miss, and
// records a read of seqno in it. The caller must release it.
func (c *chunkCache) acquire(m *chunkMeta, dir string, seqno uint64) (access, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var cc *cachedChunk
	if e, ok := c.m[m.start]; ok {
		c.ll.MoveToFront(e)
		cc = e.Value.(*cachedChunk)
	} else {
		f, err := c.open(filepath.Join(dir, m.name()))
		if err != nil {
			return access{}, err
		}
		cc = &cachedChunk{start: m.start, f: f}
		c.insertLocked(cc)
	}
	cc.refs++
	a := access{cc: cc, table: cc.table, sequential: cc.lastRead != 0 && cc.lastRead+1 == seqno}
	cc.lastRead = seqno
	return a, nil
}

// setTable records the positions table of cc, loaded by a sequential reader,
// dropping the table of the least recently used chunk holding one if the
// cache holds too many.
func (c *chunkCache) setTable(cc *cachedChunk, table []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc.table != nil || cc.evicted {
		return
	}
	cc.table = table
	c.tables++
	c.trimTablesLocked()
}

func (c *chunkCache) trimTablesLocked() {
	for e := c.ll.Back(); e != nil && c.tables > c.maxTables; e = e.Prev() {
		if cc := e.Value.(*cachedChunk); cc.table != nil {
			cc.table = nil
			c.tables--
		}
	}
}

// open opens a completed chunk for preads: as a bare descriptor on the
// operating system's file system, else on c.fs.
func (c *chunkCache) open(path string) (chunkFile, error) {
	if c.fs == nil || c.fs == durable.OS {
		return openReadOnly(path)
	}
	return durable.Open(c.fs, path)
}

// add caches a chunk that Sync just completed, with its positions table.
func (c *chunkCache) add(start uint64, f durable.File, table []byte) {
	cc := &cachedChunk{start: start, f: f, table: table}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[start]; ok {
		c.evictLocked(e)
	}
	c.tables++
	c.insertLocked(cc)
	c.trimTablesLocked()
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
	if cc.table != nil {
		cc.table = nil
		c.tables--
	}
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
