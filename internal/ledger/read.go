package ledger

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
)

// Read returns the raw bytes of the entry at seqno, durable or not. The
// caller owns the returned slice. Entries of completed chunks are found with
// their positions table (loaded lazily, LRU-cached); those of the open chunk
// with an in-memory offset list.
func (l *Ledger) Read(seqno uint64) ([]byte, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if err := l.check(seqno); err != nil {
		return nil, err
	}
	if c := l.tailFor(seqno); c != nil {
		return l.readTail(c, seqno)
	}
	return l.readCompleted(l.chunkFor(seqno), seqno)
}

// View returns the view (Raft term) of the entry at seqno, from the
// in-memory view history.
func (l *Ledger) View(seqno uint64) (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if err := l.check(seqno); err != nil {
		return 0, err
	}
	return l.views.at(seqno), nil
}

// check returns an error unless seqno can be read.
func (l *Ledger) check(seqno uint64) error {
	if l.closed {
		return ErrClosed
	}
	if seqno < l.first || seqno > l.last {
		return fmt.Errorf("%w: %d is outside [%d, %d]", ErrNotFound, seqno, l.first, l.last)
	}
	return nil
}

// tailFor returns the tail chunk holding seqno, if any.
func (l *Ledger) tailFor(seqno uint64) *tailChunk {
	for _, c := range l.tail {
		if seqno >= c.start && seqno <= c.end() {
			return c
		}
	}
	return nil
}

// chunkFor returns the completed chunk holding seqno, which must be one.
func (l *Ledger) chunkFor(seqno uint64) *chunkMeta {
	i := sort.Search(len(l.chunks), func(i int) bool { return l.chunks[i].end >= seqno })
	return &l.chunks[i]
}

// fileOf names the file holding seqno, for errors.
func (l *Ledger) fileOf(seqno uint64) string {
	if c := l.tailFor(seqno); c != nil {
		return openName(c.start)
	}
	if seqno >= l.first && seqno <= l.last {
		return l.chunkFor(seqno).name()
	}
	return ""
}

// readTail reads an entry of a tail chunk, from memory or the file.
func (l *Ledger) readTail(c *tailChunk, seqno uint64) ([]byte, error) {
	i := int(seqno - c.start)
	off, end := int64(c.offsets[i]), c.entryEnd(i)
	if off >= c.written {
		return bytes.Clone(c.pending[off-c.written : end-c.written]), nil
	}
	raw, err := readEntry(c.f, seqno, off, end)
	if err != nil {
		return nil, named(err, openName(c.start), seqno)
	}
	return raw, nil
}

// readCompleted reads an entry of a completed chunk through the cache: its
// extent from the positions table if the cache holds it (or the read is
// sequential, which loads it), else from the two positions read with one
// pread.
func (l *Ledger) readCompleted(m *chunkMeta, seqno uint64) ([]byte, error) {
	a, err := l.cache.acquire(m, l.dir, seqno)
	if err != nil {
		return nil, fmt.Errorf("ledger: couldn't open %s: %w", m.name(), err)
	}
	defer l.cache.release(a.cc)
	table := a.table
	if table == nil && a.sequential {
		if table, err = l.loadTable(a.cc, m); err != nil {
			return nil, err
		}
	}
	var off, end int64
	if table != nil {
		off, end, err = extent(table, m, seqno, 0)
	} else {
		off, end, err = l.readExtent(a.cc, m, seqno)
	}
	if err != nil {
		return nil, err
	}
	raw, err := readEntry(a.cc.f, seqno, off, end)
	if err != nil {
		return nil, named(err, m.name(), seqno)
	}
	return raw, nil
}

// loadTable reads the raw positions table of a cached chunk and offers it
// to the cache. It is kept raw: each Read checks the two positions it uses.
func (l *Ledger) loadTable(cc *cachedChunk, m *chunkMeta) ([]byte, error) {
	b := make([]byte, m.count()*positionSize)
	if _, err := cc.f.ReadAt(b, m.tableOff); err != nil {
		return nil, fmt.Errorf("ledger: couldn't read the positions table of %s: %w", m.name(), err)
	}
	l.cache.setTable(cc, b)
	return b, nil
}

// readExtent reads the positions of seqno and of the next entry (if any) from
// a completed chunk's table with one pread, and returns the entry's extent.
func (l *Ledger) readExtent(cc *cachedChunk, m *chunkMeta, seqno uint64) (off, end int64, err error) {
	var b [2 * positionSize]byte
	i := seqno - m.start
	n := positionSize
	if i+1 < m.count() {
		n = 2 * positionSize
	}
	if _, err := cc.f.ReadAt(b[:n], m.tableOff+int64(i)*positionSize); err != nil {
		return 0, 0, fmt.Errorf("ledger: couldn't read the position of seqno %d in %s: %w", seqno, m.name(), err)
	}
	return extent(b[:n], m, seqno, i)
}

// extent returns the file offsets [off, end) of the entry at seqno in a
// completed chunk, from the part of its positions table (§1.2) that starts
// with position base.
func extent(table []byte, m *chunkMeta, seqno, base uint64) (off, end int64, err error) {
	i := seqno - m.start
	j := i - base
	off, end = int64(binary.LittleEndian.Uint32(table[j*positionSize:])), m.tableOff
	if i+1 < m.count() {
		end = int64(binary.LittleEndian.Uint32(table[(j+1)*positionSize:]))
	}
	if off < chunkHeaderSize || end-off < minEntrySize || end > m.tableOff {
		return 0, 0, &CorruptionError{File: m.name(), Seqno: seqno, Offset: m.tableOff + int64(i)*positionSize,
			Reason: fmt.Sprintf("positions table puts the entry at [%d, %d), the table at %d", off, end, m.tableOff)}
	}
	return off, end, nil
}

// readEntry reads the entry at [off, end) of a chunk file and checks that it
// is the entry at seqno. Its errors leave the file to name (see named).
func readEntry(f io.ReaderAt, seqno uint64, off, end int64) ([]byte, error) {
	if end-off > MaxEntrySize || end-off < minEntrySize {
		return nil, &CorruptionError{Seqno: seqno, Offset: off, Reason: fmt.Sprintf("entry of %d bytes", end-off)}
	}
	raw := make([]byte, end-off)
	if _, err := f.ReadAt(raw, off); err != nil {
		return nil, err
	}
	if err := checkEntryAt(raw, seqno, off); err != nil {
		return nil, err
	}
	return raw, nil
}

// checkEntryAt checks that raw, read from off, is a whole entry whose
// framing agrees with its length and whose seqno is seqno.
func checkEntryAt(raw []byte, seqno uint64, off int64) *CorruptionError {
	s, _, err := EntrySeqnoView(raw)
	switch {
	case err != nil:
		return &CorruptionError{Seqno: seqno, Offset: off, Reason: "bad entry", Err: err}
	case headerSize(raw) != uint64(len(raw)-EntryHeaderSize):
		return &CorruptionError{Seqno: seqno, Offset: off,
			Reason: fmt.Sprintf("entry header size %d disagrees with the positions (%d)", headerSize(raw), len(raw)-EntryHeaderSize)}
	case s != seqno:
		return &CorruptionError{Seqno: seqno, Offset: off, Reason: fmt.Sprintf("entry has seqno %d", s)}
	}
	return nil
}

// named completes an error of readEntry with the name of the file read,
// computed only then.
func named(err error, name string, seqno uint64) error {
	var ce *CorruptionError
	switch {
	case errors.As(err, &ce):
		ce.File = name
		return ce
	}
	return fmt.Errorf("ledger: couldn't read seqno %d from %s: %w", seqno, name, err)
}

// probeView reads the view of the entry at seqno from its IV, for
// rebuildViews. In a completed chunk it reads the entry's position from the
// table on disk.
func (l *Ledger) probeView(seqno uint64) (uint64, error) {
	var iv [GCMIVSize]byte
	if c := l.tailFor(seqno); c != nil {
		i := int(seqno - c.start)
		off := int64(c.offsets[i])
		if off >= c.written {
			copy(iv[:], c.pending[off-c.written+ivOffset:])
		} else if _, err := c.f.ReadAt(iv[:], off+ivOffset); err != nil {
			return 0, fmt.Errorf("ledger: couldn't read seqno %d from %s: %w", seqno, openName(c.start), err)
		}
		return l.checkIV(iv, openName(c.start), seqno, off)
	}
	m := l.chunkFor(seqno)
	a, err := l.cache.acquire(m, l.dir, seqno)
	if err != nil {
		return 0, fmt.Errorf("ledger: couldn't open %s: %w", m.name(), err)
	}
	defer l.cache.release(a.cc)
	cc := a.cc
	off, err := l.position(cc, m, seqno)
	if err != nil {
		return 0, err
	}
	if _, err := cc.f.ReadAt(iv[:], off+ivOffset); err != nil {
		return 0, fmt.Errorf("ledger: couldn't read seqno %d from %s: %w", seqno, m.name(), err)
	}
	return l.checkIV(iv, m.name(), seqno, off)
}

// position returns the file offset of seqno in a completed chunk.
func (l *Ledger) position(cc *cachedChunk, m *chunkMeta, seqno uint64) (int64, error) {
	i := seqno - m.start
	if i == 0 {
		return chunkHeaderSize, nil
	}
	var b [positionSize]byte
	at := m.tableOff + int64(i)*positionSize
	if _, err := cc.f.ReadAt(b[:], at); err != nil {
		return 0, fmt.Errorf("ledger: couldn't read the position of seqno %d in %s: %w", seqno, m.name(), err)
	}
	off := int64(binary.LittleEndian.Uint32(b[:]))
	if off < chunkHeaderSize || off+minEntrySize > m.tableOff {
		return 0, &CorruptionError{File: m.name(), Seqno: seqno, Offset: at,
			Reason: fmt.Sprintf("position %d is outside the entries", off)}
	}
	return off, nil
}

// checkIV checks that an IV read at off is that of seqno, and returns its view.
func (l *Ledger) checkIV(iv [GCMIVSize]byte, name string, seqno uint64, off int64) (uint64, error) {
	if s := binary.LittleEndian.Uint64(iv[:]); s != seqno {
		return 0, &CorruptionError{File: name, Seqno: seqno, Offset: off, Reason: fmt.Sprintf("entry has seqno %d", s)}
	}
	return uint64(binary.LittleEndian.Uint32(iv[8:]) & viewMask), nil
}

// rangeBlock is the most bytes Range reads with one pread (at least one
// entry).
const rangeBlock = 1 << 20

// Range calls fn for every entry from seqno from to seqno to, in order, as
// Read would return them, stopping at the first error. Entries of completed
// chunks are read with one pread per MiB (the chunk's positions table read
// once) rather than one or two per entry, for replays at start-up; fn may
// keep raw. An error of fn is returned as is.
//
// Range is meant for replays at start-up, before the writer runs: it does not
// hold the ledger's lock while it reads a completed chunk, so entries that a
// concurrent Truncate removes may still be passed to fn.
func (l *Ledger) Range(from, to uint64, fn func(seqno uint64, raw []byte) error) error {
	for s := from; s <= to; {
		l.mu.RLock()
		err := l.check(s)
		var m chunkMeta
		completed := err == nil && l.tailFor(s) == nil
		if completed {
			m = *l.chunkFor(s)
		}
		l.mu.RUnlock()
		switch {
		case err != nil:
			return err
		case !completed:
			raws, err := l.readTailBlock(s, to)
			if err != nil {
				return err
			}
			for _, raw := range raws {
				if err := fn(s, raw); err != nil {
					return err
				}
				s++
			}
			continue
		}
		next, err := l.rangeCompleted(&m, s, min(to, m.end), fn)
		if err != nil {
			return err
		}
		s = next
	}
	return nil
}

// rangeCompleted is Range over [from, to] of the completed chunk m. It
// returns the seqno after the last entry read.
func (l *Ledger) rangeCompleted(m *chunkMeta, from, to uint64, fn func(uint64, []byte) error) (uint64, error) {
	a, err := l.cache.acquire(m, l.dir, from)
	if err != nil {
		return from, fmt.Errorf("ledger: couldn't open %s: %w", m.name(), err)
	}
	defer l.cache.release(a.cc)
	table := a.table
	if table == nil {
		if table, err = l.loadTable(a.cc, m); err != nil {
			return from, err
		}
	}
	for s := from; s <= to; {
		off, end, err := extent(table, m, s, 0)
		if err != nil {
			return s, err
		}
		// The block: entries s..last, as many as fit in rangeBlock.
		last, blockEnd := s, end
		for last < to {
			_, e, err := extent(table, m, last+1, 0)
			if err != nil || e-off > rangeBlock {
				break
			}
			last, blockEnd = last+1, e
		}
		buf := make([]byte, blockEnd-off)
		if _, err := a.cc.f.ReadAt(buf, off); err != nil {
			return s, fmt.Errorf("ledger: couldn't read seqnos %d-%d from %s: %w", s, last, m.name(), err)
		}
		for ; s <= last; s++ {
			o, e, _ := extent(table, m, s, 0)
			if e-o > MaxEntrySize {
				return s, &CorruptionError{File: m.name(), Seqno: s, Offset: o, Reason: fmt.Sprintf("entry of %d bytes", e-o)}
			}
			raw := buf[o-off : e-off : e-off]
			if err := checkEntryAt(raw, s, o); err != nil {
				err.File = m.name()
				return s, err
			}
			if err := fn(s, raw); err != nil {
				return s, err
			}
		}
	}
	return to + 1, nil
}

// readTailBlock reads entries of a tail chunk from seqno from on, at most to:
// those already written to the file with one pread of at most rangeBlock
// bytes, else the next entry alone, as Read does.
func (l *Ledger) readTailBlock(from, to uint64) ([][]byte, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if err := l.check(from); err != nil {
		return nil, err
	}
	c := l.tailFor(from)
	if c == nil { // completed since Range looked
		raw, err := l.readCompleted(l.chunkFor(from), from)
		return [][]byte{raw}, err
	}
	i := int(from - c.start)
	off := int64(c.offsets[i])
	last := i
	for last+1 < len(c.offsets) && c.start+uint64(last+1) <= to &&
		c.entryEnd(last+1) <= c.written && c.entryEnd(last+1)-off <= rangeBlock {
		last++
	}
	if c.entryEnd(last) > c.written || last == i {
		raw, err := l.readTail(c, from)
		return [][]byte{raw}, err
	}
	buf := make([]byte, c.entryEnd(last)-off)
	if _, err := c.f.ReadAt(buf, off); err != nil {
		return nil, fmt.Errorf("ledger: couldn't read seqnos %d-%d from %s: %w", from, c.start+uint64(last), openName(c.start), err)
	}
	raws := make([][]byte, 0, last-i+1)
	for j := i; j <= last; j++ {
		o, e := int64(c.offsets[j]), c.entryEnd(j)
		seqno := c.start + uint64(j)
		if e-o > MaxEntrySize || e-o < minEntrySize {
			return nil, &CorruptionError{File: openName(c.start), Seqno: seqno, Offset: o, Reason: fmt.Sprintf("entry of %d bytes", e-o)}
		}
		raw := buf[o-off : e-off : e-off]
		if err := checkEntryAt(raw, seqno, o); err != nil {
			err.File = openName(c.start)
			return nil, err
		}
		raws = append(raws, raw)
	}
	return raws, nil
}
