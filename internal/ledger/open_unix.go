//go:build unix

package ledger

import (
	"os"
	"syscall"
)

// openReadOnly opens a chunk file for preads. It skips what os.Open does for
// files that could be pollable (registering with the netpoller, setting
// O_NONBLOCK), which a regular file never is: that was a third of the cost
// of a read that missed the chunk cache.
func openReadOnly(path string) (*os.File, error) {
	for {
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return os.NewFile(uintptr(fd), path), nil
	}
}
