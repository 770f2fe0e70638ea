package ledger

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ledgerd/ledgerd/internal/durable"
)

// Chunk file layout (ccf-format.md §1.2): an 8-byte positions table offset
// (0 while the chunk is open), the entries back to back from byte 8, then,
// once complete, one uint32 file offset per entry.
const (
	chunkHeaderSize = 8
	positionSize    = 4
	maxChunkOffset  = math.MaxUint32 // positions are uint32: no entry may start beyond this
	filePrefix      = "ledger_"
	committedSuffix = ".committed"
)

// chunkMeta describes a completed chunk file: ledger_<start>-<end>, with
// ".committed" once every entry in it is committed (§1.1).
type chunkMeta struct {
	start, end uint64
	committed  bool
	tableOff   int64 // positions table offset, from the file header
}

func (m *chunkMeta) count() uint64   { return m.end - m.start + 1 }
func (m *chunkMeta) name() string    { return completeName(m.start, m.end, m.committed) }
func (m *chunkMeta) fileSize() int64 { return m.tableOff + int64(m.count())*positionSize }

// openName is the name of a chunk still being written: ledger_<start>.
func openName(start uint64) string { return filePrefix + strconv.FormatUint(start, 10) }

// completeName is the name of a completed chunk: ledger_<start>-<end>, plus
// ".committed" once committed.
func completeName(start, end uint64, committed bool) string {
	name := openName(start) + "-" + strconv.FormatUint(end, 10)
	if committed {
		name += committedSuffix
	}
	return name
}

// fileName is a parsed chunk file name.
type fileName struct {
	name       string
	start, end uint64 // end is 0 for an open chunk
	complete   bool   // ledger_<start>-<end>[.committed]
	committed  bool
}

// parseFileName parses a chunk file name (§1.1). It accepts only the names
// ledgerd and CCF write, with canonical decimal numbers, so that every seqno
// range has one spelling; ".ignored", ".recovery", temporary and other files
// do not parse.
func parseFileName(name string) (fileName, bool) {
	rest, ok := strings.CutPrefix(name, filePrefix)
	if !ok {
		return fileName{}, false
	}
	fn := fileName{name: name}
	rest, fn.committed = strings.CutSuffix(rest, committedSuffix)
	startStr, endStr, complete := strings.Cut(rest, "-")
	if fn.committed && !complete {
		return fileName{}, false
	}
	fn.complete = complete
	if fn.start, ok = parseSeqno(startStr); !ok {
		return fileName{}, false
	}
	if complete {
		if fn.end, ok = parseSeqno(endStr); !ok || fn.end < fn.start {
			return fileName{}, false
		}
	}
	return fn, true
}

// parseSeqno parses a canonical decimal seqno of at least 1.
func parseSeqno(s string) (uint64, bool) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 || strconv.FormatUint(n, 10) != s {
		return 0, false
	}
	return n, true
}

// appendTable appends the positions table: each offset as a uint32 LE.
func appendTable(dst []byte, offsets []uint32) []byte {
	for _, off := range offsets {
		dst = binary.LittleEndian.AppendUint32(dst, off)
	}
	return dst
}

// readHeader reads the positions table offset at the start of a chunk file.
func readHeader(f io.ReaderAt) (int64, error) {
	var b [chunkHeaderSize]byte
	if _, err := f.ReadAt(b[:], 0); err != nil {
		return 0, err
	}
	off := binary.LittleEndian.Uint64(b[:])
	if off > math.MaxInt64 {
		return -1, nil
	}
	return int64(off), nil
}

// writeHeader writes the positions table offset at the start of a chunk file.
func (l *Ledger) writeHeader(f durable.File, tableOff int64) error {
	var b [chunkHeaderSize]byte
	binary.LittleEndian.PutUint64(b[:], uint64(tableOff))
	l.stats.writes.Add(1)
	_, err := f.WriteAt(b[:], 0)
	return err
}

// checkTableLayout checks that a completed chunk's header offset leaves room
// for its entries and points to a table of exactly count positions ending at
// EOF (§1.2). It does not read the entries.
func checkTableLayout(tableOff, size int64, count uint64) string {
	switch {
	case tableOff < chunkHeaderSize+int64(minEntrySize):
		return fmt.Sprintf("positions table offset %d is inside the file header or first entry", tableOff)
	case tableOff > size:
		return fmt.Sprintf("positions table offset %d is past the end of the %d-byte file", tableOff, size)
	case count > uint64(tableOff-chunkHeaderSize)/minEntrySize:
		return fmt.Sprintf("%d entries cannot fit before the positions table offset %d", count, tableOff)
	case uint64(size-tableOff) != count*positionSize:
		return fmt.Sprintf("positions table of %d bytes at offset %d, want %d positions (%d bytes)",
			size-tableOff, tableOff, count, count*positionSize)
	}
	return ""
}

// decodeTable decodes and checks a positions table read from a chunk whose
// entries lie in [8, tableOff): the first entry at 8, each entry at least
// minEntrySize bytes. It returns the positions, or the index of the first bad
// one and a reason.
func decodeTable(b []byte, tableOff int64) ([]uint32, int, string) {
	pos := make([]uint32, len(b)/positionSize)
	next := int64(chunkHeaderSize)
	for i := range pos {
		p := binary.LittleEndian.Uint32(b[i*positionSize:])
		pos[i] = p
		switch {
		case i == 0 && p != chunkHeaderSize:
			return nil, i, fmt.Sprintf("first position is %d, want %d", p, chunkHeaderSize)
		case int64(p) < next:
			return nil, i, fmt.Sprintf("position %d overlaps the previous entry", p)
		case int64(p)+minEntrySize > tableOff:
			return nil, i, fmt.Sprintf("position %d leaves no room for an entry before the table at %d", p, tableOff)
		}
		next = int64(p) + minEntrySize
	}
	return pos, 0, ""
}

// path returns the path of a file in the ledger directory.
func (l *Ledger) path(name string) string { return filepath.Join(l.dir, name) }

// syncFile fsyncs a chunk file.
func (l *Ledger) syncFile(f durable.File) error {
	l.stats.fsyncs.Add(1)
	return f.Sync()
}

// syncDir fsyncs the ledger directory, making creations, renames and
// removals durable. The directory stays open, so that it needs no new file
// descriptor.
func (l *Ledger) syncDir() error {
	l.stats.dirSyncs.Add(1)
	if err := l.dirf.Sync(); err != nil {
		return fmt.Errorf("ledger: couldn't fsync directory %s: %w", l.dir, err)
	}
	l.dirDirty = false
	return nil
}

// prepareSpare opens the spare file of the next chunk if PreopenChunks asks
// for one and none is open. Failing is not an error: the next chunk is then
// created when it starts.
func (l *Ledger) prepareSpare() {
	if !l.preopen || l.next != nil {
		return
	}
	f, err := l.fs.OpenFile(l.path(SpareChunkFile), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		l.log.Debug("ledger: couldn't open the spare chunk file; will retry", "err", err)
		return
	}
	l.next = f
}

// dropSpare closes and removes the spare chunk file.
func (l *Ledger) dropSpare() {
	if l.next != nil {
		l.next.Close()
		l.fs.Remove(l.path(SpareChunkFile))
		l.next = nil
	}
}

// createChunkFile creates the file of a new chunk: the spare file renamed,
// if there is one, else a new file. Either way the directory is dirty.
func (l *Ledger) createChunkFile(start uint64) (durable.File, error) {
	name := openName(start)
	if l.next != nil {
		if err := l.fs.Rename(l.path(SpareChunkFile), l.path(name)); err == nil {
			f := l.next
			l.next, l.dirDirty = nil, true
			return f, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("ledger: couldn't create chunk %s: %w", name, err)
		}
		l.log.Warn("ledger: the spare chunk file disappeared; creating the chunk file instead")
		l.next.Close()
		l.next = nil
	}
	f, err := l.fs.OpenFile(l.path(name), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return nil, fmt.Errorf("ledger: couldn't create chunk %s: %w", name, err)
	}
	l.dirDirty = true
	return f, nil
}

// rename renames a file in the ledger directory (not yet durable: call syncDir).
func (l *Ledger) rename(from, to string) error {
	if err := l.fs.Rename(l.path(from), l.path(to)); err != nil {
		return fmt.Errorf("ledger: couldn't rename %s to %s: %w", from, to, err)
	}
	l.dirDirty = true
	return nil
}

// shrinkFile cuts a chunk file to size and makes it durable; with zeroHeader
// it then clears the positions table offset, so the file is an open chunk
// again. The fsync between the two steps matters: a header of 0 must never
// be durable while the old table is still in the file, or recovery would
// read the table as a corrupt entry.
func (l *Ledger) shrinkFile(f durable.File, size int64, zeroHeader bool) error {
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("ledger: couldn't truncate %s: %w", f.Name(), err)
	}
	if err := l.syncFile(f); err != nil {
		return fmt.Errorf("ledger: couldn't fsync %s: %w", f.Name(), err)
	}
	if !zeroHeader {
		return nil
	}
	if err := l.writeHeader(f, 0); err != nil {
		return fmt.Errorf("ledger: couldn't clear the header of %s: %w", f.Name(), err)
	}
	if err := l.syncFile(f); err != nil {
		return fmt.Errorf("ledger: couldn't fsync %s: %w", f.Name(), err)
	}
	return nil
}
