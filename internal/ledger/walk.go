package ledger

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ledgerd/ledgerd/internal/durable"
)

// WalkOptions configures Walk.
type WalkOptions struct {
	// Progress, if set, is called every few MiB and after each file with the
	// bytes read so far and the total size of the files to walk.
	Progress func(bytesDone, bytesTotal int64)
	// CommittedOnly walks only the committed chunks (ledger_<s>-<e>.committed),
	// as auditors of the committed history do.
	CommittedOnly bool
	// AllowTornTail accepts, in the last file if it is open (ledger_<start>),
	// bytes after the last whole entry of the kind a crash or a write in
	// progress leaves (a short or overlong trailing entry, zeros, part of a
	// positions table; see Open). Auditors of a live directory set it. The
	// torn bytes are reported to OnTornTail. Without it they are a
	// *CorruptionError.
	AllowTornTail bool
	// OnTornTail, if set, is told about a torn tail accepted under AllowTornTail.
	OnTornTail func(TornTail)
}

// TornTail describes the bytes after the last whole entry of the open chunk,
// which Open would cut away.
type TornTail struct {
	File   string
	Seqno  uint64 // the seqno the torn bytes would have held
	Offset int64  // file offset where the torn bytes start
	Bytes  int64  // how many bytes are torn
	Reason string
}

// Walk reads every chunk in dir in seqno order, sequentially with large
// buffered reads, and calls fn for each entry; raw is only valid during the
// call. It verifies the layout of ccf-format.md §1.1–1.2 as it goes:
//   - file names parse and the files are contiguous;
//   - each file's entries are well framed, contiguous in seqno (read from
//     each IV), with non-decreasing views, and match the file name's range;
//   - in completed files, the header offset points to a positions table of
//     exactly end-start+1 uint32s ending at EOF, equal to the offsets found by
//     walking the entry headers;
//   - only the last file may be open (ledger_<start>).
//
// Any violation returns a *CorruptionError naming the first bad seqno, and fn
// is not called for that entry. An error from fn stops the walk and is
// returned wrapped. Walk reads only framing: it neither decrypts nor checks
// the entries' tags.
func Walk(dir string, fn func(seqno uint64, raw []byte) error, opts WalkOptions) error {
	files, _, err := listChunks(durable.OS, dir)
	if err != nil {
		return err
	}
	w := &walker{dir: dir, fn: fn, opts: opts}
	var sizes []int64
	for _, f := range files {
		if opts.CommittedOnly && !f.committed {
			continue
		}
		st, err := os.Stat(filepath.Join(dir, f.name))
		if err != nil {
			return fmt.Errorf("ledger: couldn't stat %s: %w", f.name, err)
		}
		files[len(sizes)] = f
		sizes = append(sizes, st.Size())
		w.total += st.Size()
	}
	files = files[:len(sizes)]
	prev, prevEnd := "", uint64(0)
	for i, f := range files {
		if i > 0 {
			if err := checkContiguous(prev, prevEnd, f); err != nil {
				return err
			}
		}
		end, err := w.file(f, i == len(files)-1)
		if err != nil {
			return err
		}
		prev, prevEnd = f.name, end
		w.done += sizes[i]
		w.progress(0)
	}
	return nil
}

// walker holds the state of one Walk.
type walker struct {
	dir         string
	fn          func(uint64, []byte) error
	opts        WalkOptions
	done, total int64 // bytes of the files walked so far, of all files
	reported    int64 // bytes last reported to Progress
	view        uint64
}

const progressEvery = 4 << 20

// progress reports the bytes read, off of them in the current file.
func (w *walker) progress(off int64) {
	if w.opts.Progress == nil {
		return
	}
	if done := w.done + off; off == 0 || done-w.reported >= progressEvery {
		w.reported = done
		w.opts.Progress(done, w.total)
	}
}

// file walks one chunk file and returns the seqno of its last entry.
func (w *walker) file(fn fileName, isLast bool) (uint64, error) {
	f, err := os.Open(filepath.Join(w.dir, fn.name))
	if err != nil {
		return 0, fmt.Errorf("ledger: couldn't open %s: %w", fn.name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("ledger: couldn't stat %s: %w", fn.name, err)
	}
	size, tableOff := st.Size(), int64(0)
	if size >= chunkHeaderSize {
		if tableOff, err = readHeader(f); err != nil {
			return 0, fmt.Errorf("ledger: couldn't read the header of %s: %w", fn.name, err)
		}
	}
	if fn.complete {
		if size < chunkHeaderSize {
			return 0, corrupt(fn, fn.start, 0, "file shorter than its header")
		}
		return w.completed(f, fn, fn.end-fn.start+1, tableOff, size)
	}
	if count, ok := impliedCount(tableOff, size); ok {
		// Completed, but the rename to ledger_<start>-<end> has not happened.
		return w.completed(f, fn, count, tableOff, size)
	}
	return w.open(f, fn, isLast, tableOff, size)
}

// impliedCount returns the number of positions of a plausible table at
// tableOff in a file of size bytes.
func impliedCount(tableOff, size int64) (uint64, bool) {
	if tableOff < chunkHeaderSize || tableOff >= size || (size-tableOff)%positionSize != 0 {
		return 0, false
	}
	count := uint64(size-tableOff) / positionSize
	return count, checkTableLayout(tableOff, size, count) == ""
}

// corrupt returns a *CorruptionError about fn.
func corrupt(fn fileName, seqno uint64, off int64, format string, args ...any) error {
	return &CorruptionError{File: fn.name, Seqno: seqno, Offset: off, Reason: fmt.Sprintf(format, args...)}
}

// completed walks a completed chunk of count entries against its table.
func (w *walker) completed(f *os.File, fn fileName, count uint64, tableOff, size int64) (uint64, error) {
	if reason := checkTableLayout(tableOff, size, count); reason != "" {
		return 0, corrupt(fn, fn.start, 0, "%s", reason)
	}
	b := make([]byte, count*positionSize)
	if _, err := f.ReadAt(b, tableOff); err != nil {
		return 0, fmt.Errorf("ledger: couldn't read the positions table of %s: %w", fn.name, err)
	}
	table := rawTable(b)
	sc := newScanner(f, chunkHeaderSize, tableOff)
	for i := range count {
		seqno, off := fn.start+i, sc.off
		if int64(table[i]) != off {
			return 0, corrupt(fn, seqno, tableOff+int64(i)*positionSize,
				"positions table says %d, the entry is at %d", table[i], off)
		}
		raw, info, err := sc.next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return 0, corrupt(fn, seqno, off, "positions table has %d entries, the file %d", count, i)
			}
			return 0, corrupt(fn, seqno, off, "%v", err)
		}
		if err := w.checkEntry(fn, seqno, off, info); err != nil {
			return 0, err
		}
		if err := w.checkExtent(sc, fn, seqno, i, count, table, tableOff); err != nil {
			return 0, err
		}
		if err := w.call(seqno, raw); err != nil {
			return 0, err
		}
		w.progress(sc.off)
	}
	return fn.start + count - 1, nil
}

// rawTable decodes a positions table without checking it.
func rawTable(b []byte) []uint32 {
	t := make([]uint32, len(b)/positionSize)
	for i := range t {
		t[i] = binary.LittleEndian.Uint32(b[i*positionSize:])
	}
	return t
}

// checkExtent checks that entry i, just read, ends where the next position
// (or the table) starts. When it does not, either the entry's size field or
// the next position is wrong: if a well-formed header of the next seqno
// follows the entry, the table is at fault, else the entry.
func (w *walker) checkExtent(sc *scanner, fn fileName, seqno, i, count uint64, table []uint32, tableOff int64) error {
	want := tableOff
	if i+1 < count {
		want = int64(table[i+1])
	}
	if sc.off == want {
		return nil
	}
	if next, ok := sc.peekSeqno(); ok && i+1 < count && next == seqno+1 {
		return corrupt(fn, seqno+1, tableOff+int64(i+1)*positionSize,
			"positions table says %d, the entry is at %d", want, sc.off)
	}
	return corrupt(fn, seqno, int64(table[i]),
		"entry ends at %d, but the positions table says the next starts at %d", sc.off, want)
}

// checkEntry checks the seqno and view of a whole entry.
func (w *walker) checkEntry(fn fileName, seqno uint64, off int64, info entryInfo) error {
	switch {
	case info.seqno != seqno:
		return corrupt(fn, seqno, off, "entry has seqno %d", info.seqno)
	case info.snapshot:
		return corrupt(fn, seqno, off, "snapshot entry in a ledger chunk")
	case info.view < w.view:
		return corrupt(fn, seqno, off, "view %d after view %d", info.view, w.view)
	}
	w.view = info.view
	return nil
}

// call passes an entry to fn.
func (w *walker) call(seqno uint64, raw []byte) error {
	if err := w.fn(seqno, raw); err != nil {
		return fmt.Errorf("ledger: walk stopped at seqno %d: %w", seqno, err)
	}
	return nil
}

// open walks an open chunk, which holds entries from byte 8 to EOF (or to a
// positions table offset left by an unfinished completion).
func (w *walker) open(f *os.File, fn fileName, isLast bool, tableOff, size int64) (uint64, error) {
	limit := size
	if tableOff >= chunkHeaderSize && tableOff <= size {
		limit = tableOff
	}
	var offsets []uint32
	var stop *scanError
	good := min(size, chunkHeaderSize)
	if limit >= chunkHeaderSize {
		sc := newScanner(f, chunkHeaderSize, limit)
		for {
			seqno, off := fn.start+uint64(len(offsets)), sc.off
			raw, info, err := sc.next()
			if errors.Is(err, io.EOF) {
				break
			}
			if !errors.As(err, &stop) {
				if err := w.checkEntry(fn, seqno, off, info); err != nil {
					return 0, err
				}
				if err := w.call(seqno, raw); err != nil {
					return 0, err
				}
				offsets, good = append(offsets, uint32(off)), sc.off
				w.progress(sc.off)
				continue
			}
			break
		}
	}
	next := fn.start + uint64(len(offsets))
	if stop != nil || good < size {
		if err := w.tornTail(f, fn, isLast, next, good, limit, size, offsets, stop); err != nil {
			return 0, err
		}
	}
	if !isLast {
		return 0, corrupt(fn, next, size, "open chunk, but later chunks follow")
	}
	return next - 1, nil
}

// tornTail decides whether the bytes of an open chunk from off, where the
// walk stopped (with stop, or at a positions table offset limit), are a torn
// tail that the options accept, and reports it.
func (w *walker) tornTail(f *os.File, fn fileName, isLast bool, seqno uint64, off, limit, size int64, offsets []uint32, stop *scanError) error {
	reason := fmt.Sprintf("unfinished positions table at offset %d", limit)
	if stop != nil {
		reason = stop.Error()
		if !stop.torn {
			_, ok, err := disposableTail(f, off, limit, offsets)
			if err != nil {
				return fmt.Errorf("ledger: couldn't read %s: %w", fn.name, err)
			}
			if !ok {
				return &CorruptionError{File: fn.name, Seqno: seqno, Offset: off, Reason: stop.reason, Err: stop.err}
			}
		}
	}
	if !isLast || !w.opts.AllowTornTail {
		return corrupt(fn, seqno, off, "torn tail of %d bytes: %s", size-off, reason)
	}
	if w.opts.OnTornTail != nil {
		w.opts.OnTornTail(TornTail{File: fn.name, Seqno: seqno, Offset: off, Bytes: size - off, Reason: reason})
	}
	return nil
}
