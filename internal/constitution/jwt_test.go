package constitution

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// set_jwt_issuer takes ledgerd's optional audience, namespace and jwks_uri,
// keeps them in the issuer's metadata, and refuses a namespace another
// issuer has, except between the v1 and v2 issuers of one Azure AD tenant.
func TestSetJWTIssuerLedgerdFields(t *testing.T) {
	c := loadDefault(t)
	ctx := context.Background()
	jwks := map[string]any{"keys": []any{map[string]any{"kty": "EC", "kid": "k1", "crv": "P-256", "x": "AAAA", "y": "BBBB"}}}
	set := func(args map[string]any) []byte {
		return proposal(t, map[string]any{"name": "set_jwt_issuer", "args": args})
	}
	for name, args := range map[string]map[string]any{
		"empty audience list": {"issuer": "https://a.example/", "audience": []any{}},
		"audience number":     {"issuer": "https://a.example/", "audience": 3},
		"empty audience":      {"issuer": "https://a.example/", "audience": []any{"x", ""}},
		"bad namespace":       {"issuer": "https://a.example/", "namespace": "a:b"},
		"long namespace":      {"issuer": "https://a.example/", "namespace": strings.Repeat("n", 65)},
		"http jwks_uri":       {"issuer": "https://a.example/", "jwks_uri": "http://a.example/keys"},
		"jwks_uri not a URL":  {"issuer": "https://a.example/", "jwks_uri": "keys.json"},
		"empty issuer":        {"issuer": ""},
	} {
		if res, err := c.Validate(ctx, set(args)); err != nil || res.Valid {
			t.Errorf("%s: Validate = %+v, %v; want invalid", name, res, err)
		}
	}
	kv := NewMemKV()
	args := map[string]any{"issuer": "https://a.example/", "audience": []any{"api://ledger"}, "namespace": "a",
		"jwks_uri": "https://a.example/keys", "jwks": jwks}
	p := set(args)
	if res, err := c.Validate(ctx, p); err != nil || !res.Valid {
		t.Fatalf("Validate = %+v, %v", res, err)
	}
	effects, err := c.Apply(ctx, kv, p, "p1")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := kv.Get("public:ccf.gov.jwt.issuers", []byte("https://a.example/"))
	var meta map[string]any
	json.Unmarshal(raw, &meta)
	if meta["namespace"] != "a" || meta["jwks_uri"] != "https://a.example/keys" || meta["jwks"] != nil ||
		len(meta["audience"].([]any)) != 1 {
		t.Fatalf("metadata %s", raw)
	}
	if len(effects) != 1 || effects[0].Name != "setJwtPublicSigningKeys" || effects[0].Args[0] != "https://a.example/" {
		t.Fatalf("effects %#v", effects)
	}

	// The same namespace for another issuer fails the proposal.
	if _, err := c.Apply(ctx, kv, set(map[string]any{"issuer": "https://b.example/", "namespace": "a"}), "p2"); err == nil ||
		!strings.Contains(err.Error(), "namespace") {
		t.Fatalf("shared namespace: %v", err)
	}
	// One default-namespace issuer, then a second one fails too.
	if _, err := c.Apply(ctx, kv, set(map[string]any{"issuer": "https://b.example/"}), "p3"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Apply(ctx, kv, set(map[string]any{"issuer": "https://c.example/"}), "p4"); err == nil {
		t.Fatal("two issuers in the default namespace")
	}
	// Re-setting an issuer keeps its own namespace.
	if _, err := c.Apply(ctx, kv, set(map[string]any{"issuer": "https://a.example/", "namespace": "a"}), "p5"); err != nil {
		t.Fatal(err)
	}
	// An Azure AD tenant's v1 and v2 issuers share one namespace.
	const tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	for i, iss := range []string{"https://sts.windows.net/" + tenant + "/", "https://login.microsoftonline.com/" + tenant + "/v2.0"} {
		if _, err := c.Apply(ctx, kv, set(map[string]any{"issuer": iss, "namespace": "aad"}), "aad"+string(rune('0'+i))); err != nil {
			t.Fatalf("%s: %v", iss, err)
		}
	}
}
