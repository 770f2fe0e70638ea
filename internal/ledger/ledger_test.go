package ledger

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
)

// TestAppendReopen appends entries across several forced chunks and reopens.
func TestAppendReopen(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir)
	if l.FirstSeqno() != 1 || l.LastSeqno() != 0 || l.OpenChunkBytes() != 0 {
		t.Fatalf("new ledger: first %d last %d open %d", l.FirstSeqno(), l.LastSeqno(), l.OpenChunkBytes())
	}
	plan := chunkedPlan(23, 5, 1) // chunks 1-5, 6-10, 11-15, 16-20, open 21..23
	plan[12].view, plan[13].view = 2, 2
	for i := 14; i < len(plan); i++ {
		plan[i].view = 4
	}
	entries := makeEntries(t, 1, plan)
	for i := 0; i < len(entries); i += 7 { // several batches
		if err := l.Append(entries[i:min(i+7, len(entries))]...); err != nil {
			t.Fatal(err)
		}
		checkContents(t, l, 1, entries[:min(i+7, len(entries))]) // readable before Sync
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	checkContents(t, l, 1, entries)
	want := []string{"ledger_1-5", "ledger_11-15", "ledger_16-20", "ledger_21", "ledger_6-10"}
	if got := dirNames(t, dir); !reflect.DeepEqual(got, want) {
		t.Fatalf("files %v, want %v", got, want)
	}
	var size int64 = chunkHeaderSize
	for _, e := range entries[20:] {
		size += int64(len(e))
	}
	if got := l.OpenChunkBytes(); got != size {
		t.Fatalf("OpenChunkBytes = %d, want %d", got, size)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Read(1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
	l = openT(t, dir)
	defer l.Close()
	checkContents(t, l, 1, entries)
	if got := l.views; !reflect.DeepEqual(got, viewHistory{{1, 1}, {13, 2}, {15, 4}}) {
		t.Fatalf("view history %v", got)
	}
	if _, err := l.Read(24); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Read(24): %v", err)
	}
	if _, err := l.View(0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("View(0): %v", err)
	}
	// Files read back byte for byte as the spec lays them out.
	checkChunkFile(t, dir, "ledger_6-10", entries[5:10])
}

// checkChunkFile builds a completed chunk file by hand (§1.2) and compares.
func checkChunkFile(t *testing.T, dir, name string, entries [][]byte) {
	t.Helper()
	var body []byte
	var table []byte
	for _, e := range entries {
		table = append(table, le(uint64(chunkHeaderSize+len(body)), 4)...)
		body = append(body, e...)
	}
	want := cat(le(uint64(chunkHeaderSize+len(body)), 8), body, table)
	got, err := os.ReadFile(filePath(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is not laid out as §1.2 says", name)
	}
}

func TestAppendRejects(t *testing.T) {
	l := openT(t, t.TempDir())
	defer l.Close()
	aead := testAEAD(t)
	e1, e2 := entry(t, aead, 1, 2, 0), entry(t, aead, 2, 2, 0)
	snap := entry(t, aead, 2, 2, 0)
	snap[ivOffset+GCMIVSize-1] |= snapshotBit
	for name, batch := range map[string][][]byte{
		"gap":           {e2},
		"repeat":        {e1, e1},
		"view down":     {e1, entry(t, aead, 2, 1, 0)},
		"malformed":     {e1, e2[:len(e2)-1]},
		"snapshot":      {e1, snap},
		"second starts": {e1, e2, entry(t, aead, 4, 2, 0)},
	} {
		if err := l.Append(batch...); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if l.LastSeqno() != 0 {
			t.Fatalf("%s: appended part of the batch", name)
		}
	}
	if err := l.Append(e1, e2); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(entry(t, aead, 3, 1, 0)); !errors.Is(err, ErrNotContiguous) {
		t.Fatalf("view going down: %v", err)
	}
}

// TestForceChunkBefore checks that FlagForceChunkBefore ends the open chunk.
func TestForceChunkBefore(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir)
	plan := []planEntry{{1, 0}, {1, 0}, {1, FlagForceChunkBefore}, {1, FlagForceChunkBefore | FlagForceChunkAfter}, {1, 0}}
	entries := makeEntries(t, 1, plan)
	if err := l.Append(entries[:2]...); err != nil {
		t.Fatal(err)
	}
	if err := l.Sync(); err != nil { // chunk 1 is on disk, open
		t.Fatal(err)
	}
	if err := l.Append(entries[2:]...); err != nil {
		t.Fatal(err)
	}
	checkContents(t, l, 1, entries)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	want := []string{"ledger_1-2", "ledger_3-3", "ledger_4-4", "ledger_5"}
	if got := dirNames(t, dir); !reflect.DeepEqual(got, want) {
		t.Fatalf("files %v, want %v", got, want)
	}
	checkChunkFile(t, dir, "ledger_1-2", entries[:2])
	l = openT(t, dir)
	defer l.Close()
	checkContents(t, l, 1, entries)
}

func TestCommit(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir)
	entries := makeEntries(t, 1, chunkedPlan(12, 4, 1))
	if err := l.Append(entries...); err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(13); err == nil {
		t.Fatal("Commit beyond the last entry accepted")
	}
	if err := l.Commit(6); err != nil { // before Sync: ledger_1-4 is renamed at Sync
		t.Fatal(err)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	want := []string{"ledger_1-4.committed", "ledger_5-8", "ledger_9-12"}
	if got := dirNames(t, dir); !reflect.DeepEqual(got, want) {
		t.Fatalf("files %v, want %v", got, want)
	}
	if err := l.Commit(8); err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(7); err != nil || l.CommittedSeqno() != 8 {
		t.Fatalf("Commit backwards: %v, committed %d", err, l.CommittedSeqno())
	}
	want = []string{"ledger_1-4.committed", "ledger_5-8.committed", "ledger_9-12"}
	if got := dirNames(t, dir); !reflect.DeepEqual(got, want) {
		t.Fatalf("files %v, want %v", got, want)
	}
	checkContents(t, l, 1, entries)
	l.Close()
	l = openT(t, dir)
	defer l.Close()
	if l.CommittedSeqno() != 8 {
		t.Fatalf("CommittedSeqno after reopen = %d", l.CommittedSeqno())
	}
	checkContents(t, l, 1, entries)
	if err := l.Truncate(7); !errors.Is(err, ErrCommitted) {
		t.Fatalf("Truncate below committed: %v", err)
	}
}

func TestTruncate(t *testing.T) {
	dir := t.TempDir()
	aead := testAEAD(t)
	l := openT(t, dir)
	entries := makeEntries(t, 1, chunkedPlan(14, 5, 1)) // 1-5, 6-10, open 11-14
	if err := l.Append(entries...); err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(3); err != nil {
		t.Fatal(err)
	}
	reopen := func(want [][]byte, files ...string) {
		t.Helper()
		checkContents(t, l, 1, want)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if got := dirNames(t, dir); !reflect.DeepEqual(got, files) {
			t.Fatalf("files %v, want %v", got, files)
		}
		l = openT(t, dir)
		checkContents(t, l, 1, want)
	}

	// Inside the open chunk, with buffered entries.
	if err := l.Truncate(12); err != nil {
		t.Fatal(err)
	}
	entries = entries[:12]
	reopen(entries, "ledger_1-5", "ledger_11", "ledger_6-10")

	// Across a completed, uncommitted chunk: reopens ledger_6-10.
	if err := l.Truncate(7); err != nil {
		t.Fatal(err)
	}
	entries = entries[:7]
	checkContents(t, l, 1, entries)
	if l.OpenChunkBytes() == 0 {
		t.Fatal("no open chunk after reopening ledger_6-10")
	}
	reopen(entries, "ledger_1-5", "ledger_6")

	// Append different entries, in a new view, and complete the chunk.
	for s := uint64(8); s <= 11; s++ {
		flags := uint8(0)
		if s == 9 {
			flags = FlagForceChunkAfter
		}
		entries = append(entries, entry(t, aead, s, 3, flags))
	}
	if err := l.Append(entries[7:]...); err != nil {
		t.Fatal(err)
	}
	reopen(entries, "ledger_1-5", "ledger_10", "ledger_6-9")
	if got := l.views; !reflect.DeepEqual(got, viewHistory{{1, 1}, {8, 3}}) {
		t.Fatalf("view history %v", got)
	}

	// At a chunk's end: the completed chunk stays, the open one goes.
	if err := l.Truncate(9); err != nil {
		t.Fatal(err)
	}
	entries = entries[:9]
	reopen(entries, "ledger_1-5", "ledger_6-9")
	if err := l.Append(entry(t, aead, 10, 4, 0)); err != nil {
		t.Fatal(err)
	}
	entries = append(entries, entry(t, aead, 10, 4, 0))
	reopen(entries, "ledger_1-5", "ledger_10", "ledger_6-9")

	// Down to the committed seqno, through a committed chunk's successor.
	if err := l.Truncate(3); err != nil {
		t.Fatal(err)
	}
	entries = entries[:3]
	reopen(entries, "ledger_1")
	if l.CommittedSeqno() != 0 { // known from file names only: no .committed file
		t.Fatalf("CommittedSeqno after reopen = %d", l.CommittedSeqno())
	}
	if err := l.Commit(3); err != nil {
		t.Fatal(err)
	}
	if err := l.Truncate(2); !errors.Is(err, ErrCommitted) {
		t.Fatalf("Truncate(2) with 3 committed: %v", err)
	}
	l.Close()
}

// TestGroupCommit counts the system calls of Sync.
func TestGroupCommit(t *testing.T) {
	l := openT(t, t.TempDir())
	defer l.Close()
	entries := makeEntries(t, 1, chunkedPlan(300, 0, 1))
	entries[249] = entry(t, testAEAD(t), 250, 1, FlagForceChunkAfter)
	type counts struct{ writes, fsyncs, dirSyncs int64 }
	sync := func(batch [][]byte) counts {
		t.Helper()
		w, f, d := l.stats.writes.Load(), l.stats.fsyncs.Load(), l.stats.dirSyncs.Load()
		if err := l.Append(batch...); err != nil {
			t.Fatal(err)
		}
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
		return counts{l.stats.writes.Load() - w, l.stats.fsyncs.Load() - f, l.stats.dirSyncs.Load() - d}
	}
	if got := sync(entries[:100]); got != (counts{1, 1, 1}) { // creates ledger_1
		t.Fatalf("first batch: %+v", got)
	}
	if got := sync(entries[100:200]); got != (counts{1, 1, 0}) {
		t.Fatalf("second batch: %+v", got)
	}
	// Completes ledger_1 (entries and table in one write, then the header)
	// and creates ledger_251.
	if got := sync(entries[200:300]); got != (counts{3, 2, 1}) {
		t.Fatalf("third batch: %+v", got)
	}
	if got := sync(nil); got != (counts{0, 0, 0}) {
		t.Fatalf("empty Sync: %+v", got)
	}
}

// TestConcurrentReads reads while the writer appends, syncs and completes
// chunks (run with -race).
func TestConcurrentReads(t *testing.T) {
	l, err := Open(t.TempDir(), Options{CacheChunks: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const n = 600
	entries := make([][]byte, n)
	for i := range entries {
		flags := uint8(0)
		if i%37 == 36 {
			flags = FlagForceChunkAfter
		}
		entries[i] = syntheticEntry(uint64(i+1), uint64(1+i/100), flags, 200+i%50)
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	for r := range 3 {
		wg.Go(func() {
			for k := 0; ; k++ {
				select {
				case <-done:
					return
				default:
				}
				last := l.LastSeqno()
				if last == 0 {
					continue
				}
				s := 1 + uint64(k*7+r)%last
				got, err := l.Read(s)
				if errors.Is(err, ErrNotFound) { // truncated meanwhile
					continue
				}
				if err != nil {
					t.Errorf("Read(%d): %v", s, err)
					return
				}
				if !bytes.Equal(got, entries[s-1]) {
					t.Errorf("Read(%d) differs", s)
					return
				}
				if v, err := l.View(s); err == nil && v != uint64(1+(s-1)/100) {
					t.Errorf("View(%d) = %d, %v", s, v, err)
					return
				}
			}
		})
	}
	for i := 0; i < n; i += 10 {
		if err := l.Append(entries[i : i+10]...); err != nil {
			t.Fatal(err)
		}
		if i%30 == 0 {
			if err := l.Sync(); err != nil {
				t.Fatal(err)
			}
		}
		if i == 300 {
			if err := l.Truncate(250); err != nil {
				t.Fatal(err)
			}
			if err := l.Append(entries[250 : i+10]...); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(done)
	wg.Wait()
}

// TestCacheEviction reads across more chunks than the cache holds.
func TestCacheEviction(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir)
	entries := makeEntries(t, 1, chunkedPlan(40, 3, 1))
	if err := l.Append(entries...); err != nil {
		t.Fatal(err)
	}
	l.Close()
	l, err := Open(dir, Options{CacheChunks: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for range 2 {
		checkContents(t, l, 1, entries)
	}
	if l.cache.ll.Len() != 1 {
		t.Fatalf("cache holds %d chunks", l.cache.ll.Len())
	}
	if _, err := Open(dir, Options{CacheChunks: -1}); err == nil {
		t.Fatal("negative CacheChunks accepted")
	}
}

// TestRandomReadsKeepNoTables checks that reads in random order, which find
// each entry's extent with a pread of two positions, return every entry,
// including the last of each chunk, and load no positions table; and that
// sequential reads load tables, at most maxCachedTables of them.
func TestRandomReadsKeepNoTables(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir)
	entries := makeEntries(t, 1, chunkedPlan(200, 5, 1)) // 40 chunks
	if err := l.Append(entries...); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// Each chunk's entries last to first, the chunks in random order: no
	// read follows a read of the previous seqno.
	chunks := rand.New(rand.NewPCG(3, 4)).Perm(40)
	for j := 4; j >= 0; j-- {
		for _, c := range chunks {
			i := c*5 + j
			got, err := l.Read(uint64(i + 1))
			if err != nil {
				t.Fatalf("Read(%d): %v", i+1, err)
			}
			if !bytes.Equal(got, entries[i]) {
				t.Fatalf("Read(%d) differs from what was appended", i+1)
			}
		}
	}
	if n := l.cache.tables; n != 0 {
		t.Fatalf("random reads loaded %d positions tables", n)
	}
	checkContents(t, l, 1, entries)
	if n := l.cache.tables; n != maxCachedTables {
		t.Fatalf("after sequential reads of 40 chunks the cache holds %d tables, want %d", n, maxCachedTables)
	}
	held := 0
	for e := l.cache.ll.Front(); e != nil; e = e.Next() {
		if e.Value.(*cachedChunk).table != nil {
			held++
		}
	}
	if held != maxCachedTables || l.cache.ll.Len() != 40 {
		t.Fatalf("cache holds %d chunks, %d with tables", l.cache.ll.Len(), held)
	}
}

// TestRange checks that Range returns what Read does, over completed chunks
// (read in blocks) and the open chunk, for whole and partial ranges; that it
// stops at an error of fn and at the end of the ledger; and that it reports a
// corrupt entry of a completed chunk as Read does.
func TestRange(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir)
	// 10 completed chunks; the open one holds 101-103 in its file and 104-105
	// only in memory.
	entries := makeEntries(t, 1, chunkedPlan(105, 10, 1))
	if err := l.Append(entries[:103]...); err != nil {
		t.Fatal(err)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(entries[103:]...); err != nil {
		t.Fatal(err)
	}
	collect := func(from, to uint64) ([][]byte, error) {
		var got [][]byte
		err := l.Range(from, to, func(s uint64, raw []byte) error {
			if s != from+uint64(len(got)) {
				t.Fatalf("Range called fn with seqno %d, want %d", s, from+uint64(len(got)))
			}
			got = append(got, raw)
			return nil
		})
		return got, err
	}
	for _, r := range [][2]uint64{{1, 105}, {3, 17}, {10, 11}, {55, 55}, {95, 103}, {101, 102}, {102, 105}, {105, 105}} {
		got, err := collect(r[0], r[1])
		if err != nil {
			t.Fatalf("Range(%d, %d): %v", r[0], r[1], err)
		}
		if !reflect.DeepEqual(got, entries[r[0]-1:r[1]]) {
			t.Fatalf("Range(%d, %d) differs from what was appended", r[0], r[1])
		}
	}
	stop := errors.New("stop")
	calls := 0
	if err := l.Range(1, 105, func(uint64, []byte) error { calls++; return stop }); err != stop || calls != 1 {
		t.Fatalf("Range with a failing fn: %v after %d calls", err, calls)
	}
	if got, err := collect(100, 106); !errors.Is(err, ErrNotFound) || len(got) != 6 {
		t.Fatalf("Range past the end: %d entries, %v", len(got), err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// Entry 25 (in ledger_21-30) gets the seqno of entry 26.
	name := completeName(21, 30, false)
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	off := chunkHeaderSize
	for i := 21; i < 25; i++ {
		off += len(entries[i-1])
	}
	binary.LittleEndian.PutUint64(b[off+ivOffset:], 26)
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
		t.Fatal(err)
	}
	l = openT(t, dir)
	defer l.Close()
	_, rerr := l.Read(25)
	ce := wantCorruption(t, rerr, 25)
	got, err := collect(20, 30)
	if len(got) != 5 || !reflect.DeepEqual(wantCorruption(t, err, 25), ce) || ce.File != name {
		t.Fatalf("Range over a corrupt entry: %d entries, %v; Read: %v", len(got), err, rerr)
	}
}

// TestSyncFailureSticky checks that a failed Sync stops the writer until the
// directory is opened again, and that recovery then works.
func TestSyncFailureSticky(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir)
	entries := makeEntries(t, 1, chunkedPlan(4, 0, 1))
	if err := l.Append(entries[:2]...); err != nil {
		t.Fatal(err)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	ro, err := os.Open(filePath(dir, "ledger_1")) // the next write fails, reads work
	if err != nil {
		t.Fatal(err)
	}
	l.tail[0].f.Close()
	l.tail[0].f = ro
	if err := l.Append(entries[2:]...); err != nil {
		t.Fatal(err)
	}
	if err := l.Sync(); err == nil {
		t.Fatal("Sync on a closed file succeeded")
	}
	if err := l.Append(entry(t, testAEAD(t), 5, 1, 0)); err == nil {
		t.Fatal("Append after a failed Sync succeeded")
	}
	checkContents(t, l, 1, entries) // reads go on, from memory for the unsynced entries
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openT(t, dir)
	defer l.Close()
	checkContents(t, l, 1, entries[:2])
}
