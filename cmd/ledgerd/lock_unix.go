//go:build unix

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockFile is the data directory's lock, held while ledgerd runs.
const lockFile = "ledgerd.lock"

// lockDataDir takes an exclusive lock on the data directory, so that two
// processes never open the same node, and returns its release.
func lockDataDir(dir string) (func(), error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("couldn't open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("couldn't lock the data directory %s (is another ledgerd using it?): %w", dir, err)
	}
	return func() { f.Close() }, nil
}
