package ledger

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/ledgerd/ledgerd/internal/durable"
)

// DefaultCacheChunks is the default Options.CacheChunks.
const DefaultCacheChunks = 64

// Options configures a Ledger.
type Options struct {
	// Logger receives recovery warnings (torn tails, unfinished chunk
	// completions) and chunk events. Nil discards them.
	Logger *slog.Logger
	// CacheChunks is how many completed chunk files Read keeps open, in an
	// LRU: it bounds the file descriptors the ledger holds beyond the open
	// chunk. Up to 16 of them also keep their positions table in memory
	// (those read sequentially). 0 means DefaultCacheChunks.
	CacheChunks int
	// PreopenChunks keeps the file of the next chunk open ahead of need, as
	// an empty spare file (SpareChunkFile) that Sync renames when a chunk
	// starts: a chunk rollover then needs no new file descriptor, and
	// succeeds while the process has none left (EMFILE). Sync opens the
	// next spare after each rollover, when it can.
	PreopenChunks bool
	// FS is the file system of the chunk files. Nil means durable.OS; tests
	// pass a simulated disk (durable/simdisk).
	FS durable.FS
}

// SpareChunkFile is the name, in the ledger directory, of the empty file
// that Options.PreopenChunks keeps open for the next chunk. Its name is not
// a chunk's: Open and Walk ignore it, and Open removes a stale one.
const SpareChunkFile = ".next-chunk"

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
	o.FS = durable.Or(o.FS)
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
// unknown); Open the directory again to recover. The exception is a shortage
// of disk space or file descriptors during Sync (IsResourceExhausted): the
// entries stay in memory and Sync may be called again until it succeeds.
type Ledger struct {
	dir   string
	fs    durable.FS
	log   *slog.Logger
	cache *chunkCache
	stats ioStats

	wmu sync.Mutex // serialises the writer methods

	// Owned by the writer (under wmu).
	dirf     durable.File // the directory, kept open for fsyncs
	preopen  bool         // Options.PreopenChunks
	next     durable.File // the spare file of the next chunk, when preopen
	dirDirty bool         // a creation or rename is not yet fsynced in the directory

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
	f        durable.File // nil until Sync creates the file
	offsets  []uint32     // file offset of each entry
	size     int64        // bytes of the chunk: the 8-byte header and the entries
	written  int64        // bytes already written to the file, a prefix of size
	pending  []byte       // bytes [written, size), not yet written
	complete bool         // no more entries; Sync writes the positions table
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
	l.dropSpare()
	if l.dirf != nil {
		l.dirf.Close()
	}
	l.cache.close()
	return err
}

// StartAt makes an empty ledger start at seqno first instead of 1: a node
// that starts from a snapshot at first-1 appends the entries after it. The
// first chunk file is then ledger_<first>-..., as on the nodes that hold
// the whole ledger (a snapshot's seqno ends a chunk). A ledger that holds
// entries cannot be moved.
func (l *Ledger) StartAt(first uint64) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case first == 0 || first > seqnoLimit:
		return fmt.Errorf("ledger: couldn't start at %d: out of range", first)
	case l.last >= l.first && l.first != first:
		return fmt.Errorf("ledger: couldn't start at %d: it holds entries %d to %d", first, l.first, l.last)
	case l.last >= l.first:
		return nil
	}
	l.first, l.last = first, first-1
	l.committed = max(l.committed, first-1)
	return nil
}

// Replace moves the ledger's files to the directory aside (created; on the
// same file system) and goes on with an empty ledger that starts at first,
// as StartAt: a node that installs a snapshot at first-1 received from its
// primary drops its own log this way. The entries not yet synced are
// dropped with the others. Readers see the old entries until Replace
// returns and none after. When it returns nil the moves are durable; after
// a crash meanwhile, some files may be left in the directory, which
// MoveAside moves too.
func (l *Ledger) Replace(aside string, first uint64) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if err := l.usable(); err != nil {
		return err
	}
	if first == 0 || first > seqnoLimit {
		return fmt.Errorf("ledger: couldn't start at %d: out of range", first)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.tail {
		if c.f != nil {
			c.f.Close()
		}
	}
	l.dropSpare()
	l.cache.close()
	l.chunks, l.tail, l.views, l.spare, l.dirDirty = nil, nil, nil, nil, false
	l.first, l.last, l.committed = first, first-1, first-1
	if err := MoveAside(l.fs, l.dir, aside); err != nil {
		l.failed = err
		return err
	}
	l.prepareSpare()
	return nil
}

// MoveAside moves every file of the ledger directory dir into the directory
// aside (created if need be), durably: both directories are fsynced.
func MoveAside(fsys durable.FS, dir, aside string) error {
	fsys = durable.Or(fsys)
	ents, err := fsys.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("ledger: couldn't move %s aside: %w", dir, err)
	}
	if err := fsys.MkdirAll(aside, 0o750); err != nil {
		return fmt.Errorf("ledger: couldn't move %s aside: %w", dir, err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		if err := fsys.Rename(filepath.Join(dir, e.Name()), filepath.Join(aside, e.Name())); err != nil {
			return fmt.Errorf("ledger: couldn't move %s aside: %w", dir, err)
		}
	}
	if err := durable.SyncDirFS(fsys, aside); err != nil {
		return err
	}
	return durable.SyncDirFS(fsys, dir)
}
