package merkle

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/ledgerd/ledgerd/internal/durable"
)

// The file starts with a 16-byte header: the magic "ledgerd/merkle\x00" and
// a format version byte. A backwards-incompatible layout uses a new version.
const (
	headerSize    = 16
	formatVersion = 1
)

var fileMagic = []byte("ledgerd/merkle\x00")

// tailCheckLeaves is how many of the last leaves Open re-checks: every
// subtree hash in their records must be the hash of its children. Pages of an
// unsynced write can reach the disk in any order, so the check must cover
// at least the largest batch a Sync writes; it costs about one hash per leaf.
const tailCheckLeaves = 1 << 14

// fileOffset returns the offset of stored hash idx in the file.
func fileOffset(idx uint64) int64 {
	return headerSize + int64(idx)*HashSize
}

// openFile opens the tree file at path for reading and writing, creating it
// if it does not exist.
func openFile(fsys durable.FS, path string) (durable.File, error) {
	f, err := fsys.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		if err := createFile(fsys, path); err != nil {
			return nil, err
		}
		f, err = fsys.OpenFile(path, os.O_RDWR, 0)
	}
	return f, err
}

// createFile creates an empty tree file at path atomically: after a crash
// there is either no file or one with a complete header.
func createFile(fsys durable.FS, path string) error {
	return durable.WriteFileFS(fsys, path, append(bytes.Clone(fileMagic), formatVersion), 0o644)
}

// load checks the header and sets the tree's size from the file's length,
// cutting back a torn tail. It reads O(tailCheckLeaves + log n) hashes.
func (t *Tree) load() error {
	length, err := t.checkHeader()
	if err != nil {
		return err
	}
	n := sizeForStoredHashes(uint64(length-headerSize) / HashSize)
	if n > MaxSize {
		return fmt.Errorf("%w: %d bytes is more than %d leaves", ErrCorrupt, length, uint64(MaxSize))
	}
	if n < t.Base() {
		return fmt.Errorf("%w: %d leaves, fewer than its base's %d", ErrCorrupt, n, t.Base())
	}
	t.synced, t.durable = n, n
	t.cache.reset()
	t.fileLeaves = n
	if n, err = t.checkTail(n); err != nil {
		return fmt.Errorf("couldn't check the tail: %w", err)
	}
	if length != fileOffset(storedHashCount(n)) && !t.readOnly {
		if err := t.truncateFile(n); err != nil {
			return fmt.Errorf("couldn't cut the torn tail back to %d leaves: %w", n, err)
		}
	}
	t.synced, t.durable = n, n
	return t.setSize(n)
}

// checkHeader checks the file's header and returns the file's length.
func (t *Tree) checkHeader() (int64, error) {
	info, err := t.f.Stat()
	if err != nil {
		return 0, err
	}
	if info.Size() < headerSize {
		return 0, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", ErrCorrupt, info.Size(), headerSize)
	}
	var hdr [headerSize]byte
	if _, err := t.f.ReadAt(hdr[:], 0); err != nil {
		return 0, fmt.Errorf("couldn't read header: %w", err)
	}
	if !bytes.Equal(hdr[:len(fileMagic)], fileMagic) {
		return 0, fmt.Errorf("%w: not a ledgerd merkle tree file", ErrCorrupt)
	}
	if v := hdr[len(fileMagic)]; v != formatVersion {
		return 0, fmt.Errorf("%w: format version %d, want %d", ErrCorrupt, v, formatVersion)
	}
	return info.Size(), nil
}

// checkTail checks the records of the last tailCheckLeaves of the n leaves
// in the file: each subtree hash a record stores must be the hash of its two
// children. It returns n, or the size before the first damage it finds.
func (t *Tree) checkTail(n uint64) (uint64, error) {
	from := max(n-min(n, tailCheckLeaves), t.Base())
	r := reader{t: t}
	if err := r.loadRecords(from, n); err != nil {
		return 0, err
	}
	for leaf := from; leaf < n; leaf++ {
		level, err := r.checkRecord(leaf)
		switch {
		case err != nil:
			return 0, err
		case level == 1:
			// The leaf, its left sibling or their parent is damaged.
			return leaf - 1, nil
		case level > 1:
			// Both children passed their own checks: the parent is damaged.
			return leaf, nil
		}
	}
	return n, nil
}

// checkRecord checks every subtree hash in leaf's record against the hash of
// its children. It returns the level of the first that doesn't match, or 0.
// A leaf whose record holds no subtree hash (an even leaf) is checked with
// the next leaf's record; the last leaf of the file, if even, is checked by
// nothing here but by the caller's cross-check against the ledger.
func (r *reader) checkRecord(leaf uint64) (int, error) {
	for level := 1; leaf>>(level-1)&1 == 1; level++ {
		k := leaf >> level
		parent, err := r.stored(level, k)
		if err != nil {
			return 0, err
		}
		left, err := r.stored(level-1, 2*k)
		if err != nil {
			return 0, err
		}
		right, err := r.stored(level-1, 2*k+1)
		if err != nil {
			return 0, err
		}
		if HashChildren(left, right) != parent {
			return level, nil
		}
	}
	return 0, nil
}

// truncateFile cuts the file to the records of n leaves and fsyncs it.
func (t *Tree) truncateFile(n uint64) error {
	if err := t.f.Truncate(fileOffset(storedHashCount(n))); err != nil {
		return err
	}
	return t.f.Sync()
}

// CheckRecords checks the records of leaves [from, to) (to is clipped to
// Size): every subtree hash a record stores must be the hash of its two
// children. With every leaf also checked against its source, that proves
// the whole file. It returns the first leaf whose record does not hold,
// and found=false if all do. It only reads.
func (t *Tree) CheckRecords(from, to uint64) (leaf uint64, found bool, err error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.f == nil {
		return 0, false, ErrClosed
	}
	to = min(to, t.edge.size)
	from = max(from, t.Base())
	const block = 4096
	for lo := from; lo < to; lo += block {
		hi := min(lo+block, to)
		r := reader{t: t}
		if err := r.loadRecords(lo, hi); err != nil {
			return 0, false, err
		}
		for l := lo; l < hi; l++ {
			level, err := r.checkRecord(l)
			if err != nil {
				return 0, false, err
			}
			if level > 0 {
				return l, true, nil
			}
		}
	}
	return 0, false, nil
}

// FileLeaves returns the number of leaves whose records the file held when
// it was opened, consistent or not: more than Size when Open found a torn
// tail (or damage in the last records) and cut it back, or, for a tree
// opened with OpenReadOnly, left it in place.
func (t *Tree) FileLeaves() uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.fileLeaves
}
