package merkle

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/ledgerd/ledgerd/internal/durable"
)

// ErrPruned reports a leaf (or a tree size) below the tree's base: the tree
// was created from the right edge of a larger tree (CreateFromEdge, a node
// that started from a snapshot) and holds no hash of the leaves before it.
var ErrPruned = errors.New("below the tree's base (it starts from a snapshot's right edge)")

// A tree with a base: the file "PATH.base" holds the right edge of the
// tree of the first B leaves (B, then its hashes, then SHA-256 of both),
// and the tree file holds no stored hash below storedHashCount(B) (a hole).
// Every hash a query about leaves >= B or sizes >= B needs is either stored
// after that point or one of the edge's: a complete subtree wholly below B
// on such a query's path is one of the subtrees B's set bits give.

func basePath(path string) string { return path + ".base" }

func encodeBase(f *Frontier) []byte {
	b := binary.BigEndian.AppendUint64(nil, f.size)
	for _, h := range f.hashes {
		b = append(b, h[:]...)
	}
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

func decodeBase(b []byte) (*Frontier, error) {
	if len(b) < 8+sha256.Size || (len(b)-8-sha256.Size)%HashSize != 0 {
		return nil, fmt.Errorf("%w: base file of %d bytes", ErrCorrupt, len(b))
	}
	body := b[:len(b)-sha256.Size]
	if sum := sha256.Sum256(body); !bytes.Equal(sum[:], b[len(body):]) {
		return nil, fmt.Errorf("%w: base file fails its checksum", ErrCorrupt)
	}
	size := binary.BigEndian.Uint64(body)
	hashes := make([]Hash, (len(body)-8)/HashSize)
	for i := range hashes {
		copy(hashes[i][:], body[8+i*HashSize:])
	}
	f, err := FrontierOf(size, hashes)
	if err != nil || size == 0 {
		return nil, fmt.Errorf("%w: base file: %v", ErrCorrupt, err)
	}
	return f, nil
}

// readBase reads the base of the tree at path, nil if it has none.
func readBase(fsys durable.FS, path string) (*Frontier, error) {
	b, err := durable.ReadFile(fsys, basePath(path))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return decodeBase(b)
}

// CreateFromEdge creates at path (which must not exist) a tree of size
// leaves whose leaves are not stored, from the right edge of the tree of
// those leaves (Tree.Edge): a node that starts from a snapshot appends the
// leaves after it and proves inclusion of those only. Leaf, InclusionProof
// and ConsistencyProof below size, and Root of fewer leaves, fail with
// ErrPruned; Truncate cannot go below it.
func CreateFromEdge(fsys durable.FS, path string, size uint64, edge []Hash) error {
	fsys = durable.Or(fsys)
	f, err := FrontierOf(size, edge)
	if err != nil {
		return err
	}
	if size == 0 {
		return fmt.Errorf("merkle: a tree's base must hold at least one leaf: %w", ErrOutOfRange)
	}
	if _, err := fsys.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("merkle: couldn't create %s from an edge: it exists (%v)", path, err)
	}
	if err := durable.WriteFileFS(fsys, basePath(path), encodeBase(f), 0o644); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := createFile(fsys, tmp); err != nil {
		return err
	}
	tf, err := fsys.OpenFile(tmp, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = tf.Truncate(fileOffset(storedHashCount(size))) // a hole: nothing stored below the base
	if err == nil {
		err = tf.Sync()
	}
	if cerr := tf.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fsys.Rename(tmp, path)
	}
	if err == nil {
		err = durable.SyncDirFS(fsys, dirOf(path))
	}
	return err
}

func dirOf(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if os.IsPathSeparator(path[i]) {
			return path[:i+1]
		}
	}
	return "."
}

// Base returns the number of leaves below the tree's base (0 for a tree
// holding every leaf).
func (t *Tree) Base() uint64 {
	if t.base == nil {
		return 0
	}
	return t.base.size
}

// pruned reports a query about leaf i (or, leafless, a tree of n leaves)
// that the tree's base cannot answer.
func (t *Tree) pruned(n, i uint64) error {
	if b := t.Base(); n < b || i < b {
		return fmt.Errorf("leaf %d or size %d below %d: %w", i, n, b, ErrPruned)
	}
	return nil
}

// Replace makes the open tree, stored at path on fsys, the tree of size
// leaves that CreateFromEdge makes from edge: its file and base are
// removed and created again, and every leaf it held is gone. A node that
// installs a snapshot it received drops its own tree this way. Readers see
// the old tree until Replace returns and the new one after. A crash
// meanwhile leaves path missing, or the new tree: the caller rebuilds it.
func (t *Tree) Replace(fsys durable.FS, path string, size uint64, edge []Hash) error {
	fsys = durable.Or(fsys)
	if _, err := FrontierOf(size, edge); err != nil || size == 0 {
		return fmt.Errorf("merkle: couldn't replace the tree: an edge of %d leaves: %v", size, err)
	}
	t.syncMu.Lock()
	defer t.syncMu.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.readOnly {
		return ErrReadOnly
	}
	if t.f == nil {
		return ErrClosed
	}
	t.f.Close()
	t.f, t.pending, t.edge, t.failed = nil, nil, Frontier{}, nil
	t.cache.reset()
	t.edges.dropAbove(0)
	err := fsys.Remove(path)
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		err = fsys.Remove(basePath(path))
	}
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		err = CreateFromEdge(fsys, path, size, edge)
	}
	var f durable.File
	if err == nil {
		f, err = openFile(fsys, path)
	}
	if err == nil {
		t.f = f
		t.base, err = readBase(fsys, path)
	}
	if err == nil {
		err = t.load()
	}
	if err != nil {
		if t.f != nil {
			t.failed = err
		}
		return fmt.Errorf("merkle: couldn't replace the tree at %s: %w", path, err)
	}
	return nil
}
