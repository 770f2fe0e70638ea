package ledger

import (
	"bytes"
	"encoding/binary"
	"errors"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"testing"
)

// buildLedger writes entries (synthetic, small) into dir and closes it.
func buildLedger(t testing.TB, dir string, plan []planEntry) [][]byte {
	t.Helper()
	l := openT(t, dir)
	entries := make([][]byte, len(plan))
	for i, p := range plan {
		entries[i] = syntheticEntry(uint64(i+1), p.view, p.flags, 60+7*i)
	}
	if err := l.Append(entries...); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return entries
}

// openPlan is chunkedPlan whose last entry does not end its chunk.
func openPlan(n, every int) []planEntry {
	plan := chunkedPlan(n, every, 1)
	plan[n-1].flags = 0
	return plan
}

// copyDir copies the files of src into a new temporary directory.
func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	for _, name := range dirNames(t, src) {
		b, err := os.ReadFile(filePath(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filePath(dst, name), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func wantCorruption(t *testing.T, err error, seqno uint64) *CorruptionError {
	t.Helper()
	var ce *CorruptionError
	if !errors.As(err, &ce) {
		t.Fatalf("got %v, want a *CorruptionError", err)
	}
	if ce.Seqno != seqno {
		t.Fatalf("CorruptionError at seqno %d, want %d: %v", ce.Seqno, seqno, ce)
	}
	return ce
}

// TestTornTail cuts the open chunk at every byte of its last entry.
func TestTornTail(t *testing.T) {
	src := t.TempDir()
	entries := buildLedger(t, src, openPlan(6, 3)) // ledger_1-3, open ledger_4 with 4..6
	name := "ledger_4"
	full, err := os.ReadFile(filePath(src, name))
	if err != nil {
		t.Fatal(err)
	}
	lastOff := len(full) - len(entries[5])
	for cut := lastOff; cut < len(full); cut++ {
		dir := copyDir(t, src)
		if err := os.Truncate(filePath(dir, name), int64(cut)); err != nil {
			t.Fatal(err)
		}
		var logs bytes.Buffer
		l, err := Open(dir, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		if cut > lastOff && (!strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "first_lost_seqno=6")) {
			t.Fatalf("cut at %d: no warning with the lost seqno: %s", cut, logs.String())
		}
		checkContents(t, l, 1, entries[:5])
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if st, _ := os.Stat(filePath(dir, name)); st.Size() != int64(lastOff) {
			t.Fatalf("cut at %d: file is %d bytes, want %d", cut, st.Size(), lastOff)
		}
		l = openT(t, dir) // recovery is idempotent
		checkContents(t, l, 1, entries[:5])
		// The ledger takes new entries after the cut.
		if err := l.Append(entries[5]); err != nil {
			t.Fatal(err)
		}
		l.Close()
	}

	// Every entry of the open chunk torn: the file goes away.
	dir := copyDir(t, src)
	if err := os.Truncate(filePath(dir, name), 5); err != nil {
		t.Fatal(err)
	}
	l := openT(t, dir)
	checkContents(t, l, 1, entries[:3])
	l.Close()
	if got := dirNames(t, dir); !reflect.DeepEqual(got, []string{"ledger_1-3"}) {
		t.Fatalf("files %v", got)
	}

	// A file extended with zeros (data never written).
	dir = copyDir(t, src)
	f, _ := os.OpenFile(filePath(dir, name), os.O_WRONLY|os.O_APPEND, 0)
	f.Write(make([]byte, 5000))
	f.Close()
	l = openT(t, dir)
	checkContents(t, l, 1, entries)
	l.Close()
}

// TestMiddleCorruption damages whole entries of the open chunk: Open fails
// with a *CorruptionError and changes nothing.
func TestMiddleCorruption(t *testing.T) {
	src := t.TempDir()
	buildLedger(t, src, chunkedPlan(7, 10, 1)) // open ledger_1 with 1..7
	name := "ledger_1"
	full, _ := os.ReadFile(filePath(src, name))
	off5 := chunkHeaderSize
	for i := range 4 {
		off5 += len(syntheticEntry(uint64(i+1), 1, 0, 60+7*i))
	}
	for _, c := range []struct {
		what  string
		at    int
		xor   byte
		seqno uint64
	}{
		{"version", off5, 0xFF, 5},
		{"seqno in IV", off5 + ivOffset, 0x01, 5},
		{"public size", off5 + pubLenOffset + 5, 0x01, 5},
		{"size of the last entry, shrunk", len(full) - len(syntheticEntry(7, 1, 0, 60+7*6)) + 2, 0x01, 7},
	} {
		dir := copyDir(t, src)
		b := bytes.Clone(full)
		b[c.at] ^= c.xor
		os.WriteFile(filePath(dir, name), b, 0o640)
		_, err := Open(dir, Options{})
		ce := wantCorruption(t, err, c.seqno)
		if ce.File != name {
			t.Errorf("%s: error names %q", c.what, ce.File)
		}
		after, _ := os.ReadFile(filePath(dir, name))
		if !bytes.Equal(after, b) {
			t.Errorf("%s: Open changed the file", c.what)
		}
	}
}

// TestCompletedChecks damages the header of a completed chunk.
func TestCompletedChecks(t *testing.T) {
	src := t.TempDir()
	buildLedger(t, src, openPlan(6, 3))
	for _, mutate := range []func([]byte) []byte{
		func(b []byte) []byte { b[0] ^= 4; return b },          // header offset
		func(b []byte) []byte { return b[:len(b)-1] },          // table short
		func(b []byte) []byte { return append(b, 0, 0, 0, 0) }, // table long
		func(b []byte) []byte { return b[:4] },                 // no header
		func(b []byte) []byte { clear(b[:8]); return b },       // offset 0
		func(b []byte) []byte { b[7] = 0x80; return b },        // huge offset
	} {
		dir := copyDir(t, src)
		b, _ := os.ReadFile(filePath(dir, "ledger_1-3"))
		os.WriteFile(filePath(dir, "ledger_1-3"), mutate(b), 0o640)
		_, err := Open(dir, Options{})
		wantCorruption(t, err, 1)
	}
}

// TestCrashWindows builds the states a crash can leave in Sync and Truncate.
func TestCrashWindows(t *testing.T) {
	src := t.TempDir()
	entries := buildLedger(t, src, openPlan(5, 3)) // ledger_1-3 (3 flagged), open 4..5
	done, _ := os.ReadFile(filePath(src, "ledger_1-3"))
	tableOff := int64(binary.LittleEndian.Uint64(done))
	setup := func(files map[string][]byte, remove ...string) string {
		dir := copyDir(t, src)
		for _, n := range remove {
			os.Remove(filePath(dir, n))
		}
		for n, b := range files {
			os.WriteFile(filePath(dir, n), b, 0o640)
		}
		return dir
	}
	noHeader := func(b []byte) []byte { b = bytes.Clone(b); clear(b[:8]); return b }
	for _, c := range []struct {
		what  string
		dir   string
		last  uint64
		files []string
	}{
		{"completed, rename lost, last file",
			setup(map[string][]byte{"ledger_1": done}, "ledger_1-3", "ledger_4"), 3, []string{"ledger_1-3"}},
		{"completed, rename lost, next file created",
			setup(map[string][]byte{"ledger_1": done}, "ledger_1-3"), 5, []string{"ledger_1-3", "ledger_4"}},
		{"header written, table torn",
			setup(map[string][]byte{"ledger_1": done[:tableOff+5]}, "ledger_1-3", "ledger_4"), 3, []string{"ledger_1-3"}},
		{"table written, header not",
			setup(map[string][]byte{"ledger_1": noHeader(done)}, "ledger_1-3", "ledger_4"), 3, []string{"ledger_1-3"}},
		{"part of the table written, header not",
			setup(map[string][]byte{"ledger_1": noHeader(done)[:tableOff+6]}, "ledger_1-3", "ledger_4"), 3, []string{"ledger_1-3"}},
		{"nothing of the completion written",
			setup(map[string][]byte{"ledger_1": noHeader(done)[:tableOff]}, "ledger_1-3", "ledger_4"), 3, []string{"ledger_1-3"}},
		{"truncate: renamed back and cut, header not cleared",
			setup(map[string][]byte{"ledger_1": done[:chunkHeaderSize+len(entries[0])+len(entries[1])]}, "ledger_1-3", "ledger_4"),
			2, []string{"ledger_1"}},
		{"truncate: renamed back, not cut",
			setup(map[string][]byte{"ledger_1": done}, "ledger_1-3", "ledger_4"), 3, []string{"ledger_1-3"}},
	} {
		l, err := Open(c.dir, Options{Logger: testLogger(t)})
		if err != nil {
			t.Fatalf("%s: %v", c.what, err)
		}
		checkContents(t, l, 1, entries[:c.last])
		l.Close()
		if got := dirNames(t, c.dir); !reflect.DeepEqual(got, c.files) {
			t.Errorf("%s: files %v, want %v", c.what, got, c.files)
		}
		if c.files[0] == "ledger_1-3" {
			checkChunkFile(t, c.dir, "ledger_1-3", entries[:3])
		}
	}

	// An open chunk that is not the last file, and cannot be completed.
	dir := setup(map[string][]byte{"ledger_1": done[:tableOff-1]}, "ledger_1-3")
	_, err := Open(dir, Options{})
	wantCorruption(t, err, 3)
}

// TestOpenLayoutErrors checks gaps, overlaps and ignored names.
func TestOpenLayoutErrors(t *testing.T) {
	src := t.TempDir()
	entries := buildLedger(t, src, openPlan(10, 3)) // 1-3, 4-6, 7-9, open 10

	dir := copyDir(t, src)
	os.Remove(filePath(dir, "ledger_4-6"))
	_, err := Open(dir, Options{})
	if ce := wantCorruption(t, err, 4); ce.File != "ledger_7-9" {
		t.Fatalf("gap names %q", ce.File)
	}

	dir = copyDir(t, src)
	b, _ := os.ReadFile(filePath(dir, "ledger_4-6"))
	os.WriteFile(filePath(dir, "ledger_5-7"), b, 0o640)
	_, err = Open(dir, Options{})
	wantCorruption(t, err, 5)

	dir = copyDir(t, src)
	for _, n := range []string{"ledger_4-6.ignored", "ledger_04-6", "ledger_11.tmp", "ledger_x", "ledger_6-4", "ledger_0", "notes.txt", "ledger_11.recovery"} {
		os.WriteFile(filePath(dir, n), []byte("junk"), 0o640)
	}
	os.Mkdir(filePath(dir, "ledger_11"), 0o750)
	l := openT(t, dir)
	checkContents(t, l, 1, entries)
	l.Close()
}

func FuzzOpenChunk(f *testing.F) {
	var open, done []byte
	open = append(open, make([]byte, 8)...)
	for i := range 4 {
		flags := uint8(0)
		if i == 3 {
			flags = FlagForceChunkAfter
		}
		open = append(open, syntheticEntry(uint64(i+1), 1, flags, 50+i)...)
	}
	done = append(bytes.Clone(open), appendTable(nil, []uint32{8, 8 + 93, 8 + 93 + 93, 8 + 93*3})...)
	binary.LittleEndian.PutUint64(done, uint64(len(open)))
	f.Add(open)
	f.Add(open[:len(open)-3])
	f.Add(done)
	f.Add(done[:len(done)-2])
	f.Add(append(bytes.Clone(open), 0, 0, 0, 0, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filePath(dir, "ledger_1"), b, 0o640); err != nil {
			t.Fatal(err)
		}
		l, err := Open(dir, Options{})
		if err != nil {
			return
		}
		last := l.LastSeqno()
		for s := uint64(1); s <= last; s++ {
			raw, err := l.Read(s)
			if err != nil {
				t.Fatalf("Read(%d): %v", s, err)
			}
			if got, _, _ := EntrySeqnoView(raw); got != s {
				t.Fatalf("Read(%d) returned seqno %d", s, got)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l, err = Open(dir, Options{})
		if err != nil {
			t.Fatalf("second Open: %v", err)
		}
		if l.LastSeqno() != last {
			t.Fatalf("second Open: last %d, want %d", l.LastSeqno(), last)
		}
		if err := Walk(dir, func(uint64, []byte) error { return nil }, WalkOptions{}); err != nil {
			t.Fatalf("Walk after recovery: %v", err)
		}
		l.Close()
	})
}
