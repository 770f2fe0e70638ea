package ledger

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
)

// DefaultCacheChunks is the default Options.CacheChunks.
const DefaultCacheChunks = 16

// Options configures a Ledger.
type Options struct {
	// Logger receives recovery warnings (torn tails, unfinished chunk
	// completions) and chunk events. Nil discards them.
	Logger *slog.Logger
	// CacheChunks is how many completed chunks Read keeps open, with their
	// positions tables, in an LRU. 0 means DefaultCacheChunks.
	CacheChunks int
}

// withDefaults validates o and fills in the defaults.
func (o Options) withDefaults() (Options, error) {
	if o.CacheChunks < 0 {
		return o, fmt.Errorf("ledger: Options.CacheChunks is %d; use 0 for the default (%d) or a positive count",
			o.CacheChunks, DefaultCacheChunks)
	}
	if o.CacheChunks == 0 {
		o.CacheChunks = DefaultCacheChunks
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// Ledger is a directory of CCF ledger chunk files (ccf-format.md §1.1–1.2)
// holding the entries from FirstSeqno to LastSeqno.
//
// Contract: Append, Sync, Truncate, Commit and Close are the writer's methods,
// meant for the one goroutine that persists Raft's entries; they are
// serialised with each other. Read, View and the accessors may be called from
// any goroutine, concurrently with the writer: they see every appended entry
// at once, durable or not, and are not blocked by the writer's fsyncs.
//
// An entry is durable only once Sync returns. After an I/O error in a writer
// method the Ledger refuses further writes (the state of the files is then
// unknown); Open the directory again to recover.
type Ledger struct {
	dir   string
	log   *slog.Logger
	cache *chunkCache
	stats ioStats

	wmu sync.Mutex // serialises the writer methods

	// mu guards the fields below. The writer holds it only to change them,
	// never across a write(2) or fsync of Sync; Truncate and Commit hold it
	// across the renames and removals that readers could observe.
	mu        sync.RWMutex
	first     uint64       // seqno of the first entry
	last      uint64       // seqno of the last entry (first-1 when empty)
	committed uint64       // highest committed seqno known
	chunks    []chunkMeta  // completed chunk files, by start
	tail      []*tailChunk // chunks after chunks; all but the last are complete
	views     viewHistory
	spare     []byte // a pending buffer to reuse
	closed    bool
	failed    error // sticky I/O failure of a writer method
}

// tailChunk is a chunk not yet completed on disk: the open chunk, and any
// chunk ended in memory (FlagForceChunkAfter, or a next entry with
// FlagForceChunkBefore) that the next Sync completes.
type tailChunk struct {
	start    uint64
	f        *os.File // nil until Sync creates the file
	offsets  []uint32 // file offset of each entry
	size     int64    // bytes of the chunk: the 8-byte header and the entries
	written  int64    // bytes already written to the file, a prefix of size
	pending  []byte   // bytes [written, size), not yet written
	complete bool     // no more entries; Sync writes the positions table
}

func (c *tailChunk) end() uint64 { return c.start + uint64(len(c.offsets)) - 1 }

// entryEnd returns the file offset just after entry i.
func (c *tailChunk) entryEnd(i int) int64 {
	if i+1 < len(c.offsets) {
		return int64(c.offsets[i+1])
	}
	return c.size
}

// ioStats counts the system calls that make entries durable.
type ioStats struct {
	writes, fsyncs, dirSyncs atomic.Int64
}

// Largest pending buffer kept across Syncs.
const maxSpareBuffer = 16 << 20

var zeroHeader [chunkHeaderSize]byte

// FirstSeqno returns the seqno of the first entry: 1 for a new ledger, the
// start of the first chunk file otherwise.
func (l *Ledger) FirstSeqno() uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.first
}

// LastSeqno returns the seqno of the last entry appended, durable or not; 0
// for an empty new ledger.
func (l *Ledger) LastSeqno() uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.last
}

// CommittedSeqno returns the highest committed seqno known: the end of the
// last ".committed" chunk at Open, then the latest Commit.
func (l *Ledger) CommittedSeqno() uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.committed
}

// OpenChunkBytes returns the size in bytes of the current open chunk, header
// included, durable or not; 0 if there is none (the last chunk has ended). The
// node uses it to decide when to end a chunk (ccf-format.md §1.6).
func (l *Ledger) OpenChunkBytes() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if c := l.openTail(); c != nil {
		return c.size
	}
	return 0
}

// openTail returns the chunk that takes the next entry, if any.
func (l *Ledger) openTail() *tailChunk {
	if n := len(l.tail); n > 0 && !l.tail[n-1].complete {
		return l.tail[n-1]
	}
	return nil
}

// usable returns why the writer cannot proceed, if it cannot.
func (l *Ledger) usable() error {
	if l.closed {
		return ErrClosed
	}
	if l.failed != nil {
		return fmt.Errorf("ledger: unusable after an earlier I/O failure, reopen it: %w", l.failed)
	}
	return nil
}

// fail records a writer I/O failure and returns it.
func (l *Ledger) fail(err error) error {
	l.mu.Lock()
	l.failed = err
	l.mu.Unlock()
	return err
}

// Append adds raw serialised entries (as AppendEntry makes them) after
// LastSeqno. Their seqnos, read from each IV, must continue LastSeqno()+1
// contiguously and their views must not decrease; otherwise, or if any entry
// is malformed, nothing is appended. The entries are copied, readable at once
// by Read, and durable after the next Sync.
//
// Chunks end where the entries say (ccf-format.md §1.6): after an entry
// flagged FlagForceChunkAfter, and before one flagged FlagForceChunkBefore.
// The ledger never decides chunk sizes itself; an entry that would start
// beyond 4 GiB into a chunk (positions are uint32) is refused.
func (l *Ledger) Append(entries ...[]byte) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if err := l.usable(); err != nil {
		return err
	}
	infos := make([]entryInfo, len(entries))
	if err := l.checkAppend(entries, infos); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, raw := range entries {
		l.appendLocked(raw, infos[i])
	}
	return nil
}

// checkAppend validates entries against the ledger's end, filling infos.
func (l *Ledger) checkAppend(entries [][]byte, infos []entryInfo) error {
	next, view := l.last+1, l.views.last()
	size, open := int64(0), false
	if c := l.openTail(); c != nil {
		size, open = c.size, true
	}
	for i, raw := range entries {
		if len(raw) > MaxEntrySize {
			return fmt.Errorf("ledger: couldn't append seqno %d: entry of %d bytes exceeds MaxEntrySize", next, len(raw))
		}
		info, err := inspectEntry(raw)
		switch {
		case err != nil:
			return fmt.Errorf("ledger: couldn't append seqno %d: %w", next, err)
		case info.snapshot:
			return fmt.Errorf("ledger: couldn't append seqno %d: %w", next, ErrSnapshotEntry)
		case info.seqno != next:
			return fmt.Errorf("%w: entry %d has seqno %d, want %d", ErrNotContiguous, i, info.seqno, next)
		case info.view < view:
			return fmt.Errorf("%w: seqno %d has view %d, after view %d", ErrNotContiguous, next, info.view, view)
		}
		if !open || info.flags&FlagForceChunkBefore != 0 {
			size, open = chunkHeaderSize, true
		}
		if size > maxChunkOffset {
			return fmt.Errorf("ledger: couldn't append seqno %d: it would start %d bytes into its chunk, "+
				"beyond the 4 GiB that uint32 positions allow; end chunks earlier", next, size)
		}
		size += int64(len(raw))
		open = info.flags&FlagForceChunkAfter == 0
		infos[i], next, view = info, next+1, info.view
	}
	return nil
}

// appendLocked adds one checked entry to the tail.
func (l *Ledger) appendLocked(raw []byte, info entryInfo) {
	c := l.openTail()
	if c != nil && info.flags&FlagForceChunkBefore != 0 {
		c.complete, c = true, nil
	}
	if c == nil {
		c = &tailChunk{start: info.seqno, size: chunkHeaderSize, pending: append(l.spare[:0], zeroHeader[:]...)}
		l.spare = nil
		l.tail = append(l.tail, c)
	}
	c.offsets = append(c.offsets, uint32(c.size))
	c.pending = append(c.pending, raw...)
	c.size += int64(len(raw))
	c.complete = info.flags&FlagForceChunkAfter != 0
	l.last = info.seqno
	l.views.observe(info.seqno, info.view)
}

// Sync makes every appended entry durable, as a group commit: for each chunk
// file touched, one write(2) of all its new bytes (with the positions table
// when the chunk ends), one fsync, and, when a file was created or a
// completed chunk renamed to ledger_<start>-<end>, one fsync of the directory.
// Completing a chunk that already had bytes on disk adds one 8-byte write of
// its header (ccf-format.md §1.2: table first, header second, then flush).
func (l *Ledger) Sync() error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if err := l.usable(); err != nil {
		return err
	}
	return l.syncLocked()
}

// flushed is the outcome of flushChunk, published under mu.
type flushed struct {
	c       *tailChunk
	f       *os.File
	created bool
	meta    chunkMeta // when c.complete
}

// syncLocked writes the tail (the durability protocol, in order):
//  1. each chunk in seqno order: write its bytes, fsync, and rename it if it
//     ended. A chunk is fully durable before the next file is created, so
//     after a crash only the last file can hold a torn tail, and an earlier
//     file still named ledger_<start> has a complete table (recover.go
//     finishes its rename).
//  2. fsync the directory if a file was created or renamed.
//  3. publish the new state to readers.
func (l *Ledger) syncLocked() error {
	var done []flushed
	var err error
	dirty := false
	for _, c := range l.tail {
		if !c.complete && c.written == c.size {
			continue
		}
		r, ferr := l.flushChunk(c)
		if ferr != nil {
			err = ferr
			break
		}
		done = append(done, r)
		dirty = dirty || r.created || c.complete
	}
	if err == nil && dirty {
		err = l.syncDir()
	}
	l.publish(done)
	if err != nil {
		return l.fail(err)
	}
	return nil
}

// flushChunk writes the unwritten bytes of c (and its positions table if it
// is complete), fsyncs it, and renames it if complete. It runs without mu:
// readers only read c.pending[8:len] and bytes before c.written, which it
// does not change.
func (l *Ledger) flushChunk(c *tailChunk) (r flushed, err error) {
	r = flushed{c: c, f: c.f}
	if r.f == nil {
		name := openName(c.start)
		if r.f, err = os.OpenFile(l.path(name), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640); err != nil {
			return r, fmt.Errorf("ledger: couldn't create chunk %s: %w", name, err)
		}
		r.created = true
		defer func() {
			if err != nil {
				r.f.Close()
			}
		}()
	}
	buf := c.pending
	if c.complete {
		buf = appendTable(buf, c.offsets)
		if c.written == 0 {
			binary.LittleEndian.PutUint64(buf, uint64(c.size)) // the file header
		}
	}
	l.stats.writes.Add(1)
	if _, err := r.f.WriteAt(buf, c.written); err != nil {
		return r, fmt.Errorf("ledger: couldn't write chunk %s: %w", r.f.Name(), err)
	}
	if c.complete && c.written > 0 {
		if err := l.writeHeader(r.f, c.size); err != nil {
			return r, fmt.Errorf("ledger: couldn't write the header of %s: %w", r.f.Name(), err)
		}
	}
	if err := l.syncFile(r.f); err != nil {
		return r, fmt.Errorf("ledger: couldn't fsync %s: %w", r.f.Name(), err)
	}
	if c.complete {
		r.meta = chunkMeta{start: c.start, end: c.end(), committed: c.end() <= l.committed, tableOff: c.size}
		if err := l.rename(openName(c.start), r.meta.name()); err != nil {
			return r, err
		}
		l.log.Debug("ledger chunk completed", "file", r.meta.name(), "entries", len(c.offsets), "bytes", r.meta.fileSize())
	}
	return r, nil
}

// publish applies the outcome of flushChunk calls to the in-memory state.
func (l *Ledger) publish(done []flushed) {
	l.mu.Lock()
	defer l.mu.Unlock()
	completed := 0
	for _, r := range done {
		c := r.c
		c.f = r.f
		if !c.complete {
			c.written, c.pending = c.size, c.pending[:0]
			if cap(c.pending) > maxSpareBuffer {
				c.pending = nil
			}
			continue
		}
		l.chunks = append(l.chunks, r.meta)
		l.cache.add(c.start, c.f, appendTable(make([]byte, 0, len(c.offsets)*positionSize), c.offsets))
		if cap(c.pending) <= maxSpareBuffer {
			l.spare = c.pending[:0]
		}
		completed++
	}
	l.tail = slices.Delete(l.tail, 0, completed)
}

// Read returns the raw bytes of the entry at seqno, durable or not. The
// caller owns the returned slice. Entries of completed chunks are found with
// their positions table (loaded lazily, LRU-cached); those of the open chunk
// with an in-memory offset list.
func (l *Ledger) Read(seqno uint64) ([]byte, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if err := l.check(seqno); err != nil {
		return nil, err
	}
	if c := l.tailFor(seqno); c != nil {
		return l.readTail(c, seqno)
	}
	return l.readCompleted(l.chunkFor(seqno), seqno)
}

// View returns the view (Raft term) of the entry at seqno, from the
// in-memory view history.
func (l *Ledger) View(seqno uint64) (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if err := l.check(seqno); err != nil {
		return 0, err
	}
	return l.views.at(seqno), nil
}

// check returns an error unless seqno can be read.
func (l *Ledger) check(seqno uint64) error {
	if l.closed {
		return ErrClosed
	}
	if seqno < l.first || seqno > l.last {
		return fmt.Errorf("%w: %d is outside [%d, %d]", ErrNotFound, seqno, l.first, l.last)
	}
	return nil
}

// tailFor returns the tail chunk holding seqno, if any.
func (l *Ledger) tailFor(seqno uint64) *tailChunk {
	for _, c := range l.tail {
		if seqno >= c.start && seqno <= c.end() {
			return c
		}
	}
	return nil
}

// chunkFor returns the completed chunk holding seqno, which must be one.
func (l *Ledger) chunkFor(seqno uint64) *chunkMeta {
	i := sort.Search(len(l.chunks), func(i int) bool { return l.chunks[i].end >= seqno })
	return &l.chunks[i]
}

// fileOf names the file holding seqno, for errors.
func (l *Ledger) fileOf(seqno uint64) string {
	if c := l.tailFor(seqno); c != nil {
		return openName(c.start)
	}
	if seqno >= l.first && seqno <= l.last {
		return l.chunkFor(seqno).name()
	}
	return ""
}

// readTail reads an entry of a tail chunk, from memory or the file.
func (l *Ledger) readTail(c *tailChunk, seqno uint64) ([]byte, error) {
	i := int(seqno - c.start)
	off, end := int64(c.offsets[i]), c.entryEnd(i)
	if off >= c.written {
		return bytes.Clone(c.pending[off-c.written : end-c.written]), nil
	}
	return l.readAt(c.f, openName(c.start), seqno, off, end)
}

// readCompleted reads an entry of a completed chunk through the cache.
func (l *Ledger) readCompleted(m *chunkMeta, seqno uint64) ([]byte, error) {
	cc, err := l.cache.acquire(m.start, l.path(m.name()))
	if err != nil {
		return nil, fmt.Errorf("ledger: couldn't open %s: %w", m.name(), err)
	}
	defer l.cache.release(cc)
	table, err := l.table(cc, m)
	if err != nil {
		return nil, err
	}
	off, end, err := extent(table, m, seqno)
	if err != nil {
		return nil, err
	}
	return l.readAt(cc.f, m.name(), seqno, off, end)
}

// table returns the raw positions table of a cached chunk, reading it once.
// It is kept raw: each Read checks the two positions it uses.
func (l *Ledger) table(cc *cachedChunk, m *chunkMeta) ([]byte, error) {
	cc.loadOnce.Do(func() {
		b := make([]byte, m.count()*positionSize)
		if _, err := cc.f.ReadAt(b, m.tableOff); err != nil {
			cc.loadErr = fmt.Errorf("ledger: couldn't read the positions table of %s: %w", m.name(), err)
			return
		}
		cc.table = b
	})
	return cc.table, cc.loadErr
}

// extent returns the file offsets [off, end) of the entry at seqno in a
// completed chunk, from its positions table (§1.2).
func extent(table []byte, m *chunkMeta, seqno uint64) (off, end int64, err error) {
	i := seqno - m.start
	off, end = int64(binary.LittleEndian.Uint32(table[i*positionSize:])), m.tableOff
	if i+1 < m.count() {
		end = int64(binary.LittleEndian.Uint32(table[(i+1)*positionSize:]))
	}
	if off < chunkHeaderSize || end-off < minEntrySize || end > m.tableOff {
		return 0, 0, &CorruptionError{File: m.name(), Seqno: seqno, Offset: m.tableOff + int64(i)*positionSize,
			Reason: fmt.Sprintf("positions table puts the entry at [%d, %d), the table at %d", off, end, m.tableOff)}
	}
	return off, end, nil
}

// readAt reads the entry at [off, end) of a chunk file and checks that it is
// the entry at seqno.
func (l *Ledger) readAt(f *os.File, name string, seqno uint64, off, end int64) ([]byte, error) {
	if end-off > MaxEntrySize || end-off < minEntrySize {
		return nil, &CorruptionError{File: name, Seqno: seqno, Offset: off,
			Reason: fmt.Sprintf("entry of %d bytes", end-off)}
	}
	raw := make([]byte, end-off)
	if _, err := f.ReadAt(raw, off); err != nil {
		return nil, fmt.Errorf("ledger: couldn't read seqno %d from %s: %w", seqno, name, err)
	}
	s, _, err := EntrySeqnoView(raw)
	switch {
	case err != nil:
		return nil, &CorruptionError{File: name, Seqno: seqno, Offset: off, Reason: "bad entry", Err: err}
	case headerSize(raw) != uint64(len(raw)-EntryHeaderSize):
		return nil, &CorruptionError{File: name, Seqno: seqno, Offset: off,
			Reason: fmt.Sprintf("entry header size %d disagrees with the positions (%d)", headerSize(raw), len(raw)-EntryHeaderSize)}
	case s != seqno:
		return nil, &CorruptionError{File: name, Seqno: seqno, Offset: off,
			Reason: fmt.Sprintf("entry has seqno %d", s)}
	}
	return raw, nil
}

// probeView reads the view of the entry at seqno from its IV, for
// rebuildViews. In a completed chunk it reads the entry's position from the
// table on disk.
func (l *Ledger) probeView(seqno uint64) (uint64, error) {
	var iv [GCMIVSize]byte
	if c := l.tailFor(seqno); c != nil {
		i := int(seqno - c.start)
		off := int64(c.offsets[i])
		if off >= c.written {
			copy(iv[:], c.pending[off-c.written+ivOffset:])
		} else if _, err := c.f.ReadAt(iv[:], off+ivOffset); err != nil {
			return 0, fmt.Errorf("ledger: couldn't read seqno %d from %s: %w", seqno, openName(c.start), err)
		}
		return l.checkIV(iv, openName(c.start), seqno, off)
	}
	m := l.chunkFor(seqno)
	cc, err := l.cache.acquire(m.start, l.path(m.name()))
	if err != nil {
		return 0, fmt.Errorf("ledger: couldn't open %s: %w", m.name(), err)
	}
	defer l.cache.release(cc)
	off, err := l.position(cc, m, seqno)
	if err != nil {
		return 0, err
	}
	if _, err := cc.f.ReadAt(iv[:], off+ivOffset); err != nil {
		return 0, fmt.Errorf("ledger: couldn't read seqno %d from %s: %w", seqno, m.name(), err)
	}
	return l.checkIV(iv, m.name(), seqno, off)
}

// position returns the file offset of seqno in a completed chunk.
func (l *Ledger) position(cc *cachedChunk, m *chunkMeta, seqno uint64) (int64, error) {
	i := seqno - m.start
	if i == 0 {
		return chunkHeaderSize, nil
	}
	var b [positionSize]byte
	at := m.tableOff + int64(i)*positionSize
	if _, err := cc.f.ReadAt(b[:], at); err != nil {
		return 0, fmt.Errorf("ledger: couldn't read the position of seqno %d in %s: %w", seqno, m.name(), err)
	}
	off := int64(binary.LittleEndian.Uint32(b[:]))
	if off < chunkHeaderSize || off+minEntrySize > m.tableOff {
		return 0, &CorruptionError{File: m.name(), Seqno: seqno, Offset: at,
			Reason: fmt.Sprintf("position %d is outside the entries", off)}
	}
	return off, nil
}

// checkIV checks that an IV read at off is that of seqno, and returns its view.
func (l *Ledger) checkIV(iv [GCMIVSize]byte, name string, seqno uint64, off int64) (uint64, error) {
	if s := binary.LittleEndian.Uint64(iv[:]); s != seqno {
		return 0, &CorruptionError{File: name, Seqno: seqno, Offset: off, Reason: fmt.Sprintf("entry has seqno %d", s)}
	}
	return uint64(binary.LittleEndian.Uint32(iv[8:]) & viewMask), nil
}

// Truncate drops every entry after last: Raft's rollback of an uncommitted
// suffix. It is durable on return. It refuses to drop committed entries.
//
// Order (each step durable before the next, so that a crash leaves a state
// that Open recovers): pending entries are synced; whole chunks after last
// are deleted newest first; the chunk holding last is cut after it. A
// completed chunk is reopened for that: renamed back to ledger_<start>
// (a crash here: Open sees a valid table and completes it again), cut to
// the end of entry last and fsynced (a crash here: Open sees a header
// without a table and walks the entries), then its header is zeroed.
func (l *Ledger) Truncate(last uint64) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if err := l.usable(); err != nil {
		return err
	}
	switch {
	case last >= l.last:
		return nil
	case last < l.committed:
		return fmt.Errorf("%w: couldn't truncate after %d, %d is committed", ErrCommitted, last, l.committed)
	case last+1 < l.first:
		return fmt.Errorf("ledger: couldn't truncate after %d: the ledger starts at %d", last, l.first)
	}
	if err := l.syncLocked(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.truncateLocked(last); err != nil {
		l.failed = err
		return err
	}
	return nil
}

// truncateLocked drops the entries after last from the synced files.
func (l *Ledger) truncateLocked(last uint64) error {
	if c := l.openTail(); c != nil {
		if c.start <= last {
			k := int(last - c.start + 1)
			if err := l.shrinkFile(c.f, int64(c.offsets[k]), false); err != nil {
				return err
			}
			c.offsets, c.size, c.written = c.offsets[:k], int64(c.offsets[k]), int64(c.offsets[k])
			return l.truncated(last)
		}
		c.f.Close()
		l.tail = nil
		if err := l.remove(openName(c.start)); err != nil {
			return err
		}
	}
	for len(l.chunks) > 0 && l.chunks[len(l.chunks)-1].start > last {
		m := l.chunks[len(l.chunks)-1]
		l.cache.remove(m.start)
		l.chunks = l.chunks[:len(l.chunks)-1]
		if err := l.remove(m.name()); err != nil {
			return err
		}
	}
	if n := len(l.chunks); n > 0 && l.chunks[n-1].end > last {
		if err := l.reopen(l.chunks[n-1], last); err != nil {
			return err
		}
		l.chunks = l.chunks[:n-1]
	}
	return l.truncated(last)
}

// truncated records the new end of the ledger.
func (l *Ledger) truncated(last uint64) error {
	l.log.Info("ledger truncated", "last", last, "dropped", l.last-last)
	l.last = last
	l.views.truncate(last)
	return nil
}

// remove deletes a chunk file durably.
func (l *Ledger) remove(name string) error {
	if err := os.Remove(l.path(name)); err != nil {
		return fmt.Errorf("ledger: couldn't remove %s: %w", name, err)
	}
	return l.syncDir()
}

// reopen turns the completed chunk m back into the open chunk, holding the
// entries up to last (see Truncate for the order of the steps).
func (l *Ledger) reopen(m chunkMeta, last uint64) error {
	l.cache.remove(m.start)
	f, err := os.OpenFile(l.path(m.name()), os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("ledger: couldn't open %s: %w", m.name(), err)
	}
	b := make([]byte, m.count()*positionSize)
	if _, err := f.ReadAt(b, m.tableOff); err != nil {
		f.Close()
		return fmt.Errorf("ledger: couldn't read the positions table of %s: %w", m.name(), err)
	}
	pos, i, reason := decodeTable(b, m.tableOff)
	if reason != "" {
		f.Close()
		return &CorruptionError{File: m.name(), Seqno: m.start + uint64(i), Offset: m.tableOff + int64(i)*positionSize, Reason: reason}
	}
	k := last - m.start + 1
	size := int64(pos[k])
	if err := l.rename(m.name(), openName(m.start)); err != nil {
		f.Close()
		return err
	}
	if err := l.syncDir(); err != nil {
		f.Close()
		return err
	}
	if err := l.shrinkFile(f, size, true); err != nil {
		f.Close()
		return err
	}
	l.tail = []*tailChunk{{start: m.start, f: f, offsets: pos[:k:k], size: size, written: size}}
	return nil
}

// Commit records that every entry up to seqno is committed, and renames each
// completed chunk whose end is at most seqno to ledger_<start>-<end>.committed
// (ccf-format.md §1.1), then fsyncs the directory. A chunk completed later
// by Sync gets its committed name directly. Committing backwards is a no-op.
func (l *Ledger) Commit(seqno uint64) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if err := l.usable(); err != nil {
		return err
	}
	if seqno <= l.committed {
		return nil
	}
	if seqno > l.last {
		return fmt.Errorf("ledger: couldn't commit %d: the last entry is %d", seqno, l.last)
	}
	renamed, err := l.commitLocked(seqno)
	if renamed {
		err = errors.Join(err, l.syncDir())
	}
	return err
}

// commitLocked renames the chunks that seqno commits, under mu so that no
// reader opens a file by its old name.
func (l *Ledger) commitLocked(seqno uint64) (renamed bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.committed = seqno
	for i := range l.chunks {
		m := &l.chunks[i]
		if m.committed || m.end > seqno {
			continue
		}
		to := completeName(m.start, m.end, true)
		if err := l.rename(m.name(), to); err != nil {
			return renamed, err
		}
		m.committed, renamed = true, true
	}
	return renamed, nil
}

// Close syncs the appended entries and closes the files. The Ledger cannot be
// used afterwards.
func (l *Ledger) Close() error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed {
		return nil
	}
	var err error
	if l.failed == nil {
		err = l.syncLocked()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for _, c := range l.tail {
		if c.f != nil {
			err = errors.Join(err, c.f.Close())
		}
	}
	l.cache.close()
	return err
}
