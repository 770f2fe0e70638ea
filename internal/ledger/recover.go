package ledger

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/ledgerd/ledgerd/internal/durable"
)

// Open opens the ledger in dir, creating the directory if it does not exist,
// and recovers it (ccf-format.md §1.1–1.2).
//
// It lists the ledger_* files (names that do not parse, such as *.ignored,
// *.recovery or temporary files, are ignored), sorts them by start seqno and
// requires them to be contiguous. A completed chunk is checked without reading
// its entries: its header offset must leave exactly end-start+1 positions
// before EOF. The last file, if still open (ledger_<start>), is walked from
// byte 8: a torn trailing entry is cut away with a warning; a malformed entry
// before it is a *CorruptionError, and nothing is cut. The crash windows of
// Sync and Truncate are repaired (see recoverOpen). Finally the view history
// is rebuilt by binary search over the entries' IVs.
func Open(dir string, opts Options) (*Ledger, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := opts.FS.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("ledger: couldn't create directory %s: %w", dir, err)
	}
	l := &Ledger{dir: dir, fs: opts.FS, log: opts.Logger, cache: newChunkCache(opts.CacheChunks), first: 1, preopen: opts.PreopenChunks}
	l.cache.fs = opts.FS
	if l.dirf, err = durable.Open(l.fs, dir); err != nil {
		return nil, fmt.Errorf("ledger: couldn't open directory %s: %w", dir, err)
	}
	if err := l.recover(); err != nil {
		l.closeFiles()
		return nil, err
	}
	if err := l.fs.Remove(l.path(SpareChunkFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		l.log.Warn("ledger: couldn't remove a stale spare chunk file", "err", err)
	}
	l.prepareSpare()
	l.log.Debug("ledger opened", "dir", dir, "first", l.first, "last", l.last,
		"committed", l.committed, "chunks", len(l.chunks)+len(l.tail), "views", len(l.views))
	return l, nil
}

// closeFiles closes every file of a Ledger that failed to open.
func (l *Ledger) closeFiles() {
	for _, c := range l.tail {
		c.f.Close()
	}
	l.dirf.Close()
	l.cache.close()
}

// listChunks returns the chunk files of dir sorted by start seqno, and the
// names of the other files that start with "ledger_".
func listChunks(fsys durable.FS, dir string) (files []fileName, ignored []string, err error) {
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("ledger: couldn't list %s: %w", dir, err)
	}
	for _, e := range entries {
		fn, ok := parseFileName(e.Name())
		switch {
		case ok && e.Type().IsRegular():
			files = append(files, fn)
		case strings.HasPrefix(e.Name(), filePrefix):
			ignored = append(ignored, e.Name())
		}
	}
	slices.SortFunc(files, func(a, b fileName) int {
		if a.start != b.start {
			return cmpUint(a.start, b.start)
		}
		return strings.Compare(a.name, b.name)
	})
	return files, ignored, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// checkContiguous checks that fn starts right after the chunk ending at
// prevEnd in file prev.
func checkContiguous(prev string, prevEnd uint64, fn fileName) error {
	switch {
	case fn.start == prevEnd+1:
		return nil
	case fn.start > prevEnd+1:
		return &CorruptionError{File: fn.name, Seqno: prevEnd + 1, Offset: -1,
			Reason: fmt.Sprintf("seqnos %d to %d are missing between %s and %s", prevEnd+1, fn.start-1, prev, fn.name)}
	}
	return &CorruptionError{File: fn.name, Seqno: fn.start, Offset: -1,
		Reason: fmt.Sprintf("overlaps %s, which ends at seqno %d", prev, prevEnd)}
}

// recover rebuilds the in-memory state from the files of the directory.
func (l *Ledger) recover() error {
	files, ignored, err := listChunks(l.fs, l.dir)
	if err != nil {
		return err
	}
	for _, name := range ignored {
		l.log.Warn("ledger: ignoring file that is not a chunk", "file", name)
	}
	prev, prevEnd := "", uint64(0)
	for i, fn := range files {
		if i == 0 {
			l.first = fn.start
		} else if err := checkContiguous(prev, prevEnd, fn); err != nil {
			return err
		}
		if err := l.recoverFile(fn, i == len(files)-1); err != nil {
			return err
		}
		prev, prevEnd = fn.name, l.first-1
		if n := len(l.chunks); n > 0 {
			prev, prevEnd = l.chunks[n-1].name(), l.chunks[n-1].end
		}
	}
	l.last = l.first - 1
	if n := len(l.chunks); n > 0 {
		l.last = l.chunks[n-1].end
	}
	if c := l.openTail(); c != nil {
		l.last = c.end()
	}
	for _, m := range l.chunks {
		if m.committed {
			l.committed = max(l.committed, m.end)
		}
	}
	return l.rebuildViews()
}

// recoverFile adds one chunk file to the state: a completed chunk to chunks,
// an open one (the last file only) to tail.
func (l *Ledger) recoverFile(fn fileName, isLast bool) error {
	if fn.complete {
		m, err := l.checkCompleted(fn)
		if err != nil {
			return err
		}
		l.chunks = append(l.chunks, m)
		return nil
	}
	c, m, err := l.recoverOpen(fn, isLast)
	switch {
	case err != nil:
		return err
	case m != nil:
		l.chunks = append(l.chunks, *m)
	case c != nil:
		l.tail = append(l.tail, c)
	}
	return nil
}

// checkCompleted checks a completed chunk's header and table size against its
// name without reading its entries (§1.2).
func (l *Ledger) checkCompleted(fn fileName) (chunkMeta, error) {
	m := chunkMeta{start: fn.start, end: fn.end, committed: fn.committed}
	f, err := durable.Open(l.fs, l.path(fn.name))
	if err != nil {
		return m, fmt.Errorf("ledger: couldn't open %s: %w", fn.name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return m, fmt.Errorf("ledger: couldn't stat %s: %w", fn.name, err)
	}
	if st.Size() < chunkHeaderSize {
		return m, &CorruptionError{File: fn.name, Seqno: fn.start, Offset: 0, Reason: "file shorter than its header"}
	}
	if m.tableOff, err = readHeader(f); err != nil {
		return m, fmt.Errorf("ledger: couldn't read the header of %s: %w", fn.name, err)
	}
	if reason := checkTableLayout(m.tableOff, st.Size(), m.count()); reason != "" {
		return m, &CorruptionError{File: fn.name, Seqno: fn.start, Offset: 0, Reason: reason}
	}
	return m, nil
}

// openScan is what scanOpen found in an open chunk.
type openScan struct {
	offsets   []uint32 // offset of each whole entry
	good      int64    // end of the last whole entry
	lastFlags uint8    // flags of the last whole entry
	stop      *scanError
}

// scanOpen walks the entries of an open chunk from byte 8 to limit. A whole
// entry with the wrong seqno or a decreasing view is a *CorruptionError; an
// entry that cannot be read ends the walk, with the reason in stop.
func scanOpen(f io.ReaderAt, name string, start uint64, limit int64) (openScan, error) {
	res := openScan{good: chunkHeaderSize}
	if limit < chunkHeaderSize {
		res.good = limit
		return res, nil
	}
	sc := newScanner(f, chunkHeaderSize, limit)
	var view uint64
	for {
		off := sc.off
		_, info, err := sc.next()
		if errors.Is(err, io.EOF) {
			return res, nil
		}
		var se *scanError
		if errors.As(err, &se) {
			res.stop = se
			return res, nil
		}
		seqno := start + uint64(len(res.offsets))
		switch {
		case info.seqno != seqno:
			return res, &CorruptionError{File: name, Seqno: seqno, Offset: off, Reason: fmt.Sprintf("entry has seqno %d", info.seqno)}
		case info.view < view:
			return res, &CorruptionError{File: name, Seqno: seqno, Offset: off, Reason: fmt.Sprintf("view %d after view %d", info.view, view)}
		case info.snapshot:
			return res, &CorruptionError{File: name, Seqno: seqno, Offset: off, Reason: "snapshot entry in a ledger chunk"}
		case off > maxChunkOffset:
			return res, &CorruptionError{File: name, Seqno: seqno, Offset: off, Reason: "entry starts beyond 4 GiB"}
		}
		res.offsets = append(res.offsets, uint32(off))
		res.good, res.lastFlags, view = sc.off, info.flags, info.view
	}
}

// recoverOpen recovers a file named ledger_<start>. It returns the open chunk,
// or the completed chunk it turned out to be, or neither if it held no entry
// (the file is then removed). The crash windows it repairs:
//   - torn tail (crash while appending): bytes after the last whole entry,
//     fewer than a header, a header announcing more bytes than the file
//     holds, or zeros, are cut away with a warning;
//   - crash while completing the chunk (Sync): the header set but the table
//     short, or the table written but the header not, are cut away; a valid
//     header and table means only the rename was lost, which is redone;
//   - a last entry flagged FlagForceChunkAfter whose chunk was not completed:
//     the chunk is completed now, with the same code as Sync;
//   - crash while reopening the chunk (Truncate): the header set but the
//     table cut away; the entries are kept and the header cleared.
//
// Only the last file may need cutting: an earlier open file that is not
// complete is a *CorruptionError.
func (l *Ledger) recoverOpen(fn fileName, isLast bool) (*tailChunk, *chunkMeta, error) {
	f, err := l.fs.OpenFile(l.path(fn.name), os.O_RDWR, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("ledger: couldn't open %s: %w", fn.name, err)
	}
	c, m, err := l.recoverOpenFile(f, fn, isLast)
	if c == nil {
		f.Close()
	}
	return c, m, err
}

// recoverOpenFile does the work of recoverOpen on the opened file.
func (l *Ledger) recoverOpenFile(f durable.File, fn fileName, isLast bool) (*tailChunk, *chunkMeta, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("ledger: couldn't stat %s: %w", fn.name, err)
	}
	size, tableOff := st.Size(), int64(0)
	if size >= chunkHeaderSize {
		if tableOff, err = readHeader(f); err != nil {
			return nil, nil, fmt.Errorf("ledger: couldn't read the header of %s: %w", fn.name, err)
		}
	}
	limit := size
	if tableOff >= chunkHeaderSize && tableOff <= size {
		limit = tableOff
	}
	res, err := scanOpen(f, fn.name, fn.start, limit)
	if err != nil {
		return nil, nil, err
	}
	if tableOff != 0 && res.stop == nil && limit == tableOff {
		if ok, err := tableMatches(f, tableOff, size, res.offsets); err != nil || ok {
			if err != nil {
				return nil, nil, fmt.Errorf("ledger: couldn't read the positions table of %s: %w", fn.name, err)
			}
			m, err := l.finishRename(fn, uint64(len(res.offsets)), tableOff)
			return nil, m, err
		}
	}
	reason, err := tornReason(f, fn, res, limit, size, tableOff)
	if err != nil {
		return nil, nil, err
	}
	if reason != "" {
		if !isLast {
			return nil, nil, &CorruptionError{File: fn.name, Seqno: fn.start + uint64(len(res.offsets)), Offset: res.good,
				Reason: reason + ", but later chunks follow"}
		}
		l.log.Warn("ledger: cutting a torn tail", "file", fn.name, "reason", reason,
			"first_lost_seqno", fn.start+uint64(len(res.offsets)), "kept_bytes", res.good, "cut_bytes", size-res.good)
		if err := l.shrinkFile(f, res.good, size >= chunkHeaderSize && tableOff != 0); err != nil {
			return nil, nil, err
		}
	}
	return l.adoptOpen(f, fn, res, isLast)
}

// tornReason returns why bytes after the whole entries of an open chunk may
// be cut, "" if there are none, or a *CorruptionError if they are not what an
// interrupted write leaves.
func tornReason(f io.ReaderAt, fn fileName, res openScan, limit, size, tableOff int64) (string, error) {
	if res.stop != nil && !res.stop.torn {
		why, ok, err := disposableTail(f, res.good, limit, res.offsets)
		if err != nil {
			return "", fmt.Errorf("ledger: couldn't read %s: %w", fn.name, err)
		}
		if !ok {
			return "", &CorruptionError{File: fn.name, Seqno: fn.start + uint64(len(res.offsets)), Offset: res.good,
				Reason: res.stop.reason, Err: res.stop.err}
		}
		return why + " after the last entry", nil
	}
	switch {
	case res.stop != nil:
		return "torn entry: " + res.stop.Error(), nil
	case tableOff != 0:
		return fmt.Sprintf("unfinished chunk completion or reopening (positions table offset %d)", tableOff), nil
	case res.good < size:
		return fmt.Sprintf("%d bytes after the last entry", size-res.good), nil
	}
	return "", nil
}

// adoptOpen makes a recovered open chunk the tail, completing it if its last
// entry asks for it, or removes the file if it holds no entry. It returns a
// tail chunk only if it keeps f open.
func (l *Ledger) adoptOpen(f durable.File, fn fileName, res openScan, isLast bool) (*tailChunk, *chunkMeta, error) {
	if len(res.offsets) == 0 {
		if !isLast {
			return nil, nil, &CorruptionError{File: fn.name, Seqno: fn.start, Offset: chunkHeaderSize, Reason: "empty chunk, but later chunks follow"}
		}
		l.log.Warn("ledger: removing a chunk without entries", "file", fn.name)
		return nil, nil, l.remove(fn.name)
	}
	c := &tailChunk{start: fn.start, f: f, offsets: res.offsets, size: res.good, written: res.good}
	if res.lastFlags&FlagForceChunkAfter == 0 {
		if !isLast {
			return nil, nil, &CorruptionError{File: fn.name, Seqno: c.end() + 1, Offset: res.good,
				Reason: "open chunk, but later chunks follow"}
		}
		return c, nil, nil
	}
	l.log.Info("ledger: completing a chunk whose last entry ends it", "file", fn.name, "end", c.end())
	c.complete = true
	r, err := l.flushChunk(c)
	if err == nil {
		err = l.syncDir()
	}
	if err != nil {
		return nil, nil, err
	}
	return nil, &r.meta, nil
}

// tableMatches reports whether f holds, from tableOff to EOF, the positions
// table of the entries at offsets.
func tableMatches(f io.ReaderAt, tableOff, size int64, offsets []uint32) (bool, error) {
	if size-tableOff != int64(len(offsets))*positionSize || len(offsets) == 0 {
		return false, nil
	}
	b := make([]byte, size-tableOff)
	if _, err := f.ReadAt(b, tableOff); err != nil {
		return false, err
	}
	return bytes.Equal(b, appendTable(nil, offsets)), nil
}

// finishRename completes the rename of a chunk whose table was written but
// whose rename to ledger_<start>-<end> was lost in a crash.
func (l *Ledger) finishRename(fn fileName, count uint64, tableOff int64) (*chunkMeta, error) {
	m := &chunkMeta{start: fn.start, end: fn.start + count - 1, tableOff: tableOff}
	l.log.Info("ledger: finishing an interrupted chunk completion", "file", fn.name, "to", m.name())
	if err := l.rename(fn.name, m.name()); err != nil {
		return nil, err
	}
	return m, l.syncDir()
}
