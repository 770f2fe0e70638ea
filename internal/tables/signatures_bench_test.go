package tables_test

import (
	"crypto/sha256"
	"testing"

	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// The per-signature work of a node: the primary's SignRoot, a follower's
// ParseSignature and Verify (with the node certificate known endorsed, as
// it is for every signature but a node's first).

func benchIdentities(b *testing.B) *identity.Identities {
	b.Helper()
	ids, err := identity.LoadOrCreate(b.TempDir(), identity.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return ids
}

func BenchmarkSignRoot(b *testing.B) {
	ids := benchIdentities(b)
	root := sha256.Sum256([]byte("root"))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := tables.SignRoot(ids.Node.Key, ids.Node.ID, ids.Node.CertPEM, 2, uint64(i+10), root); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseSignature(b *testing.B) {
	ids := benchIdentities(b)
	root := sha256.Sum256([]byte("root"))
	writes, err := tables.SignRoot(ids.Node.Key, ids.Node.ID, ids.Node.CertPEM, 2, 10, root)
	if err != nil {
		b.Fatal(err)
	}
	d := &ledger.Domain{Maps: writes}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok, err := tables.ParseSignature(d); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

func BenchmarkVerifySignature(b *testing.B) {
	ids := benchIdentities(b)
	root := sha256.Sum256([]byte("root"))
	writes, err := tables.SignRoot(ids.Node.Key, ids.Node.ID, ids.Node.CertPEM, 2, 10, root)
	if err != nil {
		b.Fatal(err)
	}
	ps, _, err := tables.ParseSignature(&ledger.Domain{Maps: writes})
	if err != nil {
		b.Fatal(err)
	}
	v := tables.NewVerifier(ids.Service.Cert)
	if err := v.Verify(ps, root); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Verify(ps, root); err != nil {
			b.Fatal(err)
		}
	}
}
