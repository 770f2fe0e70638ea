//go:build unix

package main

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockImport takes an exclusive lock on path+".lock", so that two imports
// never share a state file. It returns the function that releases it.
func lockImport(path string) (func(), error) {
	lockPath := path + ".lock"
	for range 3 {
		f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("couldn't lock the import state: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, fmt.Errorf("another ledgerctl import is using %s (lock %s)", path, lockPath)
			}
			return nil, fmt.Errorf("couldn't lock the import state: %w", err)
		}
		// The holder before us may have removed the file as it released
		// it: then ours is a lock on nothing, and we start over.
		held, err1 := f.Stat()
		named, err2 := os.Stat(lockPath)
		if err1 == nil && err2 == nil && os.SameFile(held, named) {
			return func() { os.Remove(lockPath); f.Close() }, nil
		}
		f.Close()
	}
	return nil, fmt.Errorf("couldn't lock the import state: %s keeps changing", lockPath)
}
