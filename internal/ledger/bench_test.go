package ledger

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, dir := range fixtureDirs {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

var (
	fixtureMu   sync.Mutex
	fixtureDirs = map[string]string{}
)

// fixture returns a directory holding n synthetic entries of entrySize bytes,
// a chunk ending every chunkEntries entries, the view going up every 100,000
// entries; the last chunk is left open. It is built once per test binary.
func fixture(b *testing.B, n, entrySize, chunkEntries int) string {
	b.Helper()
	key := fmt.Sprint(n, entrySize, chunkEntries)
	fixtureMu.Lock()
	defer fixtureMu.Unlock()
	if dir, ok := fixtureDirs[key]; ok {
		return dir
	}
	dir, err := os.MkdirTemp("", "ledger-bench-")
	if err != nil {
		b.Fatal(err)
	}
	fixtureDirs[key] = dir
	l, err := Open(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	const batch = 10000
	buf := make([][]byte, 0, batch)
	for s := 1; s <= n; s++ {
		flags := uint8(0)
		if s%chunkEntries == 0 && s+chunkEntries <= n {
			flags = FlagForceChunkAfter
		}
		buf = append(buf, syntheticEntry(uint64(s), uint64(1+s/100000), flags, entrySize))
		if len(buf) == batch || s == n {
			if err := l.Append(buf...); err != nil {
				b.Fatal(err)
			}
			if err := l.Sync(); err != nil {
				b.Fatal(err)
			}
			buf = buf[:0]
		}
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	return dir
}

// BenchmarkOpen1M opens a ledger of 1,000,000 entries in 5 MB chunks: with
// 128-byte entries (26 files), and with chunks of 4,808 entries, the count
// that 1 KiB entries give (208 files). Ten views, so the view history needs
// ten binary searches.
func BenchmarkOpen1M(b *testing.B) {
	for _, c := range []struct {
		name               string
		size, chunkEntries int
	}{
		{"128B-entries", 128, 5 << 20 / 128},
		{"1KiB-entry-chunks", 128, 5 << 20 / 1090},
	} {
		b.Run(c.name, func(b *testing.B) {
			dir := fixture(b, 1_000_000, c.size, c.chunkEntries)
			for b.Loop() {
				l, err := Open(dir, Options{})
				if err != nil {
					b.Fatal(err)
				}
				if l.LastSeqno() != 1_000_000 || len(l.views) != 11 {
					b.Fatalf("last %d, views %d", l.LastSeqno(), len(l.views))
				}
				l.Close()
			}
		})
	}
}

// BenchmarkRead reads random entries of a 1,000,000-entry ledger of 26
// chunks, with a cache of 8 chunk files (most reads open and close a file)
// and with the default cache, which keeps every chunk open. Either way a
// random read costs two preads: its two positions, then the entry.
func BenchmarkRead(b *testing.B) {
	dir := fixture(b, 1_000_000, 128, 5<<20/128)
	for _, cache := range []int{8, DefaultCacheChunks} {
		b.Run(fmt.Sprintf("cache=%d", cache), func(b *testing.B) {
			l, err := Open(dir, Options{CacheChunks: cache})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			r := rand.New(rand.NewPCG(1, 2))
			b.ReportAllocs()
			for b.Loop() {
				s := 1 + r.Uint64N(1_000_000)
				raw, err := l.Read(s)
				if err != nil {
					b.Fatal(err)
				}
				if binary.LittleEndian.Uint64(raw[ivOffset:]) != s {
					b.Fatal("wrong entry")
				}
			}
		})
	}
}

// BenchmarkAppendSync appends batches of 1,000 entries with a 1 KiB private
// value and syncs each batch (one write and one fsync), ending a chunk about
// every 5 MB.
func BenchmarkAppendSync(b *testing.B) {
	aead := testAEAD(b)
	tmpl, err := AppendEntry(nil, &Tx{View: 1, Seqno: 1, Maps: []MapWrites{
		{Name: "records", Writes: []KV{{Key: []byte("collection:0001"), Value: bytes.Repeat([]byte{7}, 1024)}}},
	}}, aead)
	if err != nil {
		b.Fatal(err)
	}
	const batchSize = 1000
	chunkEntries := uint64(5<<20) / uint64(len(tmpl))
	batch := make([][]byte, batchSize)
	for i := range batch {
		batch[i] = bytes.Clone(tmpl)
	}
	l, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	next := uint64(1)
	b.SetBytes(int64(batchSize * len(tmpl)))
	for b.Loop() {
		for _, e := range batch { // the ledger does not check tags: patch the IV
			binary.LittleEndian.PutUint64(e[ivOffset:], next)
			e[1] = 0
			if next%chunkEntries == 0 {
				e[1] = FlagForceChunkAfter
			}
			next++
		}
		if err := l.Append(batch...); err != nil {
			b.Fatal(err)
		}
		if err := l.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batchSize)/b.Elapsed().Seconds(), "entries/s")
}
