package ledger

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"testing"
)

// walkAll walks dir and returns the entries it saw.
func walkAll(dir string, opts WalkOptions) ([][]byte, error) {
	var got [][]byte
	next := uint64(0)
	err := Walk(dir, func(seqno uint64, raw []byte) error {
		if next != 0 && seqno != next {
			return errors.New("seqnos out of order")
		}
		next = seqno + 1
		got = append(got, bytes.Clone(raw))
		return nil
	}, opts)
	return got, err
}

func TestWalk(t *testing.T) {
	dir := t.TempDir()
	entries := buildLedger(t, dir, openPlan(20, 4)) // 1-4 ... 13-16, open 17..20
	l := openT(t, dir)
	if err := l.Commit(9); err != nil {
		t.Fatal(err)
	}
	l.Close()

	var done, total int64
	got, err := walkAll(dir, WalkOptions{Progress: func(d, t int64) { done, total = d, t }})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(entries) {
		t.Fatalf("walked %d entries, want %d", len(got), len(entries))
	}
	for i := range got {
		if !bytes.Equal(got[i], entries[i]) {
			t.Fatalf("entry %d differs", i+1)
		}
	}
	if done != total || total == 0 {
		t.Fatalf("progress %d of %d", done, total)
	}
	got, err = walkAll(dir, WalkOptions{CommittedOnly: true})
	if err != nil || len(got) != 8 {
		t.Fatalf("CommittedOnly: %d entries, %v", len(got), err)
	}
	stop := errors.New("stop")
	if err := Walk(dir, func(uint64, []byte) error { return stop }, WalkOptions{}); !errors.Is(err, stop) {
		t.Fatalf("callback error: %v", err)
	}
}

// walkCorruption applies mutate to a copy of src and expects Walk to report
// a *CorruptionError at seqno.
func walkCorruption(t *testing.T, src, what string, seqno uint64, mutate func(dir string)) {
	t.Helper()
	dir := copyDir(t, src)
	mutate(dir)
	_, err := walkAll(dir, WalkOptions{})
	var ce *CorruptionError
	if !errors.As(err, &ce) {
		t.Errorf("%s: got %v, want a *CorruptionError", what, err)
		return
	}
	if ce.Seqno != seqno {
		t.Errorf("%s: CorruptionError at seqno %d, want %d: %v", what, ce.Seqno, seqno, ce)
	}
}

// edit rewrites one file of dir.
func edit(t *testing.T, dir, name string, f func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(filePath(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filePath(dir, name), f(b), 0o640); err != nil {
		t.Fatal(err)
	}
}

func TestWalkCorruption(t *testing.T) {
	src := t.TempDir()
	entries := buildLedger(t, src, openPlan(20, 5)) // 1-5, 6-10, 11-15, open 16..20
	offset := func(k int) int {                     // offset of entry k (6..10) in ledger_6-10
		off := chunkHeaderSize
		for s := 6; s < k; s++ {
			off += len(entries[s-1])
		}
		return off
	}
	tableOff := offset(11)
	const name = "ledger_6-10"
	for k := 6; k <= 10; k++ {
		for _, bit := range []byte{0x01, 0x04, 0x80} {
			walkCorruption(t, src, "positions table", uint64(k), func(dir string) {
				edit(t, dir, name, func(b []byte) []byte { b[tableOff+4*(k-6)] ^= bit; return b })
			})
		}
		for _, bit := range []byte{0x01, 0x08, 0x40} {
			walkCorruption(t, src, "entry size", uint64(k), func(dir string) {
				edit(t, dir, name, func(b []byte) []byte { b[offset(k)+2] ^= bit; return b })
			})
		}
		walkCorruption(t, src, "entry seqno", uint64(k), func(dir string) {
			edit(t, dir, name, func(b []byte) []byte { b[offset(k)+ivOffset] ^= 0x10; return b })
		})
	}
	for i := range 8 {
		walkCorruption(t, src, "header offset", 6, func(dir string) {
			edit(t, dir, name, func(b []byte) []byte { b[i] ^= 0x01; return b })
		})
	}
	walkCorruption(t, src, "table longer than the file says", 6, func(dir string) {
		edit(t, dir, name, func(b []byte) []byte { return append(b, 0, 0, 0, 0) })
	})
	walkCorruption(t, src, "missing file", 6, func(dir string) { os.Remove(filePath(dir, name)) })
	walkCorruption(t, src, "open chunk entry", 18, func(dir string) {
		edit(t, dir, "ledger_16", func(b []byte) []byte {
			off := chunkHeaderSize + len(entries[15]) + len(entries[16])
			b[off] = 7
			return b
		})
	})
	walkCorruption(t, src, "range and name disagree", 6, func(dir string) {
		os.Rename(filePath(dir, name), filePath(dir, "ledger_6-11"))
	})
}

func TestWalkTornTail(t *testing.T) {
	src := t.TempDir()
	entries := buildLedger(t, src, openPlan(8, 5)) // 1-5, open 6..8
	dir := copyDir(t, src)
	edit(t, dir, "ledger_6", func(b []byte) []byte { return b[:len(b)-10] })
	_, err := walkAll(dir, WalkOptions{})
	var ce *CorruptionError
	if !errors.As(err, &ce) || ce.Seqno != 8 {
		t.Fatalf("torn tail without AllowTornTail: %v", err)
	}
	var torn []TornTail
	got, err := walkAll(dir, WalkOptions{AllowTornTail: true, OnTornTail: func(tt TornTail) { torn = append(torn, tt) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 7 || len(torn) != 1 || torn[0].Seqno != 8 || torn[0].Bytes != int64(len(entries[7])-10) || torn[0].File != "ledger_6" {
		t.Fatalf("walked %d entries, torn %+v", len(got), torn)
	}

	// A crash between writing the table and renaming: Walk accepts it.
	dir = copyDir(t, src)
	os.Rename(filePath(dir, "ledger_1-5"), filePath(dir, "ledger_1"))
	if got, err := walkAll(dir, WalkOptions{}); err != nil || len(got) != 8 {
		t.Fatalf("rename lost: %d entries, %v", len(got), err)
	}
}

func FuzzWalk(f *testing.F) {
	var open []byte
	open = append(open, make([]byte, 8)...)
	var pos []uint32
	for i := range 3 {
		pos = append(pos, uint32(len(open)))
		open = append(open, syntheticEntry(uint64(i+1), 1, 0, 50+i)...)
	}
	done := appendTable(bytes.Clone(open), pos)
	binary.LittleEndian.PutUint64(done, uint64(len(open)))
	f.Add(done, false)
	f.Add(open, true)
	f.Add(done, true)
	f.Add(open[:len(open)-1], true)
	f.Fuzz(func(t *testing.T, b []byte, isOpen bool) {
		dir := t.TempDir()
		name := "ledger_1-3"
		if isOpen {
			name = "ledger_1"
		}
		if err := os.WriteFile(filePath(dir, name), b, 0o640); err != nil {
			t.Fatal(err)
		}
		got, err := walkAll(dir, WalkOptions{})
		if err != nil {
			var ce *CorruptionError
			if !errors.As(err, &ce) {
				t.Fatalf("Walk error is not a *CorruptionError: %v", err)
			}
			return
		}
		if !isOpen && len(got) != 3 {
			t.Fatalf("Walk accepted ledger_1-3 with %d entries", len(got))
		}
		// Whatever Walk accepts, Open accepts with the same entries.
		l, err := Open(dir, Options{})
		if err != nil {
			t.Fatalf("Walk accepted what Open rejects: %v", err)
		}
		defer l.Close()
		if l.LastSeqno() != uint64(len(got)) {
			t.Fatalf("Walk saw %d entries, Open %d", len(got), l.LastSeqno())
		}
		for i, raw := range got {
			r, err := l.Read(uint64(i + 1))
			if err != nil || !bytes.Equal(r, raw) {
				t.Fatalf("Read(%d) = %v", i+1, err)
			}
		}
	})
}
