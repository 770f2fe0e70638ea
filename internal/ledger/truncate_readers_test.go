package ledger

import (
	"bytes"
	"errors"
	"io/fs"
	"sync"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/durable"
)

// steppedFS holds every fsync of its files while armed, one at a time:
// each announces itself on waiting and proceeds when told.
type steppedFS struct {
	durable.FS
	mu      sync.Mutex
	armed   bool
	waiting chan string
	proceed chan struct{}
	free    chan struct{} // closed at the test's end: nothing is held any more
}

func (s *steppedFS) arm(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.armed = on
}

func (s *steppedFS) OpenFile(name string, flag int, perm fs.FileMode) (durable.File, error) {
	f, err := s.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return steppedFile{f, s}, nil
}

type steppedFile struct {
	durable.File
	s *steppedFS
}

func (f steppedFile) Sync() error {
	f.s.mu.Lock()
	armed := f.s.armed
	f.s.mu.Unlock()
	if armed {
		select {
		case f.s.waiting <- f.Name():
			select {
			case <-f.s.proceed:
			case <-f.s.free:
			}
		case <-f.s.free:
		}
	}
	return f.File.Sync()
}

// TestTruncateReadersDoNotWaitForItsFsyncs: while a Truncate waits for
// each of its fsyncs (the test holds them one at a time), Reads of the
// entries it keeps return at once with their bytes, in the cut open chunk,
// in a completed chunk and in a completed chunk being reopened, and Reads
// of the entries it drops are ErrNotFound: never a dropped entry's bytes.
// Before, Truncate held the readers' lock across its fsyncs, and every Read
// waited for the disk (this test then times out on the first Read).
func TestTruncateReadersDoNotWaitForItsFsyncs(t *testing.T) {
	dir := t.TempDir()
	sfs := &steppedFS{FS: durable.OS, waiting: make(chan string), proceed: make(chan struct{}), free: make(chan struct{})}
	l, err := Open(dir, Options{Logger: testLogger(t), FS: sfs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		close(sfs.free) // a failed test leaves a Truncate waiting
		l.Close()
	})
	entries := makeEntries(t, 1, chunkedPlan(14, 5, 1)) // 1-5, 6-10, open 11-14
	if err := l.Append(entries...); err != nil {
		t.Fatal(err)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(3); err != nil {
		t.Fatal(err)
	}

	// read reads seqno on another goroutine; a Read that waits for the
	// held fsync fails the test instead of hanging it.
	read := func(seqno uint64) ([]byte, error) {
		t.Helper()
		type result struct {
			raw []byte
			err error
		}
		res := make(chan result, 1)
		go func() {
			raw, err := l.Read(seqno)
			res <- result{raw, err}
		}()
		select {
		case r := <-res:
			return r.raw, r.err
		case <-time.After(5 * time.Second):
			t.Fatalf("Read(%d) waits for the truncation's fsync", seqno)
			return nil, nil
		}
	}
	truncate := func(last uint64, keep []uint64) {
		t.Helper()
		sfs.arm(true)
		done := make(chan error, 1)
		go func() { done <- l.Truncate(last) }()
		fsyncs := 0
		for {
			select {
			case name := <-sfs.waiting:
				fsyncs++
				for _, s := range keep {
					if raw, err := read(s); err != nil || !bytes.Equal(raw, entries[s-1]) {
						t.Fatalf("Truncate(%d) at its fsync of %s: Read(%d) = %v, want the entry", last, name, s, err)
					}
				}
				for s := last + 1; s <= uint64(len(entries)); s++ {
					if raw, err := read(s); !errors.Is(err, ErrNotFound) {
						t.Fatalf("Truncate(%d) at its fsync of %s: Read(%d) = %d bytes, %v; want ErrNotFound", last, name, s, len(raw), err)
					}
				}
				sfs.proceed <- struct{}{}
			case err := <-done:
				sfs.arm(false)
				if err != nil {
					t.Fatalf("Truncate(%d): %v", last, err)
				}
				if fsyncs == 0 {
					t.Fatalf("Truncate(%d) made no fsync: nothing was checked", last)
				}
				return
			}
		}
	}

	// Inside the open chunk: it is cut.
	truncate(12, []uint64{1, 7, 11, 12})
	entries = entries[:12]
	checkContents(t, l, 1, entries)
	// Across a completed, uncommitted chunk: the open chunk is deleted,
	// ledger_6-10 reopened (renamed, cut, its header zeroed).
	truncate(7, []uint64{3, 6, 7})
	entries = entries[:7]
	checkContents(t, l, 1, entries)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if l, err = Open(dir, Options{Logger: testLogger(t), FS: sfs}); err != nil {
		t.Fatal(err)
	}
	checkContents(t, l, 1, entries)
}
