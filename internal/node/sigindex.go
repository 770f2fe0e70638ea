package node

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"

	"github.com/ledgerd/ledgerd/internal/durable"
)

// sigIndex is the sorted list of the seqnos of signature transactions, kept
// in a file of little-endian uint64s so that "the first signature after s"
// (the one a receipt for s uses) costs O(log n) reads whatever the ledger's
// length. It is derived data: recovery rebuilds its tail from the ledger.
// The most recent records are cached in memory.
type sigIndex struct {
	mu         sync.RWMutex
	f          durable.File
	flushed    uint64   // records written to the file
	recent     []uint64 // records [recentBase, count)
	recentBase uint64
}

const sigCacheRecords = 1 << 16

func openSigIndex(fsys durable.FS, path string) (*sigIndex, error) {
	f, err := fsys.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("couldn't open signature index: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	n := uint64(st.Size()) / 8
	if err := f.Truncate(int64(n * 8)); err != nil { // drop a torn record
		f.Close()
		return nil, err
	}
	s := &sigIndex{f: f, flushed: n, recentBase: n}
	base := n - min(n, sigCacheRecords)
	buf := make([]byte, (n-base)*8)
	if _, err := f.ReadAt(buf, int64(base*8)); err != nil && err != io.EOF {
		f.Close()
		return nil, err
	}
	s.recentBase = base
	for i := 0; i < len(buf); i += 8 {
		s.recent = append(s.recent, binary.LittleEndian.Uint64(buf[i:]))
	}
	return s, nil
}

func (s *sigIndex) count() uint64 { return s.recentBase + uint64(len(s.recent)) }

// Count is the number of signatures recorded.
func (s *sigIndex) Count() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.count()
}

// Append records a signature at seqno, which must exceed the last one.
func (s *sigIndex) Append(seqno uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.count(); c > 0 {
		if last, err := s.at(c - 1); err != nil || last >= seqno {
			return fmt.Errorf("signature index: %d does not follow the last signature (%d, %v)", seqno, last, err)
		}
	}
	s.recent = append(s.recent, seqno)
	if len(s.recent) > 2*sigCacheRecords && s.flushed >= s.recentBase+sigCacheRecords {
		s.recent = append(s.recent[:0], s.recent[sigCacheRecords:]...)
		s.recentBase += sigCacheRecords
	}
	return nil
}

// Flush writes appended records to the file (without fsync).
func (s *sigIndex) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.count()
	if s.flushed >= c {
		return nil
	}
	buf := make([]byte, 0, (c-s.flushed)*8)
	for i := s.flushed; i < c; i++ {
		buf = binary.LittleEndian.AppendUint64(buf, s.recent[i-s.recentBase])
	}
	if _, err := s.f.WriteAt(buf, int64(s.flushed*8)); err != nil {
		return fmt.Errorf("couldn't write signature index: %w", err)
	}
	s.flushed = c
	return nil
}

// Sync flushes and fsyncs.
func (s *sigIndex) Sync() error {
	if err := s.Flush(); err != nil {
		return err
	}
	return s.f.Sync()
}

// Close closes the file after flushing.
func (s *sigIndex) Close() error {
	return joinErr(s.Sync(), s.f.Close())
}

func joinErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// at returns record i; the caller holds mu.
func (s *sigIndex) at(i uint64) (uint64, error) {
	if i >= s.recentBase {
		return s.recent[i-s.recentBase], nil
	}
	var b [8]byte
	if _, err := s.f.ReadAt(b[:], int64(i*8)); err != nil {
		return 0, fmt.Errorf("couldn't read signature index: %w", err)
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}

// search returns the first record index whose seqno is > seqno.
func (s *sigIndex) search(seqno uint64) (uint64, error) {
	c := s.count()
	var ferr error
	i := sort.Search(int(c), func(i int) bool {
		v, err := s.at(uint64(i))
		if err != nil {
			ferr = err
			return true
		}
		return v > seqno
	})
	return uint64(i), ferr
}

// LastAtOrBefore returns the last signature seqno <= seqno, or 0.
func (s *sigIndex) LastAtOrBefore(seqno uint64) uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if c := s.count(); c > 0 && s.recent != nil && len(s.recent) > 0 && s.recent[len(s.recent)-1] <= seqno {
		return s.recent[len(s.recent)-1]
	}
	i, err := s.search(seqno)
	if err != nil || i == 0 {
		return 0
	}
	v, _ := s.at(i - 1)
	return v
}

// FirstAfter returns the first signature seqno > seqno.
func (s *sigIndex) FirstAfter(seqno uint64) (uint64, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	i, err := s.search(seqno)
	if err != nil || i >= s.count() {
		return 0, false, err
	}
	v, err := s.at(i)
	return v, err == nil, err
}

// Last returns the last signature seqno, or 0.
func (s *sigIndex) Last() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c := s.count()
	if c == 0 {
		return 0
	}
	v, _ := s.at(c - 1)
	return v
}

// Reset drops every record, durably, to rebuild the index from the ledger.
func (s *sigIndex) Reset() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recent, s.recentBase, s.flushed = s.recent[:0], 0, 0
	if err := s.f.Truncate(0); err != nil {
		return err
	}
	return s.f.Sync()
}

// TruncateAfter drops every signature after seqno.
func (s *sigIndex) TruncateAfter(seqno uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, err := s.search(seqno)
	if err != nil {
		return err
	}
	if i >= s.count() {
		return nil
	}
	if i < s.recentBase {
		// Reload the cache window from the file below i.
		base := i - min(i, sigCacheRecords)
		buf := make([]byte, (i-base)*8)
		if _, err := s.f.ReadAt(buf, int64(base*8)); err != nil && err != io.EOF {
			return err
		}
		s.recent = s.recent[:0]
		for j := 0; j < len(buf); j += 8 {
			s.recent = append(s.recent, binary.LittleEndian.Uint64(buf[j:]))
		}
		s.recentBase = base
	} else {
		s.recent = s.recent[:i-s.recentBase]
	}
	if s.flushed > i {
		s.flushed = i
		if err := s.f.Truncate(int64(i * 8)); err != nil {
			return err
		}
	}
	return nil
}
