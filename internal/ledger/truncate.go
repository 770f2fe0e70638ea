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
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.truncateLocked(last); err != nil {
		l.failed = err
		return err
	}
	return nil
}

// truncateLocked drops the entries after last from the synced files.
func (l *Ledger) truncateLocked(last uint64) error {
	if c := l.openTail(); c != nil {
		if c.start <= last {
			k := int(last - c.start + 1)
			if err := l.shrinkFile(c.f, int64(c.offsets[k]), false); err != nil {
				return err
			}
			c.offsets, c.size, c.written = c.offsets[:k], int64(c.offsets[k]), int64(c.offsets[k])
			return l.truncated(last)
		}
		c.f.Close()
		l.tail = nil
		if err := l.remove(openName(c.start)); err != nil {
			return err
		}
	}
	for len(l.chunks) > 0 && l.chunks[len(l.chunks)-1].start > last {
		m := l.chunks[len(l.chunks)-1]
		l.cache.remove(m.start)
		l.chunks = l.chunks[:len(l.chunks)-1]
		if err := l.remove(m.name()); err != nil {
			return err
		}
	}
	if n := len(l.chunks); n > 0 && l.chunks[n-1].end > last {
		if err := l.reopen(l.chunks[n-1], last); err != nil {
			return err
		}
		l.chunks = l.chunks[:n-1]
	}
	return l.truncated(last)
}

// truncated records the new end of the ledger.
func (l *Ledger) truncated(last uint64) error {
	l.log.Info("ledger truncated", "last", last, "dropped", l.last-last)
	l.last = last
	l.views.truncate(last)
	return nil
}

// remove deletes a chunk file durably.
func (l *Ledger) remove(name string) error {
	if err := l.fs.Remove(l.path(name)); err != nil {
		return fmt.Errorf("ledger: couldn't remove %s: %w", name, err)
	}
	return l.syncDir()
}

// reopen turns the completed chunk m back into the open chunk, holding the
// entries up to last (see Truncate for the order of the steps).
func (l *Ledger) reopen(m chunkMeta, last uint64) error {
	l.cache.remove(m.start)
	f, err := l.fs.OpenFile(l.path(m.name()), os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("ledger: couldn't open %s: %w", m.name(), err)
	}
	b := make([]byte, m.count()*positionSize)
	if _, err := f.ReadAt(b, m.tableOff); err != nil {
		f.Close()
		return fmt.Errorf("ledger: couldn't read the positions table of %s: %w", m.name(), err)
	}
	pos, i, reason := decodeTable(b, m.tableOff)
	if reason != "" {
		f.Close()
		return &CorruptionError{File: m.name(), Seqno: m.start + uint64(i), Offset: m.tableOff + int64(i)*positionSize, Reason: reason}
	}
	k := last - m.start + 1
	size := int64(pos[k])
	if err := l.rename(m.name(), openName(m.start)); err != nil {
		f.Close()
		return err
	}
	if err := l.syncDir(); err != nil {
		f.Close()
		return err
	}
	if err := l.shrinkFile(f, size, true); err != nil {
		f.Close()
		return err
	}
	l.tail = []*tailChunk{{start: m.start, f: f, offsets: pos[:k:k], size: size, written: size}}
	return nil
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
