package api_test

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/internal/gov"
	"github.com/ledgerd/ledgerd/internal/recovery"
)

// TestGovRecoveryShares: a recovery member reads its encrypted share
// without authenticating, as in CCF; decrypted with its private key it
// recovers the node's ledger secret.
func TestGovRecoveryShares(t *testing.T) {
	priv, pub, err := recovery.NewEncryptionKey()
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{memberEncryptionKey: pub})
	c := e.anonymous
	id := gov.MemberID(e.memberDER)

	got := c.get(q("/gov/recovery/encrypted-shares/"+id, vGov)).expect(200, "").object()
	expectKeys(t, "encrypted share", got, "memberId", "encryptedShare")
	if got["memberId"] != id {
		t.Fatalf("memberId %v, want %s", got["memberId"], id)
	}
	enc, err := base64.StdEncoding.DecodeString(got["encryptedShare"].(string))
	if err != nil {
		t.Fatal(err)
	}
	key, err := recovery.ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	share, err := recovery.DecryptShare(key, enc)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := recovery.Recover([][]byte{share}, e.node.Reader.State())
	if err != nil || !bytes.Equal(secret, e.ids.LedgerSecret) {
		t.Fatalf("recovered %d bytes, %v; want the node's ledger secret", len(secret), err)
	}
	// Upper-case hex names the same member.
	c.get(q("/gov/recovery/encrypted-shares/"+strings.ToUpper(id), vGov)).expect(200, "")

	// The member lists its encryption key, as CCF's publicEncryptionKey.
	m := c.get(q("/gov/service/members/"+id, vGov)).expect(200, "").object()
	if m["publicEncryptionKey"] != string(pub) {
		t.Fatalf("member %v: publicEncryptionKey is not its key", m)
	}

	other := strings.Repeat("ab", 32)
	r := c.get(q("/gov/recovery/encrypted-shares/"+other, vGov))
	expectGovError(t, r, 404, "ResourceNotFound")
	if msg := r.errorMessage(); msg != "Recovery share not found for member "+other+"." {
		t.Fatalf("message %q", msg)
	}
	expectGovError(t, c.get(q("/gov/recovery/encrypted-shares/xyz", vGov)), 400, "InvalidResourceName")
	expectGovError(t, c.get("/gov/recovery/encrypted-shares/"+id), 400, "MissingApiVersionParameter")
	expectGovError(t, c.get(q("/gov/recovery/encrypted-shares/"+id, "2023-06-01-preview")), 400, "UnsupportedApiVersionValue")
}

// TestGovRecoveryNoShares: a service without recovery members has no
// shares to serve.
func TestGovRecoveryNoShares(t *testing.T) {
	e := newEnv(t, envOptions{})
	id := gov.MemberID(e.memberDER)
	expectGovError(t, e.anonymous.get(q("/gov/recovery/encrypted-shares/"+id, vGov)), 404, "ResourceNotFound")
	m := e.anonymous.get(q("/gov/service/members/"+id, vGov)).expect(200, "").object()
	if _, ok := m["publicEncryptionKey"]; ok {
		t.Fatalf("member without an encryption key: %v", m)
	}
}

// TestGovRecoverySubmit: a share must come in a member's signed
// recovery_share envelope; an open service is not waiting for recovery
// shares, so a signed submission gets CCF's 403 and changes nothing.
func TestGovRecoverySubmit(t *testing.T) {
	e := newEnv(t, envOptions{})
	id := gov.MemberID(e.memberDER)
	before := e.quiesce()
	key, kid := e.members[0].memberKey()
	share := []byte(`{"share":"AAAA"}`)
	unsigned := []byte{0xd2, 0x84, 0x40, 0xa0, 0xf6, 0x40}
	expectGovError(t, e.anonymous.do("POST", q("/gov/recovery/members/"+id+":recover", vGov), unsigned, "Content-Type", "application/cose"),
		401, "InvalidAuthenticationInfo")
	expectGovError(t, e.govPost("/gov/recovery/members/"+id+":recover", govMsg{key: key, kid: kid, msgType: "ballot", proposalID: id, payload: share}.sign(t)),
		401, "InvalidAuthenticationInfo")
	r := e.govPost("/gov/recovery/members/"+id+":recover", govMsg{key: key, kid: kid, msgType: "recovery_share", payload: share}.sign(t))
	expectGovError(t, r, 403, "ServiceNotWaitingForRecoveryShares")
	if msg := r.errorMessage(); msg != "Service is not waiting for recovery shares." {
		t.Fatalf("message %q", msg)
	}
	if last := e.quiesce(); last != before {
		t.Fatalf("a refused submission wrote: last seqno %d, was %d", last, before)
	}
	expectGovError(t, e.anonymous.post(q("/gov/recovery/members/"+id+":other", vGov), nil), 404, "ResourceNotFound")
	expectGovError(t, e.anonymous.post(q("/gov/recovery/members/nothex:recover", vGov), nil), 400, "InvalidResourceName")
	expectGovError(t, e.anonymous.post("/gov/recovery/members/"+id+":recover", nil), 400, "MissingApiVersionParameter")
	r = e.anonymous.get(q("/gov/recovery/members/"+id+":recover", vGov))
	expectGovError(t, r, 405, "UnsupportedHttpVerb")
}
