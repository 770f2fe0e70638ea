package api_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/auth"
	"github.com/ledgerd/ledgerd/internal/auth/authtest"
)

// A user id in a path is percent-decoded once, by the HTTP server:
// "a%2541" names the user "a%41", never "aA" (issue 9, item 14).
func TestUserIDDecodedOnce(t *testing.T) {
	e := newEnv(t, envOptions{})
	r := e.admin.do("PATCH", userPath(v2022, "a%2541"), map[string]string{"assignedRole": "Reader"}).expect(200, "")
	if got := r.object()["userId"]; got != "a%41" {
		t.Fatalf("PATCH /app/users/a%%2541 created user %q, want %q", got, "a%41")
	}
	e.admin.get(userPath(v2022, "aA")).expect(404, "ResourceNotFound")
	got := e.admin.get(userPath(v2022, "a%2541")).expect(200, "").object()
	if got["userId"] != "a%41" {
		t.Fatalf("GET /app/users/a%%2541 = %v, want user a%%41", got)
	}
}

// Queries that would be misread are refused, and write nothing: an
// unescaped ';' (Go's server drops it and what follows), a malformed
// escape, and known parameters in another letter case, which would
// otherwise be ignored and send the write to subledger:0 (issue 9, item 12).
// Collection ids with control or bidirectional formatting characters are
// refused (item 13).
func TestMisreadQueriesRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	last := e.quiesce()
	post := "/app/transactions?api-version=" + v2022
	for name, path := range map[string]string{
		"unescaped semicolon":   post + "&collectionId=audit;2026",
		"semicolon separator":   post + ";collectionId=audit",
		"malformed escape":      post + "&collectionId=a%zz",
		"CollectionId":          post + "&CollectionId=audit",
		"collectionid":          post + "&collectionid=audit",
		"Api-Version":           "/app/transactions?Api-Version=" + v2022 + "&api-version=" + v2022,
		"NUL in collection":     post + "&collectionId=a%00b",
		"newline in collection": post + "&collectionId=a%0Ab",
		"escape in collection":  post + "&collectionId=a%1B%5B31mb",
		"DEL in collection":     post + "&collectionId=a%7Fb",
		"C1 in collection":      post + "&collectionId=a%C2%9Bb",
		"U+202E in collection":  post + "&collectionId=a%E2%80%AEb",
		"U+2066 in collection":  post + "&collectionId=a%E2%81%A6b",
		"U+200F in collection":  post + "&collectionId=a%E2%80%8Fb",
	} {
		t.Run(name, func(t *testing.T) {
			e.t = t
			e.contributor.post(path, map[string]string{"contents": "x"}).expect(400, "InvalidQueryParameterValue")
		})
	}
	e.t = t
	e.reader.get("/app/transactions/current?api-version="+v2022+"&collectionid=audit").expect(400, "InvalidQueryParameterValue")
	e.reader.get("/app/transactions?api-version="+v2022+"&FromTransactionId=2.1").expect(400, "InvalidQueryParameterValue")
	e.admin.do("PATCH", userPath(v2022, "a%E2%80%AEb"), map[string]string{"assignedRole": "Reader"}).expect(400, "InvalidInput")
	if got := e.quiesce(); got != last {
		t.Fatalf("refused requests appended transactions: last seqno %d, was %d", got, last)
	}
	// A ';' percent-encoded is part of the id.
	e.write(e.contributor, v2022, "audit;2026", "x")
}

// Collection ids are opaque byte strings, as CCF's keys are: the NFC and NFD
// spellings of "café" are two collections (docs/acl-api.md).
func TestCollectionIDsNotNormalised(t *testing.T) {
	e := newEnv(t, envOptions{})
	nfc, nfd := "caf\u00e9", "cafe\u0301"
	e.commit(e.write(e.contributor, v2022, nfc, "nfc"))
	e.commit(e.write(e.contributor, v2022, nfd, "nfd"))
	for coll, want := range map[string]string{nfc: "nfc", nfd: "nfd"} {
		got := e.reader.get(q("/app/transactions/current", v2022, "collectionId", coll)).expect(200, "").object()
		if got["contents"] != want {
			t.Errorf("current of %q = %v, want contents %q", coll, got, want)
		}
	}
}

// datedCredential is a client certificate valid from notBefore to notAfter.
func datedCredential(t *testing.T, cn string, notBefore, notAfter time.Time) credential {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return credential{cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, der: der}
}

// A registered user whose certificate has expired or is not yet valid is
// refused with 401, as CCF's is_cert_valid_now refuses it (issue 9, item 9).
func TestCertificateOutsideValidityRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	now := time.Now()
	for name, tc := range map[string]struct {
		cred credential
		says string
	}{
		"expired":       {datedCredential(t, "expired", now.Add(-48*time.Hour), now.Add(-time.Hour)), "expired at"},
		"not yet valid": {datedCredential(t, "future", now.Add(time.Hour), now.Add(48*time.Hour)), "valid from"},
	} {
		t.Run(name, func(t *testing.T) {
			e.t = t
			e.admin.do("PATCH", userPath(v2022, tc.cred.userID()), map[string]string{"assignedRole": "Administrator"}).expect(200, "")
			c := e.client(&tc.cred)
			r := c.get(q("/app/collections", v2022)).expect(401, "InvalidAuthenticationInfo")
			if msg := r.errorMessage(); !strings.Contains(msg, "certificate") || !strings.Contains(msg, tc.says) {
				t.Errorf("message %q does not say the certificate %s", msg, tc.says)
			}
			c.post(q("/app/transactions", v2022), map[string]string{"contents": "x"}).expect(401, "InvalidAuthenticationInfo")
		})
	}
}

// lockedBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// A rejected bearer token gets a generic 401 that quotes nothing of the
// ledger's configuration (audience, issuer, key ids); the reason goes to the
// log, without the token (issue 9, item 11).
func TestTokenRejectionIsGeneric(t *testing.T) {
	const audience = "https://secret-audience.ledgerd.test"
	issuer := authtest.NewIssuer(t, "ES256")
	v, err := auth.NewJWTVerifier([]auth.IssuerConfig{{Issuer: authtest.IssuerURL, Audience: audience, JWKSFile: issuer.JWKSFile(t)}},
		auth.JWTOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	e := newEnv(t, envOptions{jwt: v, logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	now := time.Now()
	const oid = "6696d1bc-6012-47da-8556-ab4c747999c9"
	other := authtest.NewIssuer(t, "ES256")
	tokens := map[string]string{
		"wrong audience": issuer.Sign(authtest.Claims(authtest.IssuerURL, "https://elsewhere.test", oid, now)),
		"unknown kid":    issuer.SignWithHeader(map[string]any{"kid": "kid-nobody-has"}, authtest.Claims(authtest.IssuerURL, audience, oid, now)),
		"wrong key":      other.SignWithHeader(map[string]any{"kid": issuer.KeyID()}, authtest.Claims(authtest.IssuerURL, audience, oid, now)),
		"unknown issuer": issuer.Sign(authtest.Claims("https://other-issuer.test/", audience, oid, now)),
		"not yet valid":  issuer.Sign(authtest.Claims(authtest.IssuerURL, audience, oid, now.Add(time.Hour))),
	}
	for name, token := range tokens {
		t.Run(name, func(t *testing.T) {
			e.t = t
			r := e.withBearer(token).get(q("/app/collections", v2022)).expect(401, "InvalidAuthenticationInfo")
			for _, secret := range []string{audience, authtest.IssuerURL, issuer.KeyID(), "kid-nobody-has", "other-issuer", "elsewhere"} {
				if strings.Contains(string(r.body), secret) {
					t.Errorf("401 body %s quotes %q", r.body, secret)
				}
			}
		})
	}
	e.t = t
	log := logs.String()
	for _, want := range []string{"request not authenticated", "audience", "kid-nobody-has", "other-issuer"} {
		if !strings.Contains(log, want) {
			t.Errorf("the log does not say %q:\n%s", want, log)
		}
	}
	for name, token := range tokens {
		if strings.Contains(log, token[strings.LastIndexByte(token, '.')+1:]) {
			t.Errorf("the log holds the %s token", name)
		}
	}
}

// A bearer token's lifetime is bounded: exp=1e300 no longer makes a token
// that never expires (issue 9, item 10; 24 h past iat by default).
func TestTokenLifetimeBounded(t *testing.T) {
	issuer := authtest.NewIssuer(t, "ES256")
	v, err := auth.NewJWTVerifier([]auth.IssuerConfig{{Issuer: authtest.IssuerURL, Audience: authtest.Audience, JWKSFile: issuer.JWKSFile(t)}},
		auth.JWTOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{jwt: v})
	const oid = "6696d1bc-6012-47da-8556-ab4c747999c9"
	e.admin.do("PATCH", userPath(v2022, oid), map[string]string{"assignedRole": "Reader"}).expect(200, "")
	now := time.Now()
	for name, edit := range map[string]map[string]any{
		"exp 1e300":              {"exp": 1e300},
		"exp 1e300 without iat":  {"exp": 1e300, "iat": nil},
		"25 hours":               {"exp": now.Add(25 * time.Hour).Unix()},
		"25 hours without iat":   {"exp": now.Add(25 * time.Hour).Unix(), "iat": nil},
		"iat a year ago, exp 1h": {"iat": now.AddDate(-1, 0, 0).Unix(), "nbf": nil, "exp": now.Add(time.Hour).Unix()},
	} {
		t.Run(name, func(t *testing.T) {
			e.t = t
			c := authtest.Claims(authtest.IssuerURL, authtest.Audience, oid, now)
			for k, val := range edit {
				if val == nil {
					delete(c, k)
				} else {
					c[k] = val
				}
			}
			e.withBearer(issuer.Sign(c)).get(q("/app/collections", v2022)).expect(401, "InvalidAuthenticationInfo")
		})
	}
	e.t = t
	c := authtest.Claims(authtest.IssuerURL, authtest.Audience, oid, now)
	c["exp"] = now.Add(23 * time.Hour).Unix()
	e.withBearer(issuer.Sign(c)).get(q("/app/collections", v2022)).expect(200, "")
}

// Certificates, JWTs and issuers share no user ids (issue 9, item 8): a
// token whose oid is the Administrator certificate's fingerprint is refused,
// and the "alice" of a second issuer is "partner:alice", not the first
// issuer's alice.
func TestPrincipalsKeptApart(t *testing.T) {
	a, b := authtest.NewIssuer(t, "ES256"), authtest.NewIssuer(t, "ES256")
	const issA, issB = "https://a.ledgerd.test/", "https://b.ledgerd.test/"
	v, err := auth.NewJWTVerifier([]auth.IssuerConfig{
		{Issuer: issA, Audience: authtest.Audience, JWKSFile: a.JWKSFile(t)},
		{Issuer: issB, Audience: authtest.Audience, JWKSFile: b.JWKSFile(t), Namespace: "partner"},
	}, auth.JWTOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{jwt: v})
	now := time.Now()
	users := q("/app/users", vNewer)
	for _, oid := range []string{e.admin.id, strings.ToLower(e.admin.id)} {
		for _, tok := range []string{
			a.Sign(authtest.Claims(issA, authtest.Audience, oid, now)),
			b.Sign(authtest.Claims(issB, authtest.Audience, oid, now)),
		} {
			e.withBearer(tok).get(users).expect(401, "InvalidAuthenticationInfo")
		}
	}

	e.admin.do("PATCH", userPath(v2022, "alice"), map[string]string{"assignedRole": "Administrator"}).expect(200, "")
	aliceA := e.withBearer(a.Sign(authtest.Claims(issA, authtest.Audience, "alice", now)))
	aliceB := e.withBearer(b.Sign(authtest.Claims(issB, authtest.Audience, "alice", now)))
	aliceA.get(users).expect(200, "")
	aliceB.get(q("/app/collections", v2022)).expect(403, "NotAllowed")
	// A's subject can't reach into B's namespace either.
	e.withBearer(a.Sign(authtest.Claims(issA, authtest.Audience, "partner:alice", now))).
		get(q("/app/collections", v2022)).expect(401, "InvalidAuthenticationInfo")
	// B's alice is registered by its namespaced id, in the ACL wire format.
	r := e.admin.do("PATCH", userPath(v2022, "partner:alice"), map[string]string{"assignedRole": "Reader"}).expect(200, "")
	if got := r.object()["userId"]; got != "partner:alice" {
		t.Fatalf("userId %v", got)
	}
	aliceB.get(q("/app/collections", v2022)).expect(200, "")
	aliceB.get(users).expect(403, "NotAllowed")
}
