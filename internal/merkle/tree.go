package merkle

import (
	"errors"
	"fmt"
	"math/bits"
	"os"
	"sync"
	"syscall"

	"github.com/ledgerd/ledgerd/internal/durable"
)

// A Tree is CCF's history tree over a growing list of leaves, persisted in
// one append-only file of stored hashes (see the package documentation).
//
// Contract: any number of goroutines may call the read methods (Size,
// SyncedSize, Leaf, Root, InclusionProof, ConsistencyProof) concurrently with
// each other and with one writer. The writer, in CCF the sequencer, calls
// Append, Sync and Truncate; calls to these are serialised, and Append may run
// while a Sync waits for the disk. Reads see appended leaves as soon as Append
// returns; those leaves are durable only once a later Sync returns.
//
// Memory stays bounded whatever the number of leaves: the records buffered
// since the last Sync, the top levels of the tree (at most 1<<17 hashes) and
// the right edge. Everything else is read from the file with ReadAt.
type Tree struct {
	// syncMu serialises the durability path: Sync, Truncate and Close.
	syncMu sync.Mutex

	// mu guards the fields below. Readers hold it shared; Append, Truncate,
	// Close and the bookkeeping at the end of Sync hold it exclusive.
	mu      sync.RWMutex
	f       durable.File // nil once closed
	synced  uint64       // leaves whose records are written to f (by Flush or Sync)
	durable uint64       // leaves whose records are fsynced
	pending []byte       // the records of leaves [synced, edge.size), from stored hash storedHashCount(synced) on
	edge    Frontier     // the right edge; edge.size is the tree's size
	cache   levelCache   // the top levels
	edges   edgeCache    // right edges of trees of earlier sizes
	failed  error        // a write or fsync error: the file's state is unknown until it is reopened
	// readOnly: opened with OpenReadOnly; every write method fails with
	// ErrReadOnly and the file is never modified.
	readOnly bool
	// fileLeaves: the leaves whose records the file held at open (FileLeaves).
	fileLeaves uint64
	// base: the right edge of the leaves the tree does not hold (see
	// CreateFromEdge), nil if it holds them all. Set at open, never changed.
	base *Frontier
}

// Open opens the tree stored at path, creating an empty one if there is no
// file (written as path+".tmp", then renamed into place).
//
// Reopening restores Size from the file's length without rehashing the
// ledger: it re-checks only the records of the last 16384 leaves. A torn tail
// left by a crash (a partial record, or records whose subtree hashes don't
// match their children) is cut back, durably, to the largest consistent size;
// the caller cross-checks the tree against the ledger and truncates or
// replays from there. A file too short for its header or with a foreign
// header is an error wrapping [ErrCorrupt].
func Open(path string) (*Tree, error) {
	return openFS(durable.OS, path, defaultCacheBudget)
}

// OpenFS is Open on the file system fsys (nil: durable.OS).
func OpenFS(fsys durable.FS, path string) (*Tree, error) {
	return openFS(durable.Or(fsys), path, defaultCacheBudget)
}

// OpenReadOnly opens the tree stored at path for reading only, as an
// auditor must: the file is opened O_RDONLY and never modified. A torn tail
// (a write in progress, when a node is running on the file) is left alone
// and the tree's size is the largest consistent one, as Open would cut it
// to. The write methods fail with ErrReadOnly. A missing file is an error.
func OpenReadOnly(path string) (*Tree, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("merkle: couldn't open %s: %w", path, err)
	}
	t := &Tree{f: f, cache: levelCache{budget: defaultCacheBudget}, readOnly: true}
	if t.base, err = readBase(durable.OS, path); err != nil {
		f.Close()
		return nil, fmt.Errorf("merkle: couldn't open %s: %w", path, err)
	}
	if err := t.load(); err != nil {
		f.Close()
		return nil, fmt.Errorf("merkle: couldn't open %s: %w", path, err)
	}
	return t, nil
}

// open is Open with the level cache's budget, in hashes.
func open(path string, cacheBudget uint64) (*Tree, error) {
	return openFS(durable.OS, path, cacheBudget)
}

// openFS is OpenFS with the level cache's budget, in hashes.
func openFS(fsys durable.FS, path string, cacheBudget uint64) (*Tree, error) {
	f, err := openFile(fsys, path)
	if err != nil {
		return nil, fmt.Errorf("merkle: couldn't open %s: %w", path, err)
	}
	t := &Tree{f: f, cache: levelCache{budget: cacheBudget}}
	if t.base, err = readBase(fsys, path); err != nil {
		f.Close()
		return nil, fmt.Errorf("merkle: couldn't open %s: %w", path, err)
	}
	if err := t.load(); err != nil {
		f.Close()
		return nil, fmt.Errorf("merkle: couldn't open %s: %w", path, err)
	}
	return t, nil
}

// Size returns the number of leaves, including those appended since the
// last Sync.
func (t *Tree) Size() uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.edge.size
}

// SyncedSize returns the number of leaves that are durable: those a crash
// would not lose.
func (t *Tree) SyncedSize() uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.durable
}

// Append adds leaves, in order, after the last leaf. Each leaf costs one
// hash amortized: its record is the leaf and the hashes of the subtrees it
// completes. The records are buffered in memory and written by the next Sync.
func (t *Tree) Append(leaves ...Hash) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.writable(); err != nil {
		return fmt.Errorf("merkle: couldn't append: %w", err)
	}
	if uint64(len(leaves)) > MaxSize-t.edge.size {
		return fmt.Errorf("merkle: couldn't append %d leaves to %d: %w", len(leaves), t.edge.size, ErrOutOfRange)
	}
	for _, leaf := range leaves {
		t.appendLeaf(leaf)
		if t.edge.size>>t.cache.low > t.cache.budget/2 {
			t.cache.resize(t.edge.size) // drop the lowest level
		}
	}
	return nil
}

// appendLeaf adds leaf's record to the pending buffer and the level cache.
func (t *Tree) appendLeaf(leaf Hash) {
	n, level := t.edge.size, 0
	t.edge.push(leaf, func(h Hash) {
		t.pending = append(t.pending, h[:]...)
		t.cache.put(level, n>>level, h)
		level++
	})
}

// Sync writes the records buffered since the last Sync with one write and
// fsyncs the file. When it returns nil, every leaf appended before the call is
// durable. After a write or fsync error the tree refuses further writes: the
// file's tail is unknown (fsync errors may drop dirty pages) until the tree is
// closed and reopened, which cuts a torn tail back. The exception is a write
// that fails for lack of space (ENOSPC, EDQUOT): the records stay buffered,
// and a later Flush or Sync writes them.
func (t *Tree) Sync() error {
	t.syncMu.Lock()
	defer t.syncMu.Unlock()
	if err := t.sync(true); err != nil {
		return fmt.Errorf("merkle: couldn't sync: %w", err)
	}
	return nil
}

// Flush writes the records buffered since the last Flush or Sync with one
// write, without fsync: the tree is derived data that its owner can rebuild
// from the ledger, so the owner may fsync it only at checkpoints and keep
// memory bounded meanwhile. Flushed leaves are not durable until Sync.
func (t *Tree) Flush() error {
	t.syncMu.Lock()
	defer t.syncMu.Unlock()
	if err := t.sync(false); err != nil {
		return fmt.Errorf("merkle: couldn't flush: %w", err)
	}
	return nil
}

// sync writes the pending records, and fsyncs if fsync is set. The caller
// holds syncMu, so only Append may change the tree meanwhile, and it only
// adds to pending.
func (t *Tree) sync(fsync bool) error {
	t.mu.RLock()
	err := t.writable()
	f, buf, from, to := t.f, t.pending, t.synced, t.edge.size
	t.mu.RUnlock()
	if err != nil {
		return err
	}
	if len(buf) == 0 {
		if !fsync || t.durable == to {
			return nil
		}
		if err := f.Sync(); err != nil {
			t.mu.Lock()
			t.failed = err
			t.mu.Unlock()
			return err
		}
		t.mu.Lock()
		t.durable = max(t.durable, min(to, t.synced))
		t.mu.Unlock()
		return nil
	}
	// Crash window: a crash from here until fsync returns leaves any prefix
	// of buf on disk, in any order of pages; Open cuts it back to whole,
	// hash-consistent records, at least the first from leaves.
	_, err = f.WriteAt(buf, fileOffset(storedHashCount(from)))
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		// A full disk loses nothing: the records stay pending, and the next
		// Flush or Sync writes them again at the same offset.
		return err
	}
	if err == nil && fsync {
		err = f.Sync()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.failed = err
		return err
	}
	t.synced = to
	if fsync {
		t.durable = to
	}
	t.pending = append(t.pending[:0], t.pending[len(buf):]...)
	return nil
}

// Truncate rolls the tree back to its first n leaves (n <= Size()), as Raft
// does to a follower's uncommitted suffix. When it returns nil, the file holds
// exactly those n leaves, durably: leaves beyond n can't come back after a
// crash, and buffered leaves below n are synced.
func (t *Tree) Truncate(n uint64) error {
	t.syncMu.Lock()
	defer t.syncMu.Unlock()
	if err := t.truncate(n); err != nil {
		return fmt.Errorf("merkle: couldn't truncate to %d leaves: %w", n, err)
	}
	if err := t.sync(true); err != nil {
		return fmt.Errorf("merkle: couldn't truncate to %d leaves: %w", n, err)
	}
	return nil
}

// truncate drops the leaves from n on, from the file (durably) and memory.
func (t *Tree) truncate(n uint64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.writable(); err != nil {
		return err
	}
	if n > t.edge.size {
		return fmt.Errorf("size is %d: %w", t.edge.size, ErrOutOfRange)
	}
	if err := t.pruned(n, n); err != nil {
		return err
	}
	if n < t.synced {
		if err := t.truncateFile(n); err != nil {
			t.failed = err
			return err
		}
		t.synced = n
	}
	t.durable = min(t.durable, n)
	t.pending = t.pending[:(storedHashCount(n)-storedHashCount(t.synced))*HashSize]
	return t.setSize(n)
}

// setSize makes n the tree's size once the pending buffer and the file hold
// exactly n leaves: it fits the cache and reloads the right edge.
func (t *Tree) setSize(n uint64) error {
	t.edge = Frontier{} // stale until reloaded
	t.cache.resize(n)
	t.edges.dropAbove(n)
	edge, err := t.readEdge(n)
	if err != nil {
		return err
	}
	t.edge = edge
	return nil
}

// readEdge reads the right edge of the tree of n leaves: the complete
// subtrees given by n's set bits, largest first.
func (t *Tree) readEdge(n uint64) (Frontier, error) {
	return t.readEdgeWith(&reader{t: t}, n)
}

// readEdgeWith is readEdge through r.
func (t *Tree) readEdgeWith(r *reader, n uint64) (Frontier, error) {
	edge := Frontier{size: n, hashes: make([]Hash, 0, bits.OnesCount64(n))}
	for lo := uint64(0); lo < n; {
		level := bits.Len64(n-lo) - 1
		h, err := r.stored(level, lo>>level)
		if err != nil {
			return Frontier{}, err
		}
		edge.hashes = append(edge.hashes, h)
		lo += 1 << level
	}
	return edge, nil
}

// writable reports why the tree can't be written, if it can't. The caller
// holds mu.
func (t *Tree) writable() error {
	if t.f == nil {
		return ErrClosed
	}
	if t.readOnly {
		return ErrReadOnly
	}
	if t.failed != nil {
		return fmt.Errorf("an earlier write failed, reopen the tree: %w", t.failed)
	}
	return nil
}

// Close syncs the leaves appended since the last Sync and closes the file.
// The tree can't be used afterwards.
func (t *Tree) Close() error {
	t.syncMu.Lock()
	defer t.syncMu.Unlock()
	var syncErr error
	if !t.readOnly {
		syncErr = t.sync(true)
	} else if t.f == nil {
		syncErr = ErrClosed
	}
	if errors.Is(syncErr, ErrClosed) {
		return fmt.Errorf("merkle: couldn't close: %w", ErrClosed)
	}
	t.mu.Lock()
	f := t.f
	t.f, t.pending, t.edge = nil, nil, Frontier{}
	t.cache.reset()
	t.mu.Unlock()
	if err := errors.Join(syncErr, f.Close()); err != nil {
		return fmt.Errorf("merkle: couldn't close: %w", err)
	}
	return nil
}
