package durable

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// FS is the file system the node's durable files live on: the ledger's
// chunk files, the Merkle tree file, the signature index, the Raft hard
// state and the checkpoint. OS, the default, is the operating system's;
// tests substitute a simulated disk (package simdisk) that loses, at a
// simulated power cut, everything that was not fsynced. The interface is
// exactly what those files need.
type FS interface {
	// OpenFile is os.OpenFile. A directory opened read-only is a File
	// whose Sync makes the directory's creations, renames and removals
	// durable.
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	Rename(oldpath, newpath string) error
	Remove(name string) error
	Stat(name string) (fs.FileInfo, error)
	ReadDir(name string) ([]fs.DirEntry, error)
	MkdirAll(path string, perm fs.FileMode) error
}

// File is an open file of an FS: the methods of *os.File the durable files
// use.
type File interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
	Stat() (fs.FileInfo, error)
	Truncate(size int64) error
	// Sync makes the file's contents durable (fsync); on a directory, its
	// entries.
	Sync() error
	Name() string
}

// OS is the operating system's file system: every call is the os
// package's, and a File is an *os.File.
var OS FS = osFS{}

// Or returns fsys, or OS if fsys is nil.
func Or(fsys FS) FS {
	if fsys == nil {
		return OS
	}
	return fsys
}

type osFS struct{}

func (osFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err // not a typed nil in an interface
	}
	return f, nil
}

func (osFS) Rename(oldpath, newpath string) error         { return os.Rename(oldpath, newpath) }
func (osFS) Remove(name string) error                     { return os.Remove(name) }
func (osFS) Stat(name string) (fs.FileInfo, error)        { return os.Stat(name) }
func (osFS) ReadDir(name string) ([]fs.DirEntry, error)   { return os.ReadDir(name) }
func (osFS) MkdirAll(path string, perm fs.FileMode) error { return os.MkdirAll(path, perm) }

// Open opens name read-only on fsys.
func Open(fsys FS, name string) (File, error) { return fsys.OpenFile(name, os.O_RDONLY, 0) }

// ReadFile reads the whole of name on fsys.
func ReadFile(fsys FS, name string) ([]byte, error) {
	if fsys == OS {
		return os.ReadFile(name)
	}
	f, err := Open(fsys, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	b := make([]byte, st.Size())
	n, err := f.ReadAt(b, 0)
	if err == io.EOF && n == len(b) {
		err = nil
	}
	return b[:n], err
}

// WriteFileFS is WriteFile on fsys.
func WriteFileFS(fsys FS, path string, data []byte, mode fs.FileMode) (err error) {
	if fsys == OS {
		return WriteFile(path, data, mode)
	}
	dir := filepath.Dir(path)
	var r [8]byte
	rand.Read(r[:])
	tmp := filepath.Join(dir, "."+filepath.Base(path)+".tmp-"+hex.EncodeToString(r[:]))
	f, err := fsys.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("couldn't create a temporary file for %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			fsys.Remove(tmp)
		}
	}()
	if _, err := f.WriteAt(data, 0); err != nil {
		return fmt.Errorf("couldn't write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("couldn't sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("couldn't close %s: %w", tmp, err)
	}
	if err := fsys.Rename(tmp, path); err != nil {
		return fmt.Errorf("couldn't rename %s to %s: %w", tmp, path, err)
	}
	return SyncDirFS(fsys, dir)
}

// SyncDirFS is SyncDir on fsys.
func SyncDirFS(fsys FS, dir string) error {
	d, err := Open(fsys, dir)
	if err != nil {
		return fmt.Errorf("couldn't open directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("couldn't sync directory %s: %w", dir, err)
	}
	return nil
}
