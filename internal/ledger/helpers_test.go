package ledger

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// testKey is a fixed ledger secret for tests.
var testKey = bytes.Repeat([]byte{0x42}, 32)

func testAEAD(tb testing.TB) cipher.AEAD {
	tb.Helper()
	block, err := aes.NewCipher(testKey)
	if err != nil {
		tb.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		tb.Fatal(err)
	}
	return aead
}

// testTx returns a small transaction with one public and one private map.
func testTx(seqno, view uint64, flags uint8) *Tx {
	return &Tx{
		View: view, Seqno: seqno, Flags: flags,
		ClaimsDigest:         [32]byte{1, 2, 3},
		CommitEvidenceDigest: [32]byte{4, 5, 6},
		Maps: []MapWrites{
			{Name: "records", Writes: []KV{{Key: []byte(fmt.Sprint(seqno)), Value: []byte(fmt.Sprintf("private %d", seqno))}}},
			{Name: "public:records", Writes: []KV{{Key: []byte("k"), Value: []byte(fmt.Sprintf("public %d", seqno))}}},
		},
	}
}

// entry serialises testTx(seqno, view, flags).
func entry(tb testing.TB, aead cipher.AEAD, seqno, view uint64, flags uint8) []byte {
	tb.Helper()
	raw, err := AppendEntry(nil, testTx(seqno, view, flags), aead)
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

// syntheticEntry builds a well-framed entry of about size bytes without
// encryption (the ledger never checks tags): for fixtures.
func syntheticEntry(seqno, view uint64, flags uint8, size int) []byte {
	size = max(size, minEntrySize+minPubDomain)
	raw := make([]byte, size)
	putHeader(raw, flags, uint64(size-EntryHeaderSize))
	binary.LittleEndian.PutUint64(raw[ivOffset:], seqno)
	binary.LittleEndian.PutUint32(raw[ivViewOffset:], uint32(view))
	binary.LittleEndian.PutUint64(raw[pubLenOffset:], minPubDomain)
	raw[pubOffset] = byte(WriteSetWithCommitEvidenceAndClaims)
	binary.LittleEndian.PutUint64(raw[pubOffset+1:], seqno)
	for i := pubOffset + minPubDomain; i < size; i++ {
		raw[i] = byte(seqno) ^ byte(i)
	}
	return raw
}

// plan describes entries to append: view and flags per seqno.
type planEntry struct {
	view  uint64
	flags uint8
}

// makeEntries serialises seqnos first.. with the given plan.
func makeEntries(tb testing.TB, first uint64, plan []planEntry) [][]byte {
	tb.Helper()
	aead := testAEAD(tb)
	out := make([][]byte, len(plan))
	for i, p := range plan {
		out[i] = entry(tb, aead, first+uint64(i), p.view, p.flags)
	}
	return out
}

// chunkedPlan returns n entries in view `view`, ending a chunk after every
// `every` entries.
func chunkedPlan(n, every int, view uint64) []planEntry {
	plan := make([]planEntry, n)
	for i := range plan {
		plan[i].view = view
		if every > 0 && (i+1)%every == 0 {
			plan[i].flags = FlagForceChunkAfter
		}
	}
	return plan
}

func openT(tb testing.TB, dir string) *Ledger {
	tb.Helper()
	l, err := Open(dir, Options{Logger: testLogger(tb)})
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	return l
}

// dirNames lists the file names in dir.
func dirNames(tb testing.TB, dir string) []string {
	tb.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}

// checkContents checks that l holds exactly want, from seqno first.
func checkContents(tb testing.TB, l *Ledger, first uint64, want [][]byte) {
	tb.Helper()
	if got := l.FirstSeqno(); got != first {
		tb.Fatalf("FirstSeqno = %d, want %d", got, first)
	}
	if got, wantLast := l.LastSeqno(), first+uint64(len(want))-1; got != wantLast {
		tb.Fatalf("LastSeqno = %d, want %d", got, wantLast)
	}
	for i, w := range want {
		seqno := first + uint64(i)
		got, err := l.Read(seqno)
		if err != nil {
			tb.Fatalf("Read(%d): %v", seqno, err)
		}
		if !bytes.Equal(got, w) {
			tb.Fatalf("Read(%d) differs from what was appended", seqno)
		}
		_, v, _ := EntrySeqnoView(w)
		if gv, err := l.View(seqno); err != nil || gv != v {
			tb.Fatalf("View(%d) = %d, %v; want %d", seqno, gv, err, v)
		}
	}
}

func filePath(dir, name string) string { return filepath.Join(dir, name) }
