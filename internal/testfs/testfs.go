// Package testfs gives tests a small file system of their own, to run a
// disk full for real: a tmpfs of a given size, and a file that fills it.
//
// Mounting needs root (CI runs the tests as root). A test that cannot mount
// fails with a message saying so rather than skipping: a skipped disk-full
// test proves nothing.
package testfs

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// Tmpfs mounts a tmpfs of size bytes on a new directory and unmounts it when
// the test ends. It fails the test if it cannot mount.
func Tmpfs(tb testing.TB, size int64) string {
	tb.Helper()
	dir := tb.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		tb.Fatalf("couldn't mount a %d-byte tmpfs on %s (the disk-full tests need root, as in CI): %v\n%s", size, dir, err, out)
	}
	tb.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			tb.Errorf("umount %s: %v\n%s", dir, err, out)
		}
	})
	return dir
}

// Fill writes a file in dir until the file system is full, and returns a
// function that removes it. It fails the test on any other error.
func Fill(tb testing.TB, dir string) (free func()) {
	tb.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				tb.Fatalf("filling %s: %v", dir, err)
			}
			break
		}
	}
	return func() {
		tb.Helper()
		if err := os.Remove(path); err != nil {
			tb.Fatalf("freeing %s: %v", dir, err)
		}
	}
}

// ExhaustDescriptors lowers the process's descriptor limit to 256 and opens
// files until none is left, so that the next open fails with EMFILE; release
// closes them (the limit stays lowered for the rest of the test process).
func ExhaustDescriptors(tb testing.TB) (release func()) {
	tb.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		tb.Fatal(err)
	}
	lim.Cur = 256
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		tb.Fatal(err)
	}
	var files []*os.File
	for {
		f, err := os.Open(os.DevNull)
		if err != nil {
			if !errors.Is(err, syscall.EMFILE) {
				tb.Fatal(err)
			}
			break
		}
		files = append(files, f)
	}
	return func() {
		for _, f := range files {
			f.Close()
		}
	}
}
