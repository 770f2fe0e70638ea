package receipt_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/ledgerd/ledgerd/receipt"
)

// claimsVectorPath is a receipt with application claims returned by the
// real service (API 2023-01-18-preview), with its service certificate and
// the expected claims digest (the same as the receipt's).
const claimsVectorPath = "../testdata/acl-receipt-claims-2023-01-18-preview.json"

type claimsVector struct {
	ServiceCertificate   string          `json:"serviceCertificate"`
	ExpectedClaimsDigest string          `json:"expectedClaimsDigest"`
	Response             json.RawMessage `json:"response"`
}

func loadClaimsVector(t *testing.T) claimsVector {
	t.Helper()
	data, err := os.ReadFile(claimsVectorPath)
	if err != nil {
		t.Fatal(err)
	}
	var v claimsVector
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestClaimsVectorDigest(t *testing.T) {
	v := loadClaimsVector(t)
	claims, err := receipt.ParseApplicationClaims(v.Response)
	if err != nil {
		t.Fatal(err)
	}
	if len(claims) != 1 || claims[0].Kind != receipt.ClaimKindLedgerEntry {
		t.Fatalf("claims = %+v, want one LedgerEntry claim", claims)
	}
	d, err := receipt.ClaimsDigest(claims)
	if err != nil {
		t.Fatal(err)
	}
	if got := hexOf(d); got != v.ExpectedClaimsDigest {
		t.Fatalf("claims digest = %s, want %s", got, v.ExpectedClaimsDigest)
	}
	// LedgerEntryClaimsDigest is the same computation from the entry's data.
	e := claims[0].LedgerEntry
	key := mustB64(t, e.SecretKey)
	if got := hexOf(receipt.LedgerEntryClaimsDigest(e.CollectionID, e.Contents, key)); got != v.ExpectedClaimsDigest {
		t.Fatalf("LedgerEntryClaimsDigest = %s, want %s", got, v.ExpectedClaimsDigest)
	}
}

func TestClaimsVectorVerifies(t *testing.T) {
	v := loadClaimsVector(t)
	n, err := receipt.VerifyResponsePEM(v.Response, []byte(v.ServiceCertificate))
	if err != nil || n != 1 {
		t.Fatalf("VerifyResponsePEM = %d, %v; want 1 claim, nil", n, err)
	}
	r, err := receipt.Parse(v.Response)
	if err != nil {
		t.Fatal(err)
	}
	claims, err := receipt.ParseApplicationClaims(v.Response)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := receipt.ParseCertificatePEM([]byte(v.ServiceCertificate))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.VerifyWithClaims(cert, claims); err != nil {
		t.Fatalf("VerifyWithClaims: %v", err)
	}
}

// TestClaimsTamperedFail: changing any part of a claim (contents,
// collection, key, protocol) makes the claims check fail, while the receipt
// itself still verifies.
func TestClaimsTamperedFail(t *testing.T) {
	v := loadClaimsVector(t)
	r, err := receipt.Parse(v.Response)
	if err != nil {
		t.Fatal(err)
	}
	fresh := func() []receipt.ApplicationClaim {
		c, err := receipt.ParseApplicationClaims(v.Response)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	flip := func(s string) string { b := []byte(s); b[0] ^= 1; return string(b) }
	cases := map[string]func(c *receipt.LedgerEntryClaim){
		"contents":   func(c *receipt.LedgerEntryClaim) { c.Contents = flip(c.Contents) },
		"collection": func(c *receipt.LedgerEntryClaim) { c.CollectionID = flip(c.CollectionID) },
		"secretKey": func(c *receipt.LedgerEntryClaim) {
			k := mustB64(t, c.SecretKey)
			k[0] ^= 1
			c.SecretKey = b64(k)
		},
	}
	for name, tamper := range cases {
		claims := fresh()
		tamper(claims[0].LedgerEntry)
		if err := r.VerifyClaims(claims); !errors.Is(err, receipt.ErrClaimsMismatch) {
			t.Errorf("%s flipped: VerifyClaims = %v, want ErrClaimsMismatch", name, err)
		}
	}
	claims := fresh()
	claims[0].LedgerEntry.Protocol = "LedgerEntryV2"
	if err := r.VerifyClaims(claims); !errors.Is(err, receipt.ErrMalformed) {
		t.Errorf("unknown protocol: VerifyClaims = %v, want ErrMalformed", err)
	}
	if err := r.VerifyClaims(nil); !errors.Is(err, receipt.ErrMalformed) {
		t.Errorf("no claims: VerifyClaims = %v, want ErrMalformed", err)
	}
}

// TestClaimDigestKind: a ClaimDigest claim of an entry's LedgerEntryV1
// digest gives the same claims digest as the entry's LedgerEntry claim (the
// SDK's selective disclosure).
func TestClaimDigestKind(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	d1 := receipt.LedgerEntryV1Digest("c", "hello", key)
	got, err := receipt.ClaimsDigest([]receipt.ApplicationClaim{{
		Kind:   receipt.ClaimKindDigest,
		Digest: &receipt.ClaimDigest{Protocol: receipt.ProtocolLedgerEntry, Value: hexOf(d1)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if want := receipt.LedgerEntryClaimsDigest("c", "hello", key); got != want {
		t.Fatalf("digest claim gives %x, ledger entry claim %x", got, want)
	}
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// BenchmarkLedgerEntryClaimsDigest is the claims digest every append costs
// (1 KiB contents, as ledgerctl bench writes).
func BenchmarkLedgerEntryClaimsDigest(b *testing.B) {
	key := make([]byte, 32)
	contents := make([]byte, 1024)
	b.ReportAllocs()
	for b.Loop() {
		receipt.LedgerEntryClaimsDigestBytes([]byte("bench"), contents, key)
	}
}
