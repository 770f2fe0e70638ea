package node

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"testing"

	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// BenchmarkIndexSignature is a follower's work on a signature transaction
// in index, the Merkle tree aside: parse the entry, find and parse its
// PrimarySignature, and verify it over the root (the node certificate
// already known endorsed, as for every signature but a node's first).
func BenchmarkIndexSignature(b *testing.B) {
	ids, err := identity.LoadOrCreate(b.TempDir(), identity.Options{})
	if err != nil {
		b.Fatal(err)
	}
	root := sha256.Sum256([]byte("root"))
	writes, err := tables.SignRoot(ids.Node.Key, ids.Node.ID, ids.Node.CertPEM, 2, 10, root)
	if err != nil {
		b.Fatal(err)
	}
	block, err := aes.NewCipher(make([]byte, 32))
	if err != nil {
		b.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		b.Fatal(err)
	}
	raw, err := ledger.AppendEntry(nil, &ledger.Tx{View: 2, Seqno: 10, Maps: writes}, aead)
	if err != nil {
		b.Fatal(err)
	}
	v := tables.NewVerifier(ids.Service.Cert)
	b.ReportAllocs()
	for b.Loop() {
		e, err := ledger.ParseEntry(raw)
		if err != nil || !e.HasPublicMaps() {
			b.Fatal(err)
		}
		ps, err := signatureOf(e)
		if err != nil || ps == nil || ps.Seqno != 10 {
			b.Fatal(ps, err)
		}
		if err := v.Verify(ps, root); err != nil {
			b.Fatal(err)
		}
	}
}
