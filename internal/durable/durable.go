// Package durable writes files that survive crashes whole: after a crash a
// file written with WriteFile is either its previous version (or absent) or
// complete, never torn. The syscall sequence: a temporary file in the same
// directory, created 0600 and given the final mode before any byte is
// written; write; fsync; close; rename over the path; fsync the directory,
// so that the rename itself is durable.
package durable

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFile writes data to path atomically and durably, with mode.
func WriteFile(path string, data []byte, mode fs.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("couldn't create a temporary file for %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("couldn't set the mode of %s: %w", f.Name(), err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("couldn't write %s: %w", f.Name(), err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("couldn't sync %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("couldn't close %s: %w", f.Name(), err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("couldn't rename %s to %s: %w", f.Name(), path, err)
	}
	return SyncDir(dir)
}

// SyncDir makes the creations, renames and removals in dir durable. A
// platform that cannot sync directories (os.ErrInvalid) is not an error.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("couldn't open directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("couldn't sync directory %s: %w", dir, err)
	}
	return nil
}
