package node

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"testing"

	"github.com/ledgerd/ledgerd/internal/ledger"
)

// BenchmarkDeriveAppends is a follower's work per received user entry
// after the ledger write (index and derive, without the Merkle tree and
// the signature index): parse the entry, compute its leaf, decrypt its
// write set and execute it, then commit. 40 entries of 1 KiB per op, a
// Raft round under load; ns, B and allocs per entry.
func BenchmarkDeriveAppends(b *testing.B) {
	block, err := aes.NewCipher(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		b.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		b.Fatal(err)
	}
	const round = 40
	contents := bytes.Repeat([]byte{0x5A}, 1024)
	s := newState()
	var seqno uint64
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		raws := make([][]byte, round)
		for i := range raws {
			tx := &ledger.Tx{View: 2, Seqno: seqno + 1 + uint64(i), Maps: EntryWrites("subledger:0", contents)}
			if raws[i], err = ledger.AppendEntry(nil, tx, aead); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		for _, raw := range raws {
			e, err := ledger.ParseEntry(raw)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := leafOf(raw, e); err != nil {
				b.Fatal(err)
			}
			w, err := writesOf(e, aead)
			if err != nil {
				b.Fatal(err)
			}
			s.execute(e.View, e.Seqno, w)
		}
		seqno += round
		s.commit(seqno)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*round), "ns/entry")
	b.ReportMetric(0, "ns/op")
}
