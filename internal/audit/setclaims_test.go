package audit_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/audit"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/node"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// TestAuditEndpointClaimsDigest: a transaction whose user-defined endpoint
// set a claims digest (ccf.rpc.setClaimsDigest, recorded in the write set
// as tables.ClaimsDigestMap) carries that digest in its leaf, and the audit
// with Options.Claims accepts it (it would fail as a non-zero digest on a
// transaction without an entry otherwise); a changed digest in the header
// or in the recorded write fails, and a forged non-zero digest on an
// application transaction without the record still fails.
func TestAuditEndpointClaimsDigest(t *testing.T) {
	dir := t.TempDir()
	n := openFixtureNode(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	digest := sha256.Sum256([]byte("alice transferred 5 from a to b"))
	app := func(v string) ledger.MapWrites {
		return ledger.MapWrites{Name: "app.accounts", Writes: []ledger.KV{{Key: []byte("a"), Value: []byte(v)}}}
	}
	submit := func(w []ledger.MapWrites) node.TxID {
		f, err := n.Submit(w)
		if err != nil {
			t.Fatal(err)
		}
		id, err := f.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.WaitCommitted(ctx, id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	submit(node.EntryWrites("c", []byte("before")))
	set := submit([]ledger.MapWrites{app("1"), tables.ClaimsDigestWrites(digest)})
	plain := submit([]ledger.MapWrites{app("2")})
	submit(node.EntryWrites("c", []byte("after")))
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	var setAt, plainAt located
	for _, e := range locate(t, dir) {
		switch e.seqno {
		case set.Seqno:
			setAt = e
		case plain.Seqno:
			plainAt = e
		}
	}
	if setAt.seqno == 0 || plainAt.seqno == 0 {
		t.Fatalf("transactions %s and %s not found in the ledger", set, plain)
	}
	// The endpoint-set digest is the leaf's, in the entry's header.
	claimsAt := -1
	reseal(t, copyDir(t, dir), setAt, func(e *ledger.Entry, _ []byte, _ []ledger.MapWrites) {
		claims, _, err := e.HeaderDigests()
		if err != nil {
			t.Fatal(err)
		}
		if claims != digest {
			t.Fatalf("header claims digest %x, the endpoint set %x", claims, digest)
		}
		claimsAt = bytes.Index(e.Public, claims[:])
	})

	opts, closeTree := auditOpts(t, dir, true)
	opts.Claims = true
	_, err := audit.Dir(filepath.Join(dir, "ledger"), opts)
	closeTree()
	if err != nil {
		t.Fatalf("audit with Claims of a ledger with an endpoint-set claims digest: %v", err)
	}

	cases := []struct {
		name   string
		target located
		edit   func(e *ledger.Entry, plain []byte, maps []ledger.MapWrites)
		reason string
	}{
		{"header digest of the endpoint's transaction", setAt, func(e *ledger.Entry, _ []byte, _ []ledger.MapWrites) {
			e.Public[claimsAt+3] ^= 0x01
		}, "the claims digest its user-defined endpoint set"},
		{"recorded digest of the endpoint's transaction", setAt, func(_ *ledger.Entry, plain []byte, _ []ledger.MapWrites) {
			flipIn(t, plain, digest[:])
		}, "the claims digest its user-defined endpoint set"},
		{"forged digest on a transaction without the record", plainAt, func(e *ledger.Entry, _ []byte, _ []ledger.MapWrites) {
			e.Public[claimsAt+31] ^= 0x01
		}, "writes no ledger entry with a claims key and no claims digest set by a user-defined endpoint"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := copyDir(t, dir)
			reseal(t, d, c.target, c.edit)
			opts, closeTree := auditOpts(t, d, true)
			closeTree()
			opts.TreeLeaf = nil
			opts.Claims = true
			_, err := audit.Dir(filepath.Join(d, "ledger"), opts)
			wantFailureAt(t, err, c.target.seqno)
			var f *audit.Failure
			if errors.As(err, &f); !strings.Contains(f.Reason, c.reason) {
				t.Fatalf("reason %q lacks %q", f.Reason, c.reason)
			}
		})
	}
}
