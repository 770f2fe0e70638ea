package auth_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/auth"
	"github.com/ledgerd/ledgerd/internal/auth/authtest"
)

const testTenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"

// Certificates, JWTs and issuers name their principals apart (issue 9,
// item 8): a token can't name a certificate user, nor another issuer's.
func TestJWTPrincipalsKeptApart(t *testing.T) {
	a, b := testIssuer(t, "ES256"), testIssuer(t, "ES384")
	v, err := auth.NewJWTVerifier([]auth.IssuerConfig{
		{Issuer: "https://a.example/", Audience: authtest.Audience, JWKSFile: writeFile(t, "a.json", a.JWKS())},
		{Issuer: "https://b.example/", Audience: authtest.Audience, JWKSFile: writeFile(t, "b.json", b.JWKS()), Namespace: "partner"},
	}, auth.JWTOptions{Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	tok := func(is *authtest.Issuer, iss string, edit map[string]any) string {
		c := authtest.Claims(iss, authtest.Audience, "alice", testNow)
		for k, val := range edit {
			if val == nil {
				delete(c, k)
			} else {
				c[k] = val
			}
		}
		return is.Sign(c)
	}
	lower := strings.ToLower(userCertFingerprint)
	for name, tc := range map[string]struct {
		token string
		id    string // "": refused with ErrInvalidToken
	}{
		"a's alice":                     {tok(a, "https://a.example/", nil), "alice"},
		"b's alice":                     {tok(b, "https://b.example/", nil), "partner:alice"},
		"a's oid a fingerprint":         {tok(a, "https://a.example/", map[string]any{"oid": userCertFingerprint}), ""},
		"a's oid a lower-case one":      {tok(a, "https://a.example/", map[string]any{"oid": lower}), ""},
		"a's sub a fingerprint":         {tok(a, "https://a.example/", map[string]any{"oid": nil, "sub": userCertFingerprint}), ""},
		"b's oid a fingerprint":         {tok(b, "https://b.example/", map[string]any{"oid": userCertFingerprint}), ""},
		"a's oid in b's namespace":      {tok(a, "https://a.example/", map[string]any{"oid": "partner:alice"}), ""},
		"a's oid with another colon":    {tok(a, "https://a.example/", map[string]any{"oid": "urn:alice"}), "urn:alice"},
		"b's oid in b's namespace":      {tok(b, "https://b.example/", map[string]any{"oid": "partner:alice"}), "partner:partner:alice"},
		"b's sub without oid":           {tok(b, "https://b.example/", map[string]any{"oid": nil, "sub": "bob"}), "partner:bob"},
		"fingerprint across namespaces": {tok(b, "https://b.example/", map[string]any{"oid": lower[len("partner:"):]}), "partner:" + lower[len("partner:"):]},
	} {
		p, err := v.Verify(context.Background(), tc.token)
		switch {
		case tc.id == "" && !errors.Is(err, auth.ErrInvalidToken):
			t.Errorf("%s: Verify = %+v, %v; want ErrInvalidToken", name, p, err)
		case tc.id != "" && (err != nil || p.ID != tc.id):
			t.Errorf("%s: Verify = %+v, %v; want id %q", name, p, err, tc.id)
		}
	}
	// A 95-character id of a namespace with the shape of a fingerprint
	// (namespace "AB", subject "CD:EF:…") is refused too.
	c, err := auth.NewJWTVerifier([]auth.IssuerConfig{
		{Issuer: "https://a.example/", Audience: authtest.Audience, JWKSFile: writeFile(t, "a.json", a.JWKS()), Namespace: "25"},
	}, auth.JWTOptions{Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := c.Verify(context.Background(), tok(a, "https://a.example/", map[string]any{"oid": userCertFingerprint[3:]})); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("namespace 25 + subject %s: Verify = %+v, %v; want ErrInvalidToken", userCertFingerprint[3:], p, err)
	}
}

// Azure AD's tokens must carry oid: its sub is per application, not the
// user's id (issue 9, item 8).
func TestAzureADRequiresOID(t *testing.T) {
	is := testIssuer(t, "RS256")
	iss := "https://sts.windows.net/" + testTenant + "/"
	v, err := auth.NewJWTVerifier([]auth.IssuerConfig{{Issuer: iss, Audience: auth.AzureADAudience, JWKSFile: writeFile(t, "k.json", is.JWKS())}},
		auth.JWTOptions{Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	c := authtest.Claims(iss, auth.AzureADAudience, "6696d1bc-6012-47da-8556-ab4c747999c9", testNow)
	if p, err := v.Verify(context.Background(), is.Sign(c)); err != nil || p.ID != "6696d1bc-6012-47da-8556-ab4c747999c9" {
		t.Errorf("with oid: Verify = %+v, %v", p, err)
	}
	delete(c, "oid")
	if p, err := v.Verify(context.Background(), is.Sign(c)); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("without oid: Verify = %+v, %v; want ErrInvalidToken", p, err)
	}
}

func TestValidateIssuersNamespaces(t *testing.T) {
	cfg := func(iss, ns string) auth.IssuerConfig {
		return auth.IssuerConfig{Issuer: iss, Audience: authtest.Audience, JWKSFile: "k.json", Namespace: ns}
	}
	aad, err := auth.AzureADIssuers(testTenant, "")
	if err != nil {
		t.Fatal(err)
	}
	other, err := auth.AzureADIssuers("00000000-0000-0000-0000-000000000001", "")
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		issuers []auth.IssuerConfig
		wantErr string
	}{
		"one issuer":                  {[]auth.IssuerConfig{cfg("https://a/", "")}, ""},
		"two, second in a namespace":  {[]auth.IssuerConfig{cfg("https://a/", ""), cfg("https://b/", "b")}, ""},
		"two in namespaces":           {[]auth.IssuerConfig{cfg("https://a/", "a"), cfg("https://b/", "b")}, ""},
		"two default":                 {[]auth.IssuerConfig{cfg("https://a/", ""), cfg("https://b/", "")}, "would share the default namespace"},
		"two in one namespace":        {[]auth.IssuerConfig{cfg("https://a/", "x"), cfg("https://b/", "x")}, `would share the namespace "x"`},
		"Azure AD v1 and v2":          {aad, ""},
		"Azure AD and another":        {append(aad[:2:2], cfg("https://b/", "")), "would share the default namespace"},
		"Azure AD and a namespace":    {append(aad[:2:2], cfg("https://b/", "b")), ""},
		"two Azure AD tenants":        {append(aad[:2:2], other...), "would share the default namespace"},
		"namespace with colon":        {[]auth.IssuerConfig{cfg("https://a/", "a:b")}, "namespace \""},
		"namespace with slash":        {[]auth.IssuerConfig{cfg("https://a/", "a/b")}, "namespace \""},
		"namespace too long":          {[]auth.IssuerConfig{cfg("https://a/", strings.Repeat("n", 65))}, "namespace \""},
		"namespace with dot and dash": {[]auth.IssuerConfig{cfg("https://a/", "corp.example-1_x")}, ""},
	} {
		err := auth.ValidateIssuers(tc.issuers)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: err = %v, want one containing %q", name, err, tc.wantErr)
		}
	}
}
