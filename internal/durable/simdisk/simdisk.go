// Package simdisk is a simulated disk for crash tests: a durable.FS in
// memory that keeps, for every file, the contents written and the contents
// last fsynced, and for every directory the entries as seen and as last
// made durable by fsyncing the directory. PowerCut returns the disk as it
// would be found after a power failure at that moment: only what was
// fsynced. (A SIGKILL, unlike a power cut, leaves the page cache to be
// written out: a test that kills a process cannot see a missing fsync.)
//
// The model is POSIX's worst case, on purpose: a file's data survives only
// up to its last fsync; a file's creation, rename or removal survives only
// once its directory has been fsynced (unless Options.DurableDirs). Nothing
// written after the last fsync survives, not even partly: recovery from
// torn tails is the SIGKILL tests' concern.
package simdisk

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ledgerd/ledgerd/internal/durable"
)

// ErrPowerCut is what every operation on a disk, or on a file of a disk,
// returns after its PowerCut.
var ErrPowerCut = errors.New("simdisk: the power is off")

// Options configure a Disk.
type Options struct {
	// DurableDirs makes creations, renames and removals durable at once,
	// as if every directory were fsynced after each; file contents still
	// need their fsync.
	DurableDirs bool
}

// Disk is a simulated disk. It is safe for concurrent use.
type Disk struct {
	mu      sync.Mutex
	opts    Options
	off     bool
	dirs    map[string]bool   // directories (durable when made)
	entries map[string]*inode // path -> file, as seen
	durable map[string]*inode // path -> file, as a power cut finds it
	syncs   int               // file fsyncs, for tests that count them
	ops     int               // changing operations, for CutAtOp
	cutAt   int               // CutAtOp's operation number, 0: none
	cutc    chan *Disk        // CutAtOp's survivor
}

// inode is one file: its contents as written, and as last fsynced.
type inode struct {
	data   []byte
	synced []byte
	mode   fs.FileMode
}

// New returns an empty disk with just the root directory.
func New(opts Options) *Disk {
	return &Disk{opts: opts, dirs: map[string]bool{"/": true}, entries: map[string]*inode{}, durable: map[string]*inode{}}
}

var _ durable.FS = (*Disk)(nil)

// PowerCut turns d off (every later operation on it or its open files
// fails with ErrPowerCut) and returns a new disk holding what survives:
// each durable directory entry, with its file's fsynced contents.
func (d *Disk) PowerCut() *Disk {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.powerCutLocked()
}

// Ops is the number of changing operations so far: creations, writes,
// truncations, fsyncs (of files and directories), renames and removals.
func (d *Disk) Ops() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ops
}

// CutAtOp arranges a power cut when the changing operation numbered n
// (counting from 1, as Ops does) is called, before it takes effect: that
// operation and every later one fail with ErrPowerCut. The disk that
// survives is sent on the returned channel. It cuts the program under test
// between any two of its writes, fsyncs, renames.
func (d *Disk) CutAtOp(n int) <-chan *Disk {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cutAt, d.cutc = n, make(chan *Disk, 1)
	return d.cutc
}

// changeLocked counts a changing operation and reports whether the power
// is off (cut now, or before).
func (d *Disk) changeLocked() bool {
	if d.off {
		return true
	}
	d.ops++
	if d.ops == d.cutAt {
		d.cutc <- d.powerCutLocked()
		return true
	}
	return false
}

// Survivor returns the disk a power cut would leave now, as PowerCut
// does, but leaves d on: for a test that stops the program using d (which
// must not then be heard from) and restarts it on what survived, without
// the program failing on a disk that went away under it.
func (d *Disk) Survivor() *Disk {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.survivorLocked()
}

func (d *Disk) powerCutLocked() *Disk {
	d.off = true
	return d.survivorLocked()
}

func (d *Disk) survivorLocked() *Disk {
	nd := New(d.opts)
	for dir := range d.dirs {
		nd.dirs[dir] = true
	}
	for p, ino := range d.durable {
		c := &inode{data: slices.Clone(ino.synced), synced: slices.Clone(ino.synced), mode: ino.mode}
		nd.entries[p], nd.durable[p] = c, c
	}
	return nd
}

// Syncs is the number of file fsyncs so far (directories not counted).
func (d *Disk) Syncs() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.syncs
}

func clean(name string) string { return filepath.Clean("/" + name) }

func pathErr(op, name string, err error) error { return &fs.PathError{Op: op, Path: name, Err: err} }

// dirOf is the directory of a cleaned path.
func dirOf(p string) string { return filepath.Dir(p) }

// OpenFile opens a file (os.O_CREATE, O_EXCL, O_TRUNC honoured) or a
// directory (read-only).
func (d *Disk) OpenFile(name string, flag int, perm fs.FileMode) (durable.File, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.off {
		return nil, pathErr("open", name, ErrPowerCut)
	}
	p := clean(name)
	if _, ok := d.entries[p]; (!ok || flag&os.O_TRUNC != 0) && flag&os.O_CREATE != 0 && d.changeLocked() {
		return nil, pathErr("open", name, ErrPowerCut)
	}
	if d.dirs[p] {
		if flag&(os.O_WRONLY|os.O_RDWR) != 0 {
			return nil, pathErr("open", name, errors.New("is a directory"))
		}
		return &file{d: d, name: name, path: p, dir: true}, nil
	}
	ino, ok := d.entries[p]
	switch {
	case ok && flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0:
		return nil, pathErr("open", name, fs.ErrExist)
	case !ok && flag&os.O_CREATE == 0:
		return nil, pathErr("open", name, fs.ErrNotExist)
	case !ok:
		if !d.dirs[dirOf(p)] {
			return nil, pathErr("open", name, fs.ErrNotExist)
		}
		ino = &inode{mode: perm}
		d.entries[p] = ino
		if d.opts.DurableDirs {
			d.durable[p] = ino
		}
	}
	if flag&os.O_TRUNC != 0 {
		ino.data = nil
	}
	return &file{d: d, name: name, path: p, ino: ino, readOnly: flag&(os.O_WRONLY|os.O_RDWR) == 0}, nil
}

// Rename renames a file, replacing newpath.
func (d *Disk) Rename(oldpath, newpath string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.changeLocked() {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: ErrPowerCut}
	}
	o, n := clean(oldpath), clean(newpath)
	ino, ok := d.entries[o]
	if !ok || !d.dirs[dirOf(n)] || d.dirs[n] {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: fs.ErrNotExist}
	}
	delete(d.entries, o)
	d.entries[n] = ino
	if d.opts.DurableDirs {
		delete(d.durable, o)
		d.durable[n] = ino
	}
	return nil
}

// Remove removes a file or an empty directory.
func (d *Disk) Remove(name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.changeLocked() {
		return pathErr("remove", name, ErrPowerCut)
	}
	p := clean(name)
	if d.dirs[p] {
		for q := range d.entries {
			if dirOf(q) == p {
				return pathErr("remove", name, errors.New("directory not empty"))
			}
		}
		delete(d.dirs, p)
		return nil
	}
	if _, ok := d.entries[p]; !ok {
		return pathErr("remove", name, fs.ErrNotExist)
	}
	delete(d.entries, p)
	if d.opts.DurableDirs {
		delete(d.durable, p)
	}
	return nil
}

// Stat describes a file or a directory.
func (d *Disk) Stat(name string) (fs.FileInfo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.off {
		return nil, pathErr("stat", name, ErrPowerCut)
	}
	p := clean(name)
	if d.dirs[p] {
		return info{name: filepath.Base(p), dir: true}, nil
	}
	if ino, ok := d.entries[p]; ok {
		return info{name: filepath.Base(p), size: int64(len(ino.data)), mode: ino.mode}, nil
	}
	return nil, pathErr("stat", name, fs.ErrNotExist)
}

// ReadDir lists a directory, sorted by name.
func (d *Disk) ReadDir(name string) ([]fs.DirEntry, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.off {
		return nil, pathErr("readdir", name, ErrPowerCut)
	}
	p := clean(name)
	if !d.dirs[p] {
		return nil, pathErr("readdir", name, fs.ErrNotExist)
	}
	var out []fs.DirEntry
	for q := range d.dirs {
		if q != p && dirOf(q) == p {
			out = append(out, fs.FileInfoToDirEntry(info{name: filepath.Base(q), dir: true}))
		}
	}
	for q, ino := range d.entries {
		if dirOf(q) == p {
			out = append(out, fs.FileInfoToDirEntry(info{name: filepath.Base(q), size: int64(len(ino.data)), mode: ino.mode}))
		}
	}
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}

// MkdirAll makes a directory and its parents; directories are durable at
// once.
func (d *Disk) MkdirAll(name string, perm fs.FileMode) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.off {
		return pathErr("mkdir", name, ErrPowerCut)
	}
	for p := clean(name); !d.dirs[p]; p = dirOf(p) {
		if _, ok := d.entries[p]; ok {
			return pathErr("mkdir", name, errors.New("not a directory"))
		}
		d.dirs[p] = true
	}
	return nil
}

// syncDir makes the entries of directory p durable as they are seen.
func (d *Disk) syncDir(p string) {
	for q := range d.durable {
		if dirOf(q) == p {
			delete(d.durable, q)
		}
	}
	for q, ino := range d.entries {
		if dirOf(q) == p {
			d.durable[q] = ino
		}
	}
}

// file is an open file or directory.
type file struct {
	d        *Disk
	name     string
	path     string
	ino      *inode // nil for a directory
	dir      bool
	readOnly bool
	closed   bool
}

// check returns the error of an operation on f now, with d.mu held.
func (f *file) check(op string) error {
	switch {
	case f.d.off:
		return pathErr(op, f.name, ErrPowerCut)
	case f.closed:
		return pathErr(op, f.name, fs.ErrClosed)
	case f.dir && op != "sync" && op != "stat" && op != "close":
		return pathErr(op, f.name, errors.New("is a directory"))
	}
	return nil
}

func (f *file) Name() string { return f.name }

func (f *file) ReadAt(b []byte, off int64) (int, error) {
	f.d.mu.Lock()
	defer f.d.mu.Unlock()
	if err := f.check("read"); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, pathErr("read", f.name, errors.New("negative offset"))
	}
	if off >= int64(len(f.ino.data)) {
		return 0, io.EOF
	}
	n := copy(b, f.ino.data[off:])
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

func (f *file) WriteAt(b []byte, off int64) (int, error) {
	f.d.mu.Lock()
	defer f.d.mu.Unlock()
	if err := f.check("write"); err != nil {
		return 0, err
	}
	if f.d.changeLocked() {
		return 0, pathErr("write", f.name, ErrPowerCut)
	}
	if f.readOnly || off < 0 {
		return 0, pathErr("write", f.name, errors.New("bad file descriptor or offset"))
	}
	if end := off + int64(len(b)); end > int64(len(f.ino.data)) {
		f.ino.data = append(f.ino.data, make([]byte, end-int64(len(f.ino.data)))...)
	}
	copy(f.ino.data[off:], b)
	return len(b), nil
}

func (f *file) Truncate(size int64) error {
	f.d.mu.Lock()
	defer f.d.mu.Unlock()
	if err := f.check("truncate"); err != nil {
		return err
	}
	if f.d.changeLocked() {
		return pathErr("truncate", f.name, ErrPowerCut)
	}
	if f.readOnly || size < 0 {
		return pathErr("truncate", f.name, errors.New("bad file descriptor or size"))
	}
	if size <= int64(len(f.ino.data)) {
		f.ino.data = f.ino.data[:size:size]
	} else {
		f.ino.data = append(f.ino.data, make([]byte, size-int64(len(f.ino.data)))...)
	}
	return nil
}

func (f *file) Sync() error {
	f.d.mu.Lock()
	defer f.d.mu.Unlock()
	if err := f.check("sync"); err != nil {
		return err
	}
	if f.d.changeLocked() {
		return pathErr("sync", f.name, ErrPowerCut)
	}
	if f.dir {
		f.d.syncDir(f.path)
		return nil
	}
	f.ino.synced = slices.Clone(f.ino.data)
	f.d.syncs++
	return nil
}

func (f *file) Stat() (fs.FileInfo, error) {
	f.d.mu.Lock()
	defer f.d.mu.Unlock()
	if err := f.check("stat"); err != nil {
		return nil, err
	}
	if f.dir {
		return info{name: filepath.Base(f.path), dir: true}, nil
	}
	return info{name: filepath.Base(f.path), size: int64(len(f.ino.data)), mode: f.ino.mode}, nil
}

func (f *file) Close() error {
	f.d.mu.Lock()
	defer f.d.mu.Unlock()
	if f.closed {
		return pathErr("close", f.name, fs.ErrClosed)
	}
	f.closed = true
	if f.d.off {
		return pathErr("close", f.name, ErrPowerCut)
	}
	return nil
}

// info is a FileInfo.
type info struct {
	name string
	size int64
	mode fs.FileMode
	dir  bool
}

func (i info) Name() string { return i.name }
func (i info) Size() int64  { return i.size }
func (i info) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o755
	}
	return i.mode
}
func (i info) ModTime() time.Time { return time.Time{} }
func (i info) IsDir() bool        { return i.dir }
func (i info) Sys() any           { return nil }
