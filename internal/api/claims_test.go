package api_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/receipt"
)

// TestReceiptApplicationClaims: from 2023-01-18-preview on, an entry's
// receipt carries its LedgerEntryV1 application claim, whose digest is the
// leaf's claims digest; the receipt verifies with the claims, and a flipped
// byte in them fails. Older versions keep their shape (no
// applicationClaims) and their receipts still verify, claims digest and all.
func TestReceiptApplicationClaims(t *testing.T) {
	e := newEnv(t, envOptions{})
	const contents = "claims: héllo \u2603"
	id := e.write(e.contributor, v2022, "claimed", contents)
	e.commit(id)
	for _, version := range []string{"2023-01-18-preview", "2024-12-09-preview", "2026-02-23"} {
		body := e.reader.get(q("/app/transactions/"+id.String()+"/receipt", version)).expect(200, "").body
		var resp struct {
			ApplicationClaims []receipt.ApplicationClaim `json:"applicationClaims"`
		}
		if err := json.Unmarshal(body, &resp); err != nil {
			t.Fatal(err)
		}
		if len(resp.ApplicationClaims) != 1 {
			t.Fatalf("%s: applicationClaims %s", version, body)
		}
		le := resp.ApplicationClaims[0].LedgerEntry
		if resp.ApplicationClaims[0].Kind != "LedgerEntry" || le == nil || le.CollectionID != "claimed" ||
			le.Contents != contents || le.Protocol != "LedgerEntryV1" {
			t.Fatalf("%s: claim %s", version, body)
		}
		if key, err := base64.StdEncoding.DecodeString(le.SecretKey); err != nil || len(key) != 32 {
			t.Fatalf("%s: secretKey %q: %v", version, le.SecretKey, err)
		}
		if n, err := receipt.VerifyResponsePEM(body, e.ids.Service.CertPEM); err != nil || n != 1 {
			t.Fatalf("%s: VerifyResponsePEM = %d, %v", version, n, err)
		}
		r, err := receipt.Parse(body)
		if err != nil {
			t.Fatal(err)
		}
		if r.LeafComponents.ClaimsDigest == strings.Repeat("0", 64) {
			t.Fatalf("%s: claims digest is zeros", version)
		}
		// One flipped byte anywhere in the claim's contents fails.
		tampered := bytes.Replace(body, []byte("claims: h"), []byte("claims: i"), 1)
		if _, err := receipt.VerifyResponsePEM(tampered, e.ids.Service.CertPEM); !errors.Is(err, receipt.ErrClaimsMismatch) {
			t.Fatalf("%s: tampered claims: %v, want ErrClaimsMismatch", version, err)
		}
	}
	// 2022-05-13: no applicationClaims, the same leaf, and it verifies.
	old := e.reader.get(q("/app/transactions/"+id.String()+"/receipt", v2022)).expect(200, "")
	if _, ok := old.object()["applicationClaims"]; ok {
		t.Fatalf("2022-05-13 receipt has applicationClaims: %s", old.body)
	}
	if err := receipt.VerifyPEM(old.body, e.ids.Service.CertPEM); err != nil {
		t.Fatal(err)
	}
	// A transaction without an entry (the signature after it) has no claims.
	next := id
	next.Seqno++
	sig := e.reader.get(q("/app/transactions/"+next.String()+"/receipt", "2024-12-09-preview")).expect(200, "")
	if _, ok := sig.object()["applicationClaims"]; ok {
		t.Fatalf("signature receipt has applicationClaims: %s", sig.body)
	}
}
