//go:build unix

package dirlock_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ledgerd/ledgerd/internal/dirlock"
)

// Deleting ledgerd.lock while a node holds the directory must not let a
// second node lock it (issue 9 item 5).
func TestDeletedLockFileStillExcludes(t *testing.T) {
	dir := t.TempDir()
	release, err := dirlock.Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if err := os.Remove(filepath.Join(dir, dirlock.FileName)); err != nil {
		t.Fatal(err)
	}
	if r2, err := dirlock.Lock(dir); !errors.Is(err, dirlock.ErrLocked) {
		if err == nil {
			r2()
		}
		t.Fatalf("second Lock after deleting the lock file: %v, want ErrLocked", err)
	}
}

func TestSharedAndExclusive(t *testing.T) {
	dir := t.TempDir()
	s1, err := dirlock.LockShared(dir)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := dirlock.LockShared(dir)
	if err != nil {
		t.Fatalf("two auditors: %v", err)
	}
	if _, err := dirlock.Lock(dir); !errors.Is(err, dirlock.ErrLocked) {
		t.Fatalf("Lock while audited: %v, want ErrLocked", err)
	}
	s1()
	s2()
	release, err := dirlock.Lock(dir)
	if err != nil {
		t.Fatalf("Lock after the auditors left: %v", err)
	}
	if _, err := dirlock.LockShared(dir); !errors.Is(err, dirlock.ErrLocked) {
		t.Fatalf("LockShared while a node holds it: %v, want ErrLocked", err)
	}
	release()
	if r, err := dirlock.Lock(dir); err != nil {
		t.Fatalf("Lock after release: %v", err)
	} else {
		r()
	}
}
