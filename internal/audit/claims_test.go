package audit_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/internal/audit"
	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// reseal rewrites the entry at l in dir's copy of its chunk file: edit
// changes its public domain or its decrypted private domain in place (same
// sizes), and the entry is encrypted again with the ledger secret of its
// seqno and its own IV, as a holder of the ledger secret could. The result
// authenticates, so only what the audit recomputes from the decrypted entry
// (or the next signature) can tell.
func reseal(t *testing.T, dir string, l located, edit func(e *ledger.Entry, plain []byte, maps []ledger.MapWrites)) {
	t.Helper()
	ids, err := identity.LoadOrCreate(dir, identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := tables.NewKeyring(ids.LedgerSecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := keys.AEAD(nil, l.seqno)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "ledger", filepath.Base(l.file))
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	raw := b[l.off : l.off+8+l.size]
	e, err := ledger.ParseEntry(raw)
	if err != nil {
		t.Fatal(err)
	}
	sealed := append(append([]byte(nil), e.Ciphertext...), e.Tag[:]...)
	plain, err := aead.Open(nil, e.IV[:], sealed, e.Public)
	if err != nil {
		t.Fatal(err)
	}
	maps, err := e.Decrypt(aead)
	if err != nil {
		t.Fatal(err)
	}
	edit(e, plain, maps)
	out := aead.Seal(nil, e.IV[:], plain, e.Public)
	copy(e.Ciphertext, out[:len(plain)])
	copy(raw[8:8+ledger.GCMTagSize], out[len(plain):])
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// flipIn flips the first byte of want's first occurrence in b.
func flipIn(t *testing.T, b, want []byte) {
	t.Helper()
	i := bytes.Index(b, want)
	if i < 0 || len(want) == 0 {
		t.Fatalf("%x not found", want)
	}
	b[i] ^= 0x01
}

// TestAuditRecomputesApplicationClaims: with the ledger secret, the audit
// decrypts every entry and recomputes its LedgerEntryV1 claims digest from
// the collection, contents and secret key; an entry resealed with altered
// claims (its key, its contents, its collection, or the digest in its
// header) authenticates, but fails the audit at its seqno, before any
// signature. Without the recomputation these fail at the next signature
// instead (and name the entry only through the node's Merkle tree file), so
// the reason must be the claims'.
func TestAuditRecomputesApplicationClaims(t *testing.T) {
	base := buildLedger(t, 120)
	opts, closeTree := auditOpts(t, base, true)
	opts.Claims = true
	rep, err := audit.Dir(filepath.Join(base, "ledger"), opts)
	closeTree()
	if err != nil {
		t.Fatal(err)
	}
	if rep.Claims != 120 {
		t.Fatalf("report: %d entries' claims recomputed, want 120", rep.Claims)
	}
	ents := locate(t, base)
	var user, sig located
	for _, e := range ents {
		if e.seqno < 20 || e.seqno > uint64(len(ents))-10 {
			continue
		}
		if e.publicLen > 200 && sig.seqno == 0 {
			sig = e // signatures have a large public domain
		} else if e.publicLen <= 81 && user.seqno == 0 {
			user = e
		}
	}
	if user.seqno == 0 || sig.seqno == 0 {
		t.Fatalf("fixture lacks targets: user=%d sig=%d", user.seqno, sig.seqno)
	}
	// The claims digest's offset in the public domain's fixed header.
	claimsAt := -1
	reseal(t, copyDir(t, base), user, func(e *ledger.Entry, _ []byte, _ []ledger.MapWrites) {
		claims, _, err := e.HeaderDigests()
		if err != nil {
			t.Fatal(err)
		}
		claimsAt = bytes.Index(e.Public, claims[:])
	})
	if claimsAt < 0 {
		t.Fatal("the user entry's claims digest is not in its header")
	}
	write := func(maps []ledger.MapWrites, name string) ledger.KV {
		for _, m := range maps {
			if m.Name == name && len(m.Writes) == 1 {
				return m.Writes[0]
			}
		}
		t.Fatalf("no %s write", name)
		return ledger.KV{}
	}
	cases := []struct {
		name   string
		target located
		edit   func(e *ledger.Entry, plain []byte, maps []ledger.MapWrites)
		reason string
	}{
		{"claims digest in the header", user, func(e *ledger.Entry, _ []byte, _ []ledger.MapWrites) {
			e.Public[claimsAt+7] ^= 0x01
		}, "application claims were altered"},
		{"secret key", user, func(_ *ledger.Entry, plain []byte, maps []ledger.MapWrites) {
			flipIn(t, plain, write(maps, tables.EntryClaimsMap).Value)
		}, "application claims were altered"},
		{"contents", user, func(_ *ledger.Entry, plain []byte, maps []ledger.MapWrites) {
			flipIn(t, plain, write(maps, tables.EntriesMap).Value)
		}, "application claims were altered"},
		{"collection of both maps", user, func(_ *ledger.Entry, plain []byte, maps []ledger.MapWrites) {
			// c0 -> b0 in the entry and its key: still a keyed entry, of another collection.
			coll := write(maps, tables.EntriesMap).Key
			for i := bytes.Index(plain, coll); i >= 0; {
				plain[i] ^= 0x01
				j := bytes.Index(plain[i+1:], coll)
				if j < 0 {
					break
				}
				i += 1 + j
			}
		}, "application claims were altered"},
		{"non-zero claims on a signature", sig, func(e *ledger.Entry, _ []byte, _ []ledger.MapWrites) {
			e.Public[claimsAt+31] ^= 0x01
		}, "writes no ledger entry with a claims key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := copyDir(t, base)
			reseal(t, dir, c.target, c.edit)
			// Without the node's tree, only the recomputation names the entry.
			opts, closeTree := auditOpts(t, dir, true)
			closeTree()
			opts.TreeLeaf = nil
			opts.Claims = true
			_, err := audit.Dir(filepath.Join(dir, "ledger"), opts)
			wantFailureAt(t, err, c.target.seqno)
			var f *audit.Failure
			if errors.As(err, &f); !strings.Contains(f.Reason, c.reason) {
				t.Fatalf("reason %q lacks %q", f.Reason, c.reason)
			}
			// With the secret but without Options.Claims the entry
			// authenticates (it was resealed) and the change is caught at
			// the next signature, as without the secret below.
			opts.Claims = false
			if _, err = audit.Dir(filepath.Join(dir, "ledger"), opts); err == nil {
				t.Fatal("the audit without Claims passed")
			} else if errors.As(err, &f); strings.Contains(f.Reason, "claims") && c.target.seqno != sig.seqno {
				t.Fatalf("without Claims, reason %q", f.Reason)
			}
			// Without the ledger secret the claims are not recomputed: the
			// change is caught at the next signature (named from the tree).
			err = runAudit(t, dir, false)
			wantFailureAt(t, err, c.target.seqno)
			if errors.As(err, &f); strings.Contains(f.Reason, "claims") {
				t.Fatalf("without the secret, reason %q", f.Reason)
			}
		})
	}
}
