package api_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/auth"
	"github.com/ledgerd/ledgerd/internal/auth/authtest"
)

func userPath(version, id string) string { return q("/app/users/"+id, version) }

func TestUserManagement(t *testing.T) {
	e := newEnv(t, envOptions{})
	bob := newCredential(t, "bob")
	bobClient := e.client(&bob)
	for _, version := range []string{v01, v2022, vNewer} {
		e.t = t
		// Unknown user.
		bobClient.post(q("/app/transactions", version), map[string]string{"contents": "x"}).expect(403, "NotAllowed")
		e.admin.get(userPath(version, bob.userID())).expect(404, "ResourceNotFound")
		// Create as Reader with merge-patch (2022+) or JSON (0.1-preview).
		ct := "application/merge-patch+json"
		if version == v01 {
			ct = "application/json"
		}
		r := e.admin.do("PATCH", userPath(version, bob.userID()), `{"assignedRole":"Reader"}`, "Content-Type", ct).expect(200, "")
		if want := `{"assignedRole":"Reader","userId":"` + bob.userID() + `"}`; string(r.body) != want {
			t.Fatalf("PATCH body %s, want %s", r.body, want)
		}
		bobClient.get(q("/app/collections", version)).expect(200, "")
		bobClient.post(q("/app/transactions", version), map[string]string{"contents": "x"}).expect(403, "NotAllowed")
		// Promote: the next request may write, on the same connection.
		e.admin.do("PATCH", userPath(version, bob.userID()), `{"assignedRole":"Contributor"}`, "Content-Type", ct).expect(200, "")
		bobClient.post(q("/app/transactions", version), map[string]string{"contents": "x"}).expect(200, "")
		got := e.admin.get(userPath(version, bob.userID())).expect(200, "").object()
		if got["assignedRole"] != "Contributor" || got["userId"] != bob.userID() {
			t.Fatalf("GET user %v", got)
		}
		// The id may be given in lower case and %3A-encoded.
		encoded := strings.ReplaceAll(strings.ToLower(bob.userID()), ":", "%3A")
		e.admin.get(userPath(version, encoded)).expect(200, "")
		// Delete: 204 with an empty body, effective on the next request.
		d := e.admin.do("DELETE", userPath(version, encoded), nil, "Content-Length", "0").expect(204, "")
		if len(d.body) != 0 {
			t.Fatalf("DELETE body %q", d.body)
		}
		bobClient.get(q("/app/collections", version)).expect(403, "NotAllowed")
		e.admin.do("DELETE", userPath(version, bob.userID()), nil).expect(404, "ResourceNotFound")
	}
}

func TestRoles(t *testing.T) {
	e := newEnv(t, envOptions{})
	id := e.write(e.contributor, v2022, "", "x")
	e.commit(id)
	bobPath := userPath(v2022, newCredential(t, "bob").userID())
	type check struct {
		method, path string
		body         any
		need         int // 1 Reader, 2 Contributor, 3 Administrator
	}
	checks := []check{
		{"GET", q("/app/transactions/"+id.String(), v2022), nil, 1},
		{"GET", q("/app/transactions/"+id.String()+"/status", v2022), nil, 1},
		{"GET", q("/app/transactions/"+id.String()+"/receipt", v2022), nil, 1},
		{"GET", q("/app/transactions/current", v2022), nil, 1},
		{"GET", q("/app/transactions", v2022), nil, 1},
		{"GET", q("/app/collections", v2022), nil, 1},
		{"GET", q("/app/governance/members", v2022), nil, 1},
		{"GET", q("/app/governance/constitution", v2022), nil, 1},
		{"GET", q("/app/enclaveQuotes", v2022), nil, 1},
		{"POST", q("/app/transactions", v2022), map[string]string{"contents": "x"}, 2},
		{"GET", q("/app/users", vNewer), nil, 3},
		{"PATCH", bobPath, map[string]string{"assignedRole": "Reader"}, 3},
		{"GET", bobPath, nil, 3},
		{"DELETE", bobPath, nil, 3},
	}
	callers := []struct {
		c     *client
		level int
	}{{e.reader, 1}, {e.contributor, 2}, {e.admin, 3}}
	for _, ch := range checks {
		e.anonymous.do(ch.method, ch.path, ch.body).expect(401, "InvalidAuthenticationInfo")
		r := e.stranger.do(ch.method, ch.path, ch.body).expect(403, "NotAllowed")
		if want := "Not allowed to call " + ch.method + " " + strings.Split(ch.path, "?")[0]; r.errorMessage() != want {
			t.Errorf("403 message %q, want %q", r.errorMessage(), want)
		}
		for _, caller := range callers {
			r := caller.c.do(ch.method, ch.path, ch.body)
			if caller.level < ch.need {
				r.expect(403, "NotAllowed")
			} else if r.status/100 != 2 {
				t.Errorf("%s %s by level %d: %d %s", ch.method, ch.path, caller.level, r.status, r.body)
			}
		}
	}
	// A consortium member is not a ledger user.
	e.member.get(q("/app/collections", v2022)).expect(403, "NotAllowed")
}

func TestLastAdministrator(t *testing.T) {
	e := newEnv(t, envOptions{})
	adminID := e.admin.id
	e.admin.do("PATCH", userPath(v2022, adminID), map[string]string{"assignedRole": "Reader"}).expect(409, "LastAdministrator")
	e.admin.do("DELETE", userPath(v2022, adminID), nil).expect(409, "LastAdministrator")
	// Re-asserting the role is fine.
	e.admin.do("PATCH", userPath(v2022, adminID), map[string]string{"assignedRole": "Administrator"}).expect(200, "")
	// With a second Administrator, the first may step down.
	e.admin.do("PATCH", userPath(v2022, e.contributor.id), map[string]string{"assignedRole": "Administrator"}).expect(200, "")
	e.admin.do("DELETE", userPath(v2022, adminID), nil).expect(204, "")
	e.admin.get(q("/app/collections", v2022)).expect(403, "NotAllowed")
	e.contributor.do("DELETE", userPath(v2022, e.contributor.id), nil).expect(409, "LastAdministrator")
}

func TestUserListsAndMultiRole(t *testing.T) {
	e := newEnv(t, envOptions{})
	bob := newCredential(t, "bob").userID()
	// GET /app/users exists from 2024-01-26-preview.
	e.admin.get(q("/app/users", v2022)).expect(400, "UnsupportedApiVersionValue")
	var list struct {
		LedgerUsers []map[string]any `json:"ledgerUsers"`
	}
	e.admin.get(q("/app/users", "2024-01-26-preview")).expect(200, "").decode(&list)
	if len(list.LedgerUsers) != 3 || list.LedgerUsers[0]["assignedRole"] == nil {
		t.Fatalf("users %v", list.LedgerUsers)
	}
	// 2024-08-22-preview speaks assignedRoles on /app/users.
	r := e.admin.do("PATCH", userPath("2024-08-22-preview", bob), `{"assignedRoles":["Reader","Contributor"]}`,
		"Content-Type", "application/merge-patch+json").expect(200, "")
	if want := `{"assignedRoles":["Reader","Contributor"],"userId":"` + bob + `"}`; string(r.body) != want {
		t.Fatalf("multi-role PATCH %s, want %s", r.body, want)
	}
	e.admin.do("PATCH", userPath("2024-08-22-preview", bob), `{"assignedRole":"Reader"}`).expect(400, "InvalidInput")
	// /app/ledgerUsers from 2024-12-09-preview, while /app/users stays single-role.
	e.admin.get(q("/app/ledgerUsers/"+bob, v2022)).expect(400, "UnsupportedApiVersionValue")
	if got := e.admin.get(q("/app/ledgerUsers/"+bob, vNewer)).expect(200, "").object()["assignedRoles"]; len(got.([]any)) != 2 {
		t.Fatalf("ledgerUsers roles %v", got)
	}
	if got := e.admin.get(userPath(vNewer, bob)).expect(200, "").object()["assignedRole"]; got != "Contributor" {
		t.Fatalf("users role %v", got)
	}
	e.admin.do("PATCH", q("/app/ledgerUsers/"+bob, vNewer), `{"assignedRoles":[]}`).expect(400, "InvalidInput")
	e.admin.do("PATCH", q("/app/ledgerUsers/"+bob, vNewer), `{"assignedRoles":"Reader"}`).expect(400, "InvalidInput")
	e.admin.get(q("/app/ledgerUsers", vNewer)).expect(200, "")
	e.admin.do("DELETE", q("/app/ledgerUsers/"+bob, vNewer), nil).expect(204, "")
}

func TestRSAClientCertificate(t *testing.T) {
	e := newEnv(t, envOptions{})
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rsa user"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cred := credential{cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, der: der}
	c := e.client(&cred)
	c.get(q("/app/collections", v2022)).expect(403, "NotAllowed")
	e.admin.do("PATCH", userPath(v2022, cred.userID()), map[string]string{"assignedRole": "Contributor"}).expect(200, "")
	e.write(c, v2022, "", "from an RSA user")
}

func TestJWTUser(t *testing.T) {
	issuer := authtest.NewIssuer(t, "ES256")
	jwks := issuer.JWKSFile(t)
	v, err := auth.NewJWTVerifier([]auth.IssuerConfig{{Issuer: authtest.IssuerURL, Audience: authtest.Audience, JWKSFile: jwks}}, auth.JWTOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{jwt: v})
	const oid = "6696d1bc-6012-47da-8556-ab4c747999c9"
	token := issuer.Sign(authtest.Claims(authtest.IssuerURL, authtest.Audience, oid, time.Now()))
	user := e.withBearer(token)
	user.get(q("/app/collections", v2022)).expect(403, "NotAllowed")
	e.admin.do("PATCH", userPath(v2022, oid), map[string]string{"assignedRole": "Contributor"}).expect(200, "")
	e.write(user, v2022, "", "from a JWT user")

	expired := authtest.Claims(authtest.IssuerURL, authtest.Audience, oid, time.Now().Add(-3*time.Hour))
	e.withBearer(issuer.Sign(expired)).get(q("/app/collections", v2022)).expect(401, "InvalidAuthenticationInfo")
	wrongAud := authtest.Claims(authtest.IssuerURL, "https://elsewhere", oid, time.Now())
	e.withBearer(issuer.Sign(wrongAud)).get(q("/app/collections", v2022)).expect(401, "InvalidAuthenticationInfo")
	other := authtest.NewIssuer(t, "ES256")
	e.withBearer(other.Sign(authtest.Claims(authtest.IssuerURL, authtest.Audience, oid, time.Now()))).
		get(q("/app/collections", v2022)).expect(401, "InvalidAuthenticationInfo")
	e.withBearer("not.a.jwt").get(q("/app/collections", v2022)).expect(401, "InvalidAuthenticationInfo")
	// A bad token is not rescued by a good client certificate.
	both := e.client(nil)
	both.hc = e.admin.hc
	both.bearer = "garbage"
	both.get(q("/app/collections", v2022)).expect(401, "InvalidAuthenticationInfo")
	// Other schemes are refused.
	e.admin.do("GET", q("/app/collections", v2022), nil, "Authorization", "Basic Zm9vOmJhcg==").expect(401, "InvalidAuthenticationInfo")

	// Without a verifier, bearer tokens are refused.
	plain := newEnv(t, envOptions{})
	plain.withBearer(token).get(q("/app/collections", v2022)).expect(401, "InvalidAuthenticationInfo")
}

// TestPatchUserReadBack checks that a user read with GET can be sent back
// as the PATCH body (the SDKs' docstrings show the read-only userId in the
// body), that {} is a merge patch that changes nothing, and that a userId
// other than the path's is refused.
func TestPatchUserReadBack(t *testing.T) {
	e := newEnv(t, envOptions{})
	bob := newCredential(t, "bob")
	const mp = "application/merge-patch+json"
	for _, tc := range []struct{ version, path, field string }{
		{v2022, "/app/users/", "assignedRole"},
		{v01, "/app/users/", "assignedRole"},
		{vNewer, "/app/ledgerUsers/", "assignedRoles"},
	} {
		path := q(tc.path+bob.userID(), tc.version)
		// {} for a user that does not exist: a user needs a role.
		r := e.admin.do("PATCH", path, `{}`, "Content-Type", mp).expect(400, "InvalidInput")
		if !strings.Contains(r.errorMessage(), tc.field) {
			t.Errorf("%s {} for a new user: %q does not name %s", tc.version, r.errorMessage(), tc.field)
		}
		e.admin.get(path).expect(404, "ResourceNotFound")

		first := map[string]any{"assignedRole": "Reader"}
		if tc.field == "assignedRoles" {
			first = map[string]any{"assignedRoles": []string{"Reader"}}
		}
		e.admin.do("PATCH", path, first, "Content-Type", mp).expect(200, "")
		got := e.admin.get(path).expect(200, "")
		// GET → PATCH: the body read back is accepted and changes nothing.
		back := e.admin.do("PATCH", path, got.body, "Content-Type", mp).expect(200, "")
		if string(back.body) != string(got.body) {
			t.Errorf("%s: PATCH of the GET body answered %s, want %s", tc.version, back.body, got.body)
		}
		// userId in another letter case is the same user.
		obj := got.object()
		obj["userId"] = strings.ToLower(bob.userID())
		e.admin.do("PATCH", path, obj, "Content-Type", mp).expect(200, "")

		// {} changes nothing, and answers the user as it is.
		empty := e.admin.do("PATCH", path, `{}`, "Content-Type", mp).expect(200, "")
		if string(empty.body) != string(got.body) {
			t.Errorf("%s: PATCH {} answered %s, want %s", tc.version, empty.body, got.body)
		}
		// The read body with a changed role changes the role.
		if tc.field == "assignedRoles" {
			obj["assignedRoles"] = []string{"Contributor"}
		} else {
			obj["assignedRole"] = "Contributor"
		}
		e.admin.do("PATCH", path, obj, "Content-Type", mp).expect(200, "")
		if e.admin.get(path).expect(200, "").object()["userId"] != bob.userID() {
			t.Fatalf("%s: user id changed", tc.version)
		}
		e.client(&bob).post(q("/app/transactions", tc.version), map[string]string{"contents": "x"}).expect(200, "")

		// Another user's id in the body is refused, and changes nothing.
		obj["userId"] = e.reader.id
		if tc.field == "assignedRoles" {
			obj["assignedRoles"] = []string{"Administrator"}
		} else {
			obj["assignedRole"] = "Administrator"
		}
		r = e.admin.do("PATCH", path, obj, "Content-Type", mp).expect(400, "InvalidInput")
		if msg := r.errorMessage(); !strings.Contains(msg, "userId") || !strings.Contains(msg, e.reader.id) || !strings.Contains(msg, bob.userID()) {
			t.Errorf("%s: differing userId: %q", tc.version, msg)
		}
		e.admin.do("PATCH", path, map[string]any{"userId": e.reader.id}, "Content-Type", mp).expect(400, "InvalidInput")
		for _, u := range []string{bob.userID(), e.reader.id} {
			if body := e.admin.get(q(tc.path+u, tc.version)).expect(200, "").body; strings.Contains(string(body), "Administrator") {
				t.Fatalf("%s: a refused PATCH changed a role: %s", tc.version, body)
			}
		}
		e.admin.do("DELETE", path, nil).expect(204, "")
	}
}
