//go:build unix

package dirlock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Lock takes the exclusive lock of the data directory dir for a node, and
// returns its release. It fails with an error wrapping ErrLocked if another
// process holds the lock, exclusively or shared.
func Lock(dir string) (func(), error) {
	d, err := flockDir(dir, syscall.LOCK_EX)
	if err != nil {
		return nil, err
	}
	f, err := lockFile(dir)
	if err != nil {
		d.Close()
		return nil, err
	}
	return func() { f.Close(); d.Close() }, nil
}

// LockShared takes the lock of dir in shared mode, as an auditor does: any
// number of auditors may hold it, a node may not start meanwhile, and it
// fails with an error wrapping ErrLocked while a node holds dir.
func LockShared(dir string) (func(), error) {
	d, err := flockDir(dir, syscall.LOCK_SH)
	if err != nil {
		return nil, err
	}
	return func() { d.Close() }, nil
}

func flockDir(dir string, how int) (*os.File, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("couldn't open the data directory to lock it: %w", err)
	}
	if err := syscall.Flock(int(d.Fd()), how|syscall.LOCK_NB); err != nil {
		d.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s (is another ledgerd using it?)", ErrLocked, dir)
		}
		return nil, fmt.Errorf("couldn't lock the data directory %s: %w", dir, err)
	}
	return d, nil
}

// lockFile locks dir/ledgerd.lock exclusively and checks, after locking,
// that the path still names the locked file (a lock on a deleted file
// protects nothing).
func lockFile(dir string) (*os.File, error) {
	path := filepath.Join(dir, FileName)
	for range 3 {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return nil, fmt.Errorf("couldn't open lock file: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, fmt.Errorf("%w: %s (is another ledgerd using it?)", ErrLocked, path)
			}
			return nil, fmt.Errorf("couldn't lock %s: %w", path, err)
		}
		held, err1 := f.Stat()
		named, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(held, named) {
			return f, nil
		}
		f.Close()
	}
	return nil, fmt.Errorf("couldn't lock %s: it keeps being replaced", path)
}
