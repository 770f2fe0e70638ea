package api_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/auth"
	"github.com/ledgerd/ledgerd/internal/auth/authtest"
	"github.com/ledgerd/ledgerd/internal/gov"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/node"
)

// govern executes a governance write set as the governance engine does when
// a proposal is accepted: in node.Exec, answered once committed.
func (e *env) govern(decide func(st *node.State) ([]ledger.MapWrites, error)) {
	e.t.Helper()
	if _, err := e.node.Exec(context.Background(), node.UntilCommitted, decide); err != nil {
		e.t.Fatal(err)
	}
}

// setJWTIssuer is the default constitution's set_jwt_issuer with jwks: the
// keys through gov.SetJWTKeysWrites (ccf.setJwtPublicSigningKeys), then the
// metadata, which the constitution writes itself.
func (e *env) setJWTIssuer(iss string, metadata map[string]any, jwks []byte) {
	e.t.Helper()
	var exported map[string]any // as goja exports the argument
	if err := json.Unmarshal(jwks, &exported); err != nil {
		e.t.Fatal(err)
	}
	meta, _ := json.Marshal(metadata)
	e.govern(func(st *node.State) ([]ledger.MapWrites, error) {
		ws, err := gov.SetJWTKeysWrites(st, iss, metadata, exported)
		return append(ws, ledger.MapWrites{Name: "public:ccf.gov.jwt.issuers",
			Writes: []ledger.KV{{Key: []byte(iss), Value: meta}}}), err
	})
}

// removeJWTIssuer is remove_jwt_issuer: the metadata, then the keys
// (ccf.removeJwtPublicSigningKeys).
func (e *env) removeJWTIssuer(iss string) {
	e.t.Helper()
	e.govern(func(st *node.State) ([]ledger.MapWrites, error) {
		ws, err := gov.RemoveJWTKeysWrites(st, iss)
		return append(ws, ledger.MapWrites{Name: "public:ccf.gov.jwt.issuers", Removes: [][]byte{[]byte(iss)}}), err
	})
}

// A JWT issuer is governed state: its tokens are accepted from the request
// after the proposal that sets it commits, and refused from the request
// after the one that removes it; a key rotation by
// set_jwt_public_signing_keys retires the old key at once.
func TestGovernedJWTIssuer(t *testing.T) {
	e := newEnv(t, envOptions{})
	const iss = "https://idp.partner.example/"
	idp := authtest.NewIssuer(t, "RS256")
	token := func(is *authtest.Issuer) string {
		return is.Sign(authtest.Claims(iss, authtest.Audience, "alice", time.Now()))
	}
	collections := q("/app/collections", v2022)
	e.admin.do("PATCH", q("/app/users/partner:alice", v2022), map[string]string{"assignedRole": "Reader"},
		"Content-Type", "application/merge-patch+json").expect(200, "")

	e.withBearer(token(idp)).get(collections).expect(401, "InvalidAuthenticationInfo")

	e.setJWTIssuer(iss, map[string]any{"issuer": iss, "audience": authtest.Audience, "namespace": "partner"}, idp.JWKS())
	e.withBearer(token(idp)).get(collections).expect(200, "")
	e.withBearer(token(idp)).post(q("/app/transactions", v2022), map[string]string{"contents": "x"}).expect(403, "NotAllowed")
	jwk := e.anonymous.get(q("/gov/service/jwk", vGov)).expect(200, "").object()
	issuers, keys := jwk["issuers"].(map[string]any), jwk["keys"].(map[string]any)
	if _, ok := issuers[iss]; !ok || len(keys) != 1 || keys[idp.KeyID()] == nil {
		t.Fatalf("/gov/service/jwk %v", jwk)
	}

	// Rotation: set_jwt_public_signing_keys with the new key only.
	next := authtest.NewIssuer(t, "ES256")
	var exported map[string]any
	json.Unmarshal(next.JWKS(), &exported)
	e.govern(func(st *node.State) ([]ledger.MapWrites, error) {
		return gov.SetJWTKeysWrites(st, iss, nil, exported)
	})
	e.withBearer(token(idp)).get(collections).expect(401, "InvalidAuthenticationInfo")
	e.withBearer(token(next)).get(collections).expect(200, "")

	e.removeJWTIssuer(iss)
	e.withBearer(token(next)).get(collections).expect(401, "InvalidAuthenticationInfo")
	jwk = e.anonymous.get(q("/gov/service/jwk", vGov)).expect(200, "").object()
	if len(jwk["issuers"].(map[string]any)) != 0 || len(jwk["keys"].(map[string]any)) != 0 {
		t.Fatalf("/gov/service/jwk after removal %v", jwk)
	}
}

// A governed issuer is judged by the governed state alone: a node-local
// verifier (api.Config.JWT) that trusts the same issuer with other rules
// does not rescue its tokens.
func TestGovernedIssuerWinsOverLocal(t *testing.T) {
	const iss = authtest.IssuerURL
	idp := authtest.NewIssuer(t, "ES256")
	local, err := auth.NewJWTVerifier([]auth.IssuerConfig{{Issuer: iss, Audience: "https://other.example", JWKSFile: idp.JWKSFile(t)}}, auth.JWTOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{jwt: local})
	e.admin.do("PATCH", q("/app/users/bob", v2022), map[string]string{"assignedRole": "Reader"},
		"Content-Type", "application/merge-patch+json").expect(200, "")
	other := idp.Sign(authtest.Claims(iss, "https://other.example", "bob", time.Now()))
	e.withBearer(other).get(q("/app/collections", v2022)).expect(200, "")
	e.setJWTIssuer(iss, map[string]any{"issuer": iss}, idp.JWKS()) // ACL's audience
	e.withBearer(other).get(q("/app/collections", v2022)).expect(401, "InvalidAuthenticationInfo")
	acl := idp.Sign(authtest.Claims(iss, authtest.Audience, "bob", time.Now()))
	e.withBearer(acl).get(q("/app/collections", v2022)).expect(200, "")
}

// End to end over HTTPS with signed requests and the default constitution:
// set_jwt_issuer with a JWK Set makes the issuer's tokens accepted on the
// next request, set_jwt_public_signing_keys rotates its keys, and
// remove_jwt_issuer makes them refused.
func TestJWTIssuerByProposal(t *testing.T) {
	e := newEnv(t, envOptions{})
	const iss = "https://idp.partner.example/"
	idp := authtest.NewIssuer(t, "ES256")
	token := func(is *authtest.Issuer) string {
		return is.Sign(authtest.Claims(iss, "api://ledger", "alice", time.Now()))
	}
	collections := q("/app/collections", v2022)
	e.admin.do("PATCH", q("/app/users/partner:alice", v2022), map[string]string{"assignedRole": "Reader"},
		"Content-Type", "application/merge-patch+json").expect(200, "")
	e.withBearer(token(idp)).get(collections).expect(401, "InvalidAuthenticationInfo")

	var jwks map[string]any
	json.Unmarshal(idp.JWKS(), &jwks)
	e.pass("set_jwt_issuer", map[string]any{"issuer": iss, "jwks": jwks,
		"audience": []string{"api://ledger"}, "namespace": "partner"})
	e.withBearer(token(idp)).get(collections).expect(200, "")

	next := authtest.NewIssuer(t, "RS256")
	json.Unmarshal(next.JWKS(), &jwks)
	e.pass("set_jwt_public_signing_keys", map[string]any{"issuer": iss, "jwks": jwks})
	e.withBearer(token(idp)).get(collections).expect(401, "InvalidAuthenticationInfo")
	e.withBearer(token(next)).get(collections).expect(200, "")

	e.pass("remove_jwt_issuer", map[string]any{"issuer": iss})
	e.withBearer(token(next)).get(collections).expect(401, "InvalidAuthenticationInfo")

	// A JWK Set with a bad key fails the proposal and trusts nothing.
	p := e.proposeOK(0, actionProposal("set_jwt_issuer", map[string]any{"issuer": iss, "namespace": "partner",
		"jwks": map[string]any{"keys": []any{map[string]any{"kty": "RSA", "kid": "weak", "n": "AQAB", "e": "AQAB"}}}}))
	if p = e.voteOK(0, p.ProposalID, yesBallot); p.ProposalState != "Failed" {
		t.Fatalf("bad key: %+v", p)
	}
	if _, ok := (gov.JWTRegistry{State: e.node.State()}).JWTIssuer(iss); ok {
		t.Fatal("a failed set_jwt_issuer left the issuer trusted")
	}
}
