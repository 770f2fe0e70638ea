package gov_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/auth"
	"github.com/ledgerd/ledgerd/internal/auth/authtest"
	"github.com/ledgerd/ledgerd/internal/gov"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// goja exports a proposal's jwks argument as nested map[string]any.
func exported(t *testing.T, jwks []byte) any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(jwks, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func keyEntries(t *testing.T, st mapState, kid string) []tables.OpenIDJWKMetadata {
	t.Helper()
	raw, ok := st.Get(tables.JWTPublicSigningKeysMap, []byte(kid))
	if !ok {
		return nil
	}
	var es []tables.OpenIDJWKMetadata
	if err := json.Unmarshal(raw, &es); err != nil {
		t.Fatal(err)
	}
	return es
}

// setIssuer does what set_jwt_issuer's apply does with a jwks: the keys
// through SetJWTKeysWrites, then the metadata.
func setIssuer(t *testing.T, st mapState, iss string, meta map[string]any, jwks []byte) {
	t.Helper()
	ws, err := gov.SetJWTKeysWrites(st, iss, meta, exported(t, jwks))
	if err != nil {
		t.Fatal(err)
	}
	st.apply(ws)
	m, _ := json.Marshal(meta)
	st.apply([]ledger.MapWrites{{Name: tables.JWTIssuersMap, Writes: []ledger.KV{{Key: []byte(iss), Value: m}}}})
}

func TestSetAndRemoveJWTKeys(t *testing.T) {
	const issA, issB = "https://a.example/", "https://b.example/"
	a1, a2 := authtest.NewIssuer(t, "RS256"), authtest.NewIssuer(t, "ES256")
	b := authtest.NewIssuer(t, "ES384")
	st := mapState{}
	setIssuer(t, st, issA, map[string]any{"issuer": issA}, authtest.JWKS(a1, a2))
	setIssuer(t, st, issB, map[string]any{"issuer": issB, "namespace": "b"}, authtest.JWKS(b))
	for _, k := range []*authtest.Issuer{a1, a2, b} {
		es := keyEntries(t, st, k.KeyID())
		want, _ := x509.MarshalPKIXPublicKey(k.PublicKey())
		if len(es) != 1 || string(es[0].PublicKey) != string(want) {
			t.Fatalf("kid %s: %+v", k.KeyID(), es)
		}
	}
	// The stored value is CCF's: [{"public_key": base64 DER, "issuer": ...}].
	raw, _ := st.Get(tables.JWTPublicSigningKeysMap, []byte(a1.KeyID()))
	var generic []map[string]any
	json.Unmarshal(raw, &generic)
	if len(generic) != 1 || generic[0]["issuer"] != issA || len(generic[0]) != 2 {
		t.Fatalf("stored value %s", raw)
	}

	// Setting the same keys again writes nothing.
	if ws, err := gov.SetJWTKeysWrites(st, issA, nil, exported(t, authtest.JWKS(a1, a2))); err != nil || ws != nil {
		t.Fatalf("redundant set: %v %v", ws, err)
	}
	// A new key set replaces the issuer's keys: a2 goes, a3 comes.
	a3 := authtest.NewIssuer(t, "PS256")
	ws, err := gov.SetJWTKeysWrites(st, issA, nil, exported(t, authtest.JWKS(a1, a3)))
	if err != nil {
		t.Fatal(err)
	}
	st.apply(ws)
	if keyEntries(t, st, a2.KeyID()) != nil || len(keyEntries(t, st, a3.KeyID())) != 1 || len(keyEntries(t, st, a1.KeyID())) != 1 {
		t.Fatal("rotation")
	}

	// Two issuers may publish one kid (Azure AD's v1 and v2 issuers do):
	// each keeps its entry, and removing one issuer keeps the other's.
	setIssuer(t, st, issB, map[string]any{"issuer": issB, "namespace": "b"}, authtest.JWKS(b, a1))
	if es := keyEntries(t, st, a1.KeyID()); len(es) != 2 || es[0].Issuer != issA || es[1].Issuer != issB {
		t.Fatalf("shared kid: %+v", es)
	}
	ws, err = gov.RemoveJWTKeysWrites(st, issA)
	if err != nil {
		t.Fatal(err)
	}
	st.apply(ws)
	if es := keyEntries(t, st, a1.KeyID()); len(es) != 1 || es[0].Issuer != issB {
		t.Fatalf("after removing A: %+v", es)
	}
	if keyEntries(t, st, a3.KeyID()) != nil {
		t.Fatal("A's own key survived its removal")
	}
	if ws, err := gov.RemoveJWTKeysWrites(st, issA); err != nil || ws != nil {
		t.Fatalf("removing again: %v %v", ws, err)
	}
}

func TestSetJWTKeysRefusals(t *testing.T) {
	const iss = "https://login.example.com/tenant/"
	k := authtest.NewIssuer(t, "RS256")
	jwk := func(edit map[string]any) any {
		m := k.JWK()
		for f, v := range edit {
			if v == nil {
				delete(m, f)
			} else {
				m[f] = v
			}
		}
		return map[string]any{"keys": []any{m}}
	}
	for name, jwks := range map[string]any{
		"no keys":           map[string]any{"keys": []any{}},
		"not a set":         []any{1, 2},
		"no kid":            jwk(map[string]any{"kid": nil}),
		"no key material":   jwk(map[string]any{"n": nil, "e": nil}),
		"weak RSA key":      jwk(map[string]any{"n": "AQAB"}),
		"encryption key":    jwk(map[string]any{"use": "enc"}),
		"foreign domain":    jwk(map[string]any{"issuer": "https://evil.example/"}),
		"bad x5c":           jwk(map[string]any{"n": nil, "e": nil, "x5c": []any{"AAAA"}}),
		"constraint no URL": jwk(map[string]any{"issuer": "example.com"}),
	} {
		if ws, err := gov.SetJWTKeysWrites(mapState{}, iss, nil, jwks); err == nil {
			t.Errorf("%s: accepted: %v", name, ws)
		}
	}
	// A constraint on the issuer's parent domain is kept, as in CCF.
	ws, err := gov.SetJWTKeysWrites(mapState{}, iss, nil, jwk(map[string]any{"issuer": "https://example.com/{tenantid}/"}))
	if err != nil {
		t.Fatal(err)
	}
	st := mapState{}
	st.apply(ws)
	if es := keyEntries(t, st, k.KeyID()); len(es) != 1 || es[0].Constraint != "https://example.com/{tenantid}/" {
		t.Fatalf("constraint %+v", es)
	}
}

// A key given as an x5c certificate is stored as the certificate's public
// key.
func TestSetJWTKeysX5C(t *testing.T) {
	cert, _ := memberPEM(t)
	der := mustDER(t, cert)
	parsed, _ := x509.ParseCertificate(der)
	jwks := map[string]any{"keys": []any{map[string]any{"kty": "EC", "kid": "x", "x5c": []any{b64std(der)}}}}
	ws, err := gov.SetJWTKeysWrites(mapState{}, "https://x.example/", nil, jwks)
	if err != nil {
		t.Fatal(err)
	}
	st := mapState{}
	st.apply(ws)
	want, _ := x509.MarshalPKIXPublicKey(parsed.PublicKey)
	if es := keyEntries(t, st, "x"); len(es) != 1 || string(es[0].PublicKey) != string(want) {
		t.Fatalf("x5c key %+v", es)
	}
}

// The registry over the state is what the API verifies tokens with: an
// issuer set with keys is trusted at once, a removed one no longer.
func TestJWTRegistryVerifies(t *testing.T) {
	const iss = "https://idp.example/"
	is := authtest.NewIssuer(t, "ES256")
	st := mapState{}
	v, err := auth.NewGovernedVerifier(auth.JWTOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := gov.JWTRegistry{State: st}
	token := is.Sign(authtest.Claims(iss, "https://ledger.example", "alice", time.Now()))
	if _, err := v.Verify(context.Background(), token, reg); !errors.Is(err, auth.ErrUnknownIssuer) {
		t.Fatalf("before set_jwt_issuer: %v", err)
	}
	setIssuer(t, st, iss, map[string]any{"issuer": iss, "audience": "https://ledger.example", "namespace": "idp"}, is.JWKS())
	p, err := v.Verify(context.Background(), token, reg)
	if err != nil || p.ID != "idp:alice" || p.Kind != auth.KindJWT {
		t.Fatalf("governed issuer: %+v %v", p, err)
	}
	// The default audience is ACL's.
	acl := is.Sign(authtest.Claims(iss, auth.AzureADAudience, "alice", time.Now()))
	if _, err := v.Verify(context.Background(), acl, reg); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("another audience: %v", err)
	}
	setIssuer(t, st, iss, map[string]any{"issuer": iss}, is.JWKS())
	if p, err := v.Verify(context.Background(), acl, reg); err != nil || p.ID != "alice" {
		t.Fatalf("default audience: %+v %v", p, err)
	}
	ws, err := gov.RemoveJWTKeysWrites(st, iss)
	if err != nil {
		t.Fatal(err)
	}
	st.apply(ws)
	st.apply([]ledger.MapWrites{{Name: tables.JWTIssuersMap, Removes: [][]byte{[]byte(iss)}}})
	if _, err := v.Verify(context.Background(), acl, reg); !errors.Is(err, auth.ErrUnknownIssuer) {
		t.Fatalf("after remove_jwt_issuer: %v", err)
	}
}

func TestGenesisJWTIssuers(t *testing.T) {
	m, _ := memberPEM(t)
	a, b := authtest.NewIssuer(t, "RS256"), authtest.NewIssuer(t, "ES256")
	issuers := []gov.JWTIssuer{
		{Issuer: "https://a.example/", Audiences: []string{"aud"}, JWKS: a.JWKS()},
		{Issuer: "https://b.example/", Namespace: "b", JWKSURI: "https://b.example/keys"},
	}
	ws, err := gov.Genesis{Members: [][]byte{m}, JWTIssuers: issuers}.Writes()
	if err != nil {
		t.Fatal(err)
	}
	st := mapState{}
	st.apply(ws)
	reg := gov.JWTRegistry{State: st}
	if p, ok := reg.JWTIssuer("https://a.example/"); !ok || len(p.Audiences) != 1 || p.Audiences[0] != "aud" || p.JWKSURL != "" {
		t.Fatalf("issuer a: %+v %v", p, ok)
	}
	if _, ok := reg.JWTKey("https://a.example/", a.KeyID()); !ok {
		t.Fatal("issuer a's key")
	}
	if p, ok := reg.JWTIssuer("https://b.example/"); !ok || p.Namespace != "b" || p.JWKSURL != "https://b.example/keys" {
		t.Fatalf("issuer b: %+v %v", p, ok)
	}
	if ns := reg.JWTNamespaces(); len(ns) != 1 || ns[0] != "b" {
		t.Fatalf("namespaces %v", ns)
	}
	for _, j := range issuers {
		if d := gov.JWTIssuerDiff(st, j); d != "" {
			t.Fatalf("%s differs from itself: %s", j.Issuer, d)
		}
	}
	changed := issuers[0]
	changed.JWKS = b.JWKS()
	if d := gov.JWTIssuerDiff(st, changed); !strings.Contains(d, "signing keys") {
		t.Fatalf("other keys: %q", d)
	}
	changed = issuers[1]
	changed.Namespace = "c"
	if d := gov.JWTIssuerDiff(st, changed); !strings.Contains(d, "namespace") {
		t.Fatalf("other namespace: %q", d)
	}
	if d := gov.JWTIssuerDiff(st, gov.JWTIssuer{Issuer: "https://c.example/"}); d == "" {
		t.Fatal("an unknown issuer matches")
	}

	for name, bad := range map[string][]gov.JWTIssuer{
		"shared namespace": {{Issuer: "https://a.example/", JWKS: a.JWKS()}, {Issuer: "https://b.example/", JWKS: b.JWKS()}},
		"twice":            {{Issuer: "https://a.example/", JWKS: a.JWKS(), Namespace: "x"}, {Issuer: "https://a.example/", JWKS: a.JWKS(), Namespace: "y"}},
		"bad JWKS":         {{Issuer: "https://a.example/", JWKS: []byte(`{"keys":[]}`)}},
		"no keys at all":   {{Issuer: "https://a.example/"}},
		"http JWKS URL":    {{Issuer: "https://a.example/", JWKSURI: "http://a.example/keys"}},
	} {
		if _, err := (gov.Genesis{Members: [][]byte{m}, JWTIssuers: bad}).Writes(); err == nil || !strings.HasPrefix(err.Error(), "gov: ") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func mustDER(t *testing.T, certPEM []byte) []byte {
	t.Helper()
	b, _ := pem.Decode(certPEM)
	if b == nil {
		t.Fatal("no PEM")
	}
	return b.Bytes
}

func b64std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
