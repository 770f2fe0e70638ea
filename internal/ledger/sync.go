package ledger

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// Sync makes every appended entry durable, as a group commit: for each chunk
// file touched, one write(2) of all its new bytes (with the positions table
// when the chunk ends), one fsync, and, when a file was created or a
// completed chunk renamed to ledger_<start>-<end>, one fsync of the directory.
// Completing a chunk that already had bytes on disk adds one 8-byte write of
// its header (ccf-format.md §1.2: table first, header second, then flush).
func (l *Ledger) Sync() error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if err := l.usable(); err != nil {
		return err
	}
	return l.syncLocked()
}

// flushed is the outcome of flushChunk, published under mu.
type flushed struct {
	c    *tailChunk
	meta chunkMeta // when c.complete
}

// syncLocked writes the tail (the durability protocol, in order):
//  1. each chunk in seqno order: write its bytes, fsync, and rename it if it
//     ended. A chunk is fully durable before the next file is created, so
//     after a crash only the last file can hold a torn tail, and an earlier
//     file still named ledger_<start> has a complete table (recover.go
//     finishes its rename).
//  2. fsync the directory if a file was created or renamed.
//  3. publish the new state to readers.
//
// A shortage of space or descriptors (IsResourceExhausted) stops it where it
// is, without marking the Ledger failed: what was flushed is published, and
// the next call starts again from each chunk's last durable byte, writing
// from memory everything after it before it fsyncs (so an fsync that failed
// never counts: its pages are written again). A chunk file created or
// renamed before the failure stays, and the directory is fsynced later.
func (l *Ledger) syncLocked() error {
	var done []flushed
	var err error
	for _, c := range l.tail {
		if !c.complete && c.written == c.size {
			continue
		}
		r, ferr := l.flushChunk(c)
		if ferr != nil {
			err = ferr
			break
		}
		done = append(done, r)
	}
	if err == nil && l.dirDirty {
		err = l.syncDir()
	}
	l.publish(done)
	if err != nil {
		if IsResourceExhausted(err) {
			return err
		}
		return l.fail(err)
	}
	l.prepareSpare()
	return nil
}

// flushChunk writes the unwritten bytes of c (and its positions table if it
// is complete), fsyncs it, and renames it if complete. It runs without mu:
// readers only read c.pending[8:len] and bytes before c.written, which it
// does not change.
func (l *Ledger) flushChunk(c *tailChunk) (r flushed, err error) {
	r = flushed{c: c}
	if c.f == nil {
		f, err := l.createChunkFile(c.start)
		if err != nil {
			return r, err
		}
		l.mu.Lock()
		c.f = f
		l.mu.Unlock()
	}
	buf := c.pending
	if c.complete {
		buf = appendTable(buf, c.offsets)
		if c.written == 0 {
			binary.LittleEndian.PutUint64(buf, uint64(c.size)) // the file header
		}
	}
	l.stats.writes.Add(1)
	if _, err := c.f.WriteAt(buf, c.written); err != nil {
		return r, fmt.Errorf("ledger: couldn't write chunk %s: %w", c.f.Name(), err)
	}
	if c.complete && c.written > 0 {
		if err := l.writeHeader(c.f, c.size); err != nil {
			return r, fmt.Errorf("ledger: couldn't write the header of %s: %w", c.f.Name(), err)
		}
	}
	if err := l.syncFile(c.f); err != nil {
		return r, fmt.Errorf("ledger: couldn't fsync %s: %w", c.f.Name(), err)
	}
	if c.complete {
		r.meta = chunkMeta{start: c.start, end: c.end(), committed: c.end() <= l.committed, tableOff: c.size}
		if err := l.rename(openName(c.start), r.meta.name()); err != nil {
			return r, err
		}
		l.log.Debug("ledger chunk completed", "file", r.meta.name(), "entries", len(c.offsets), "bytes", r.meta.fileSize())
	}
	return r, nil
}

// publish applies the outcome of flushChunk calls to the in-memory state.
func (l *Ledger) publish(done []flushed) {
	l.mu.Lock()
	defer l.mu.Unlock()
	completed := 0
	for _, r := range done {
		c := r.c
		if !c.complete {
			c.written, c.pending = c.size, c.pending[:0]
			if cap(c.pending) > maxSpareBuffer {
				c.pending = nil
			}
			continue
		}
		l.chunks = append(l.chunks, r.meta)
		l.cache.add(c.start, c.f, appendTable(make([]byte, 0, len(c.offsets)*positionSize), c.offsets))
		if cap(c.pending) <= maxSpareBuffer {
			l.spare = c.pending[:0]
		}
		completed++
	}
	l.tail = slices.Delete(l.tail, 0, completed)
}
