package api_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/api"
	"github.com/ledgerd/ledgerd/internal/auth"
	"github.com/ledgerd/ledgerd/internal/auth/authtest"
)

// TestAllOfPolicy: CCF's {"all_of": ["user_cert", "jwt"]} admits a caller
// only with both a ledger user's certificate and a valid bearer token;
// request.caller is CCF's AllOfAuthnIdentity ({"policy": [sorted names],
// "jwt": {...}, "user_cert": {...}}); a caller missing either part, or
// whose certificate is not a user's, or whose token does not verify, is
// refused with 401 (an alternative policy of the list still admits). A
// backup forwards both parts, and the primary admits them.
func TestAllOfPolicy(t *testing.T) {
	issuer := authtest.NewIssuer(t, "ES256")
	v, err := auth.NewJWTVerifier([]auth.IssuerConfig{{Issuer: authtest.IssuerURL, Audience: authtest.Audience, JWKSFile: issuer.JWKSFile(t)}},
		auth.JWTOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{jwt: v})
	const module = `export function whoami(request) {
  const c = request.caller;
  return { body: { policy: c.policy, userPolicy: c.user_cert.policy, id: c.user_cert.id, hasCert: c.user_cert.cert.startsWith("-----BEGIN"),
    jwtPolicy: c.jwt.policy, oid: c.jwt.jwt.payload.oid, iss: c.jwt.jwt.keyIssuer } };
}
export function either(request) { return { body: { policy: request.caller.policy } }; }`
	bundle, _ := json.Marshal(map[string]any{
		"metadata": map[string]any{"endpoints": map[string]any{
			"/both": map[string]any{"post": map[string]any{"js_module": "a.js", "js_function": "whoami", "mode": "readwrite",
				"forwarding_required": "sometimes", "authn_policies": []any{map[string]any{"all_of": []string{"user_cert", "jwt"}}}}},
			"/both-or-member": map[string]any{"get": map[string]any{"js_module": "a.js", "js_function": "either", "mode": "readonly",
				"forwarding_required": "never", "authn_policies": []any{map[string]any{"all_of": []string{"user_cert", "jwt"}}, "member_cert"}}},
		}},
		"modules": []any{map[string]any{"name": "a.js", "module": module}},
	})
	e.admin.do("PUT", q(ude, v2024), string(bundle)).expect(201, "")
	// Written back as given.
	if got := string(e.reader.get(q(ude, v2024)).expect(200, "").body); !strings.Contains(got, `"authn_policies":[{"all_of":["user_cert","jwt"]}]`) {
		t.Errorf("GET answers %s", got)
	}

	const oid = "6696d1bc-6012-47da-8556-ab4c747999c9"
	token := issuer.Sign(authtest.Claims(authtest.IssuerURL, authtest.Audience, oid, time.Now()))
	withBoth := func(c *client, token string) *client {
		both := e.client(c.cred)
		both.bearer = token
		return both
	}
	wantID := strings.ToLower(strings.ReplaceAll(e.contributor.cred.userID(), ":", ""))
	want := map[string]any{"policy": []any{"jwt", "user_cert"}, "userPolicy": "user_cert", "id": wantID, "hasCert": true,
		"jwtPolicy": "jwt", "oid": oid, "iss": authtest.IssuerURL}
	got := withBoth(e.contributor, token).do("POST", "/app/both", nil).expect(200, "").object()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("caller %v, want %v", got, want)
	}

	// Each part is required.
	e.contributor.do("POST", "/app/both", nil).expect(401, "InvalidAuthenticationInfo")       // no token
	e.withBearer(token).do("POST", "/app/both", nil).expect(401, "InvalidAuthenticationInfo") // no certificate
	withBoth(e.stranger, token).do("POST", "/app/both", nil).expect(401, "InvalidAuthenticationInfo")
	bad := authtest.Claims(authtest.IssuerURL, "someone-else", oid, time.Now())
	withBoth(e.contributor, issuer.Sign(bad)).do("POST", "/app/both", nil).expect(401, "InvalidAuthenticationInfo")

	// Another policy of the list still admits on its own.
	if got := e.member.get("/app/both-or-member").expect(200, "").object(); got["policy"] != "member_cert" {
		t.Errorf("member: %v", got)
	}
	e.reader.get("/app/both-or-member").expect(401, "InvalidAuthenticationInfo")
	if got := withBoth(e.reader, token).get("/app/both-or-member").expect(200, "").object(); !reflect.DeepEqual(got["policy"], []any{"jwt", "user_cert"}) {
		t.Errorf("all_of in a list: %v", got)
	}

	// Forwarded by a backup: the certificate's principal, the certificate
	// and the token it verified.
	b := forwardingPeer(t, e)
	forward := func(withJWT bool) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequest("POST", api.ForwardedPrefix+"/app/both", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Ledgerd-Forwarded-Principal", `{"kind":"certificate","id":"`+e.contributor.cred.userID()+`"}`)
		req.Header.Set("X-Ledgerd-Forwarded-Cert", base64.StdEncoding.EncodeToString(e.contributor.cred.der))
		if withJWT {
			req.Header.Set("X-Ledgerd-Forwarded-Jwt", token)
		}
		resp, err := b.Do(t.Context(), 1, req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	if status, body := forward(true); status != 200 || !reflect.DeepEqual(body, want) {
		t.Errorf("forwarded: %d %v, want %v", status, body, want)
	}
	if status, body := forward(false); status != 401 {
		t.Errorf("forwarded without the token: %d %v", status, body)
	}
}

// TestAllOfForwardedInCluster: in a three-node network, a readwrite
// endpoint whose policy is {"all_of": ["user_cert", "jwt"]} called on a
// backup is forwarded to the primary with both the caller's certificate and
// its token (the primary checks both again): with both it writes, and the
// answer's transaction id is the primary's (the backup, cut off from Raft
// during the call, does not hold it); the write commits and, once the
// backup is healed, is read there. With only one of the two credentials
// the call is refused 401 and nothing is written. Fails if the backup does
// not forward the token of an all_of caller (the primary then refuses the
// call with both credentials: 401).
func TestAllOfForwardedInCluster(t *testing.T) {
	issuer := authtest.NewIssuer(t, "ES256")
	v, err := auth.NewJWTVerifier([]auth.IssuerConfig{{Issuer: authtest.IssuerURL, Audience: authtest.Audience, JWKSFile: issuer.JWKSFile(t)}},
		auth.JWTOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w := newCluster3JWT(t, v)
	primary, backup := w.envs[0], w.envs[2]
	waitFor(t, "node 1 to lead", primary.node.IsPrimary)
	waitFor(t, "node 3 to know the primary", func() bool { return backup.node.Reader.RaftInfo().Leader == 1 })

	const module = `const table = "public:app.allof";
export function put(request) {
  const c = request.caller;
  const v = c.user_cert.id + " " + c.jwt.jwt.payload.oid;
  ccf.kv[table].set(ccf.strToBuf(request.params.key), ccf.strToBuf(v));
  return { body: { policy: c.policy, value: v } };
}
export function get(request) {
  const v = ccf.kv[table].get(ccf.strToBuf(request.params.key));
  return { body: { value: v === undefined ? null : ccf.bufToStr(v) } };
}`
	bundle, _ := json.Marshal(map[string]any{
		"metadata": map[string]any{"endpoints": map[string]any{
			"/u/allof/{key}": map[string]any{
				"put": map[string]any{"js_module": "a.js", "js_function": "put", "mode": "readwrite",
					"forwarding_required": "sometimes", "authn_policies": []any{map[string]any{"all_of": []string{"user_cert", "jwt"}}}},
				"get": map[string]any{"js_module": "a.js", "js_function": "get", "mode": "readonly",
					"forwarding_required": "never", "authn_policies": []string{"user_cert"}},
			},
		}},
		"modules": []any{map[string]any{"name": "a.js", "module": module}},
	})
	backup.commit(primary.admin.do("PUT", q(ude, v2024), string(bundle)).expect(201, "").txid())

	const oid = "6696d1bc-6012-47da-8556-ab4c747999c9"
	token := issuer.Sign(authtest.Claims(authtest.IssuerURL, authtest.Audience, oid, time.Now()))
	both := backup.client(backup.contributor.cred)
	both.bearer = token
	value := func(e *env, key string) any {
		t.Helper()
		return e.reader.get("/app/u/allof/"+key).expect(200, "").object()["value"]
	}

	// Cut the backup off from Raft: only the primary can answer with a
	// transaction id past the backup's ledger.
	w.net.mu.Lock()
	w.net.cut[3] = true
	w.net.mu.Unlock()
	backup.contributor.do("PUT", "/app/u/allof/cert-only", nil).expect(401, "InvalidAuthenticationInfo")
	backup.withBearer(token).do("PUT", "/app/u/allof/token-only", nil).expect(401, "InvalidAuthenticationInfo")
	r := both.do("PUT", "/app/u/allof/both", nil).expect(200, "")
	id := r.txid()
	wantValue := strings.ToLower(strings.ReplaceAll(backup.contributor.cred.userID(), ":", "")) + " " + oid
	if got := r.object(); got["value"] != wantValue || !reflect.DeepEqual(got["policy"], []any{"jwt", "user_cert"}) {
		t.Fatalf("forwarded all_of call: %v, want value %q and policy [jwt user_cert]", got, wantValue)
	}
	if last := backup.node.LastSeqno(); last >= id.Seqno {
		t.Fatalf("the cut-off backup holds seqno %d, the answer's id is %s: not the primary's", last, id)
	}
	primary.commit(id)
	if got := value(primary, "both"); got != wantValue {
		t.Fatalf("the primary reads %v, want %q", got, wantValue)
	}
	// The refused calls came before the write; had either been written, it
	// would be committed now.
	for _, key := range []string{"cert-only", "token-only"} {
		if got := value(primary, key); got != nil {
			t.Errorf("the refused call %s wrote %v", key, got)
		}
	}

	w.net.mu.Lock()
	w.net.cut[3] = false
	w.net.mu.Unlock()
	backup.commit(id)
	if got := value(backup, "both"); got != wantValue {
		t.Fatalf("the healed backup reads %v, want %q", got, wantValue)
	}
	for _, key := range []string{"cert-only", "token-only"} {
		if got := value(backup, key); got != nil {
			t.Errorf("the healed backup reads %v for the refused call %s", got, key)
		}
	}
}
