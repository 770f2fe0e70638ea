package ledger

import (
	"errors"
	"fmt"
	"os"
)

// Truncate drops every entry after last: Raft's rollback of an uncommitted
// suffix. It is durable on return. It refuses to drop committed entries.
//
// Order (each step durable before the next, so that a crash leaves a state
// that Open recovers): pending entries are synced; whole chunks after last
// are deleted newest first; the chunk holding last is cut after it. A
// completed chunk is reopened for that: renamed back to ledger_<start>
// (a crash here: Open sees a valid table and completes it again), cut to
// the end of entry last and fsynced (a crash here: Open sees a header
// without a table and walks the entries), then its header is zeroed.
//
// Readers do not wait for those fsyncs. Under the readers' lock, and
// before any file changes, the entries after last leave the in-memory
// view (last, the chunk lists, the cache; a completed chunk that is cut
// becomes the open chunk, read through a descriptor opened then): from
// that moment a Read of a seqno after last is ErrNotFound, and a Read
// that began earlier has finished (it held the lock). The files are then
// changed, and fsynced, outside the readers' lock: what a reader can still
// reach is entries up to last, whose bytes none of the steps touches (a
// file is cut only after them; a header write is not within an entry; a
// file deleted or renamed is reached by no reader any more, or through a
// descriptor that a rename does not affect). So a concurrent Read never
// returns a truncated entry's bytes once Truncate has begun dropping it,
// and never waits for its disk.
func (l *Ledger) Truncate(last uint64) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if err := l.usable(); err != nil {
		return err
	}
	switch {
	case last >= l.last:
		return nil
	case last < l.committed:
		return fmt.Errorf("%w: couldn't truncate after %d, %d is committed", ErrCommitted, last, l.committed)
	case last+1 < l.first:
		return fmt.Errorf("ledger: couldn't truncate after %d: the ledger starts at %d", last, l.first)
	}
	if err := l.syncLocked(); err != nil {
		return err
	}
	steps, err := l.dropFromView(last)
	if err != nil {
		return l.fail(err)
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return l.fail(err)
		}
	}
	return nil
}

// dropFromView removes the synced entries after last from what readers
// see, under the readers' lock, and returns the file changes that make it
// so on disk, in order (see Truncate). It changes no file.
func (l *Ledger) dropFromView(last uint64) (steps []func() error, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.openTail(); c != nil {
		if c.start <= last {
			k := int(last - c.start + 1)
			size := int64(c.offsets[k])
			c.offsets, c.size, c.written = c.offsets[:k], size, size
			l.truncated(last)
			return []func() error{func() error { return l.shrinkFile(c.f, size, false) }}, nil
		}
		l.tail = nil
		steps = append(steps, func() error {
			c.f.Close()
			return l.remove(openName(c.start))
		})
	}
	for len(l.chunks) > 0 && l.chunks[len(l.chunks)-1].start > last {
		m := l.chunks[len(l.chunks)-1]
		l.cache.remove(m.start)
		l.chunks = l.chunks[:len(l.chunks)-1]
		steps = append(steps, func() error { return l.remove(m.name()) })
	}
	if n := len(l.chunks); n > 0 && l.chunks[n-1].end > last {
		reopen, err := l.reopen(l.chunks[n-1], last)
		if err != nil {
			return nil, err
		}
		l.chunks = l.chunks[:n-1]
		steps = append(steps, reopen)
	}
	l.truncated(last)
	return steps, nil
}

// truncated records the new end of the ledger.
func (l *Ledger) truncated(last uint64) {
	l.log.Info("ledger truncated", "last", last, "dropped", l.last-last)
	l.last = last
	l.views.truncate(last)
}

// remove deletes a chunk file durably.
func (l *Ledger) remove(name string) error {
	if err := l.fs.Remove(l.path(name)); err != nil {
		return fmt.Errorf("ledger: couldn't remove %s: %w", name, err)
	}
	return l.syncDir()
}

// reopen turns the completed chunk m back into the open chunk, holding the
// entries up to last: at once for readers (the open chunk, read through a
// descriptor opened here), and on disk by the step it returns (see
// Truncate for the order of its parts).
func (l *Ledger) reopen(m chunkMeta, last uint64) (func() error, error) {
	l.cache.remove(m.start)
	f, err := l.fs.OpenFile(l.path(m.name()), os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("ledger: couldn't open %s: %w", m.name(), err)
	}
	b := make([]byte, m.count()*positionSize)
	if _, err := f.ReadAt(b, m.tableOff); err != nil {
		f.Close()
		return nil, fmt.Errorf("ledger: couldn't read the positions table of %s: %w", m.name(), err)
	}
	pos, i, reason := decodeTable(b, m.tableOff)
	if reason != "" {
		f.Close()
		return nil, &CorruptionError{File: m.name(), Seqno: m.start + uint64(i), Offset: m.tableOff + int64(i)*positionSize, Reason: reason}
	}
	k := last - m.start + 1
	size := int64(pos[k])
	l.tail = []*tailChunk{{start: m.start, f: f, offsets: pos[:k:k], size: size, written: size}}
	return func() error {
		if err := l.rename(m.name(), openName(m.start)); err != nil {
			return err
		}
		if err := l.syncDir(); err != nil {
			return err
		}
		return l.shrinkFile(f, size, true)
	}, nil
}

// Commit records that every entry up to seqno is committed, and renames each
// completed chunk whose end is at most seqno to ledger_<start>-<end>.committed
// (ccf-format.md §1.1), then fsyncs the directory. A chunk completed later
// by Sync gets its committed name directly. Committing backwards is a no-op.
func (l *Ledger) Commit(seqno uint64) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if err := l.usable(); err != nil {
		return err
	}
	if seqno <= l.committed {
		return nil
	}
	if seqno > l.last {
		return fmt.Errorf("ledger: couldn't commit %d: the last entry is %d", seqno, l.last)
	}
	renamed, err := l.commitLocked(seqno)
	if renamed {
		err = errors.Join(err, l.syncDir())
	}
	return err
}

// commitLocked renames the chunks that seqno commits, under mu so that no
// reader opens a file by its old name.
func (l *Ledger) commitLocked(seqno uint64) (renamed bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.committed = seqno
	for i := range l.chunks {
		m := &l.chunks[i]
		if m.committed || m.end > seqno {
			continue
		}
		to := completeName(m.start, m.end, true)
		if err := l.rename(m.name(), to); err != nil {
			return renamed, err
		}
		m.committed, renamed = true, true
	}
	return renamed, nil
}
