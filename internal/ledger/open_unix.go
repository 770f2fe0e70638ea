//go:build unix

package ledger

import (
	"io"
	"os"
	"syscall"
)

// openReadOnly opens a chunk file for preads, as a bare descriptor: an
// *os.File would also set O_NONBLOCK and try the netpoller, which a regular
// file never uses, and lock the descriptor around each pread. The chunk
// cache's reference counts already keep a descriptor open while it is read.
func openReadOnly(path string) (chunkFile, error) {
	for {
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return &fdFile{fd: fd, name: path}, nil
	}
}

// fdFile is a read-only regular file read with pread(2).
type fdFile struct {
	fd   int
	name string
}

// ReadAt reads len(b) bytes at off, as os.File.ReadAt does.
func (f *fdFile) ReadAt(b []byte, off int64) (int, error) {
	n := 0
	for n < len(b) {
		m, err := syscall.Pread(f.fd, b[n:], off+int64(n))
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return n, &os.PathError{Op: "read", Path: f.name, Err: err}
		case m == 0:
			return n, io.EOF
		}
		n += m
	}
	return n, nil
}

// Close closes the descriptor.
func (f *fdFile) Close() error { return syscall.Close(f.fd) }
