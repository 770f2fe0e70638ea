package ledger

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

// scanner reads the entries of a chunk file sequentially with large buffered
// reads (§1.2: entries back to back from byte 8, each an 8-byte header and the
// size it announces). Recovery and Walk share it.
type scanner struct {
	r     *bufio.Reader
	off   int64 // file offset of the next entry
	limit int64 // end of the entry region: EOF, or the positions table
	buf   []byte
}

// scanBufferSize is the read size of scanners.
const scanBufferSize = 1 << 20

func newScanner(f io.ReaderAt, from, limit int64) *scanner {
	n := min(scanBufferSize, max(limit-from, 16))
	return &scanner{
		r:     bufio.NewReaderSize(io.NewSectionReader(f, from, limit-from), int(n)),
		off:   from,
		limit: limit,
	}
}

// scanError says why the scanner could not read an entry at an offset. A torn
// entry is one cut short by the end of the region: fewer than 8 bytes left,
// or a version-1 header announcing more bytes than are left. It is what a
// crash in the middle of an append leaves behind (§1.2).
type scanError struct {
	torn   bool
	reason string
	err    error // I/O or format error, if any
}

func (e *scanError) Error() string {
	if e.err != nil {
		return e.reason + ": " + e.err.Error()
	}
	return e.reason
}

func (e *scanError) Unwrap() error { return e.err }

// next reads the entry at s.off and checks its framing (inspectEntry). It
// returns io.EOF at the end of the region, a *scanError otherwise. raw is
// valid until the next call.
func (s *scanner) next() (raw []byte, info entryInfo, err error) {
	left := s.limit - s.off
	if left == 0 {
		return nil, entryInfo{}, io.EOF
	}
	if left < EntryHeaderSize {
		return nil, entryInfo{}, &scanError{torn: true, reason: fmt.Sprintf("%d bytes left, less than an entry header", left)}
	}
	var hdr [EntryHeaderSize]byte
	if _, err := io.ReadFull(s.r, hdr[:]); err != nil {
		return nil, entryInfo{}, &scanError{reason: "couldn't read entry header", err: err}
	}
	size := headerSize(hdr[:])
	switch {
	case hdr[0] == EntryFormatV1 && size > uint64(left-EntryHeaderSize):
		return nil, entryInfo{}, &scanError{torn: true,
			reason: fmt.Sprintf("entry header announces %d bytes, %d left", size, left-EntryHeaderSize)}
	case hdr[0] != EntryFormatV1:
		return nil, entryInfo{}, &scanError{reason: fmt.Sprintf("entry format version %d, want %d", hdr[0], EntryFormatV1)}
	case size+EntryHeaderSize > MaxEntrySize:
		return nil, entryInfo{}, &scanError{reason: fmt.Sprintf("entry of %d bytes exceeds MaxEntrySize", size+EntryHeaderSize)}
	}
	n := int(size) + EntryHeaderSize
	if cap(s.buf) < n {
		s.buf = make([]byte, n, max(n, 2*cap(s.buf)))
	}
	raw = s.buf[:n]
	copy(raw, hdr[:])
	if _, err := io.ReadFull(s.r, raw[EntryHeaderSize:]); err != nil {
		return nil, entryInfo{}, &scanError{reason: "couldn't read entry", err: err}
	}
	if info, err = inspectEntry(raw); err != nil {
		return nil, entryInfo{}, &scanError{reason: "entry does not parse", err: err}
	}
	s.off += int64(n)
	return raw, info, nil
}

// disposableTail reports whether the bytes of f in [off, limit), where a scan
// stopped, are what an interrupted write leaves rather than a damaged entry:
// zeros (a file extended but not written), or a prefix of the positions table
// of the entries before off (a chunk completion whose header was not yet
// written). positions are the offsets of those entries.
func disposableTail(f io.ReaderAt, off, limit int64, positions []uint32) (string, bool, error) {
	n := limit - off
	if n <= int64(len(positions))*positionSize {
		b := make([]byte, n)
		if _, err := f.ReadAt(b, off); err != nil {
			return "", false, err
		}
		if bytes.Equal(b, appendTable(nil, positions)[:n]) {
			return "part of an unfinished positions table", true, nil
		}
	}
	zero, err := allZero(f, off, limit)
	if err != nil || !zero {
		return "", false, err
	}
	return "zero bytes", true, nil
}

// allZero reports whether f holds only zero bytes in [off, limit).
func allZero(f io.ReaderAt, off, limit int64) (bool, error) {
	buf := make([]byte, min(limit-off, 64<<10))
	for off < limit {
		b := buf[:min(int64(len(buf)), limit-off)]
		if _, err := f.ReadAt(b, off); err != nil {
			return false, err
		}
		if len(bytes.TrimLeft(b, "\x00")) != 0 {
			return false, nil
		}
		off += int64(len(b))
	}
	return true, nil
}

// peekSeqno returns the seqno in the IV of the entry header at s.off, if the
// bytes there start like an entry.
func (s *scanner) peekSeqno() (uint64, bool) {
	if s.limit-s.off < ivOffset+8 {
		return 0, false
	}
	b, err := s.r.Peek(ivOffset + 8)
	if err != nil || b[0] != EntryFormatV1 {
		return 0, false
	}
	return binary.LittleEndian.Uint64(b[ivOffset:]), true
}
