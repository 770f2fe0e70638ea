package tables_test

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/tables"
)

func signed(t *testing.T) (*identity.Identities, *tables.PrimarySignature, [32]byte) {
	t.Helper()
	ids, err := identity.LoadOrCreate(t.TempDir(), identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	root := sha256.Sum256([]byte("root"))
	writes, err := tables.SignRoot(ids.Node.Key, ids.Node.ID, ids.Node.CertPEM, 2, 10, root)
	if err != nil {
		t.Fatal(err)
	}
	ps, ok, err := tables.ParseSignature(&ledger.Domain{Maps: writes})
	if err != nil || !ok {
		t.Fatalf("ParseSignature: %v %v", ok, err)
	}
	return ids, ps, root
}

func TestSignatureRoundTrip(t *testing.T) {
	ids, ps, root := signed(t)
	if ps.Seqno != 10 || ps.View != 2 || ps.Node != ids.Node.ID {
		t.Fatalf("payload %+v", ps)
	}
	v := tables.NewVerifier(ids.Service.Cert)
	for range 2 { // the second time from the verifier's cache
		if err := v.Verify(ps, root); err != nil {
			t.Fatal(err)
		}
	}
	if err := tables.VerifySignature(ps, root, ids.Service.Cert); err != nil {
		t.Fatal(err)
	}
}

func TestSignatureRejections(t *testing.T) {
	ids, ps, root := signed(t)
	other, err := identity.LoadOrCreate(t.TempDir(), identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	v := tables.NewVerifier(ids.Service.Cert)
	wrongRoot := root
	wrongRoot[0] ^= 1
	if err := v.Verify(ps, wrongRoot); err == nil {
		t.Error("a different root verified")
	}
	sig, _ := base64.StdEncoding.DecodeString(ps.Sig)
	sig[len(sig)-1] ^= 1
	bad := *ps
	bad.Sig = base64.StdEncoding.EncodeToString(sig)
	if err := v.Verify(&bad, root); err == nil {
		t.Error("a modified signature verified")
	}
	bad = *ps
	bad.Node = strings.Repeat("0", 64)
	if err := v.Verify(&bad, root); err == nil {
		t.Error("a wrong node id verified")
	}
	if err := tables.NewVerifier(other.Service.Cert).Verify(ps, root); err == nil {
		t.Error("a node certificate of another service verified")
	}
	bad = *ps
	bad.Cert = string(other.Node.CertPEM)
	if err := v.Verify(&bad, root); err == nil {
		t.Error("a certificate not endorsed by this service verified")
	}
}

// TestValuesAsWritten pins the JSON of the values the node and gov write,
// byte for byte as the ledgers written before these types existed hold them.
func TestValuesAsWritten(t *testing.T) {
	for _, c := range []struct {
		v    any
		want string
	}{
		{tables.ServiceInfo{Cert: "-----BEGIN CERTIFICATE-----\nA<B>\n", Status: tables.ServiceOpen}, `{"cert":"-----BEGIN CERTIFICATE-----\nA\u003cB\u003e\n","status":"Open"}`},
		{tables.NodeInfo{Cert: "c", Status: tables.NodeTrusted}, `{"cert":"c","status":"Trusted"}`},
		{tables.MemberInfo{Status: tables.MemberActive}, `{"status":"Active"}`},
		{tables.UserInfo{AssignedRole: "Reader"}, `{"assignedRole":"Reader"}`},
	} {
		if got := string(tables.Value(c.v)); got != c.want {
			t.Errorf("%T: %s, want %s", c.v, got, c.want)
		}
	}
}

// A signature whose node id is not that of its certificate's key is refused,
// whether the verifier meets the certificate for the first time or has it
// cached, and refusing it leaves the certificate's own id accepted.
func TestSignatureNodeIDChecked(t *testing.T) {
	ids, ps, root := signed(t)
	other, err := identity.LoadOrCreate(t.TempDir(), identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	bad := *ps
	bad.Node = other.Node.ID // a real node id, of another key
	v := tables.NewVerifier(ids.Service.Cert)
	for _, when := range []string{"first", "cached"} {
		if err := v.Verify(&bad, root); err == nil || !strings.Contains(err.Error(), "does not match the certificate's key") {
			t.Errorf("%s: another node's id: %v", when, err)
		}
	}
	if err := v.Verify(ps, root); err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(&bad, root); err == nil {
		t.Error("another node's id verified after the right one")
	}
	upper := *ps
	upper.Root = strings.ToUpper(ps.Root) // the root, but not as CCF writes it
	if err := v.Verify(&upper, root); err == nil {
		t.Error("an upper-case root verified")
	}
}
