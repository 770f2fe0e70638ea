package auth_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/internal/auth"
	"github.com/ledgerd/ledgerd/internal/auth/authtest"
)

// AzureADIssuers accepts the tokens of both of the tenant's issuers for
// ACL's audience, with or without its trailing slash, with keys fetched
// once from the tenant's key set, and names a user by its oid whichever
// issuer signed (issue 8, "Azure AD out of the box").
func TestAzureADIssuers(t *testing.T) {
	is := testIssuer(t, "RS256")
	srv := newJWKSServer(t, is.JWKS())
	issuers, err := auth.AzureADIssuers(strings.ToUpper(testTenant), srv.URL+"/"+testTenant+"/discovery/v2.0/keys")
	if err != nil {
		t.Fatal(err)
	}
	for i := range issuers {
		issuers[i].HTTPClient = srv.Client()
	}
	clock := &fakeClock{now: testNow}
	v, err := auth.NewJWTVerifier(issuers, auth.JWTOptions{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	const oid = "6696d1bc-6012-47da-8556-ab4c747999c9"
	v1, v2 := "https://sts.windows.net/"+testTenant+"/", "https://login.microsoftonline.com/"+testTenant+"/v2.0"
	for _, iss := range []string{v1, v2} {
		for _, aud := range []string{"https://confidential-ledger.azure.com", "https://confidential-ledger.azure.com/"} {
			p, err := v.Verify(context.Background(), is.Sign(authtest.Claims(iss, aud, oid, testNow)))
			if err != nil || p.ID != oid {
				t.Errorf("iss %s, aud %s: Verify = %+v, %v; want id %s", iss, aud, p, err, oid)
			}
		}
	}
	if n := srv.fetches.Load(); n != 1 {
		t.Errorf("the tenant's keys were fetched %d times, want once for both issuers", n)
	}
	for name, c := range map[string]map[string]any{
		"another tenant":   authtest.Claims("https://sts.windows.net/00000000-0000-0000-0000-000000000001/", auth.AzureADAudience, oid, testNow),
		"another audience": authtest.Claims(v1, "https://management.azure.com/", oid, testNow),
		"v2 without /v2.0": authtest.Claims("https://login.microsoftonline.com/"+testTenant+"/", auth.AzureADAudience, oid, testNow),
	} {
		if p, err := v.Verify(context.Background(), is.Sign(c)); !errors.Is(err, auth.ErrInvalidToken) {
			t.Errorf("%s: Verify = %+v, %v; want ErrInvalidToken", name, p, err)
		}
	}
	// Keys are refreshed: after the refresh interval, a rotated key set is
	// fetched and serves both issuers.
	rotated := authtest.NewIssuer(t, "RS256")
	srv.serve(200, rotated.JWKS())
	clock.Advance(auth.DefaultRefreshInterval)
	for _, iss := range []string{v1, v2} {
		if p, err := v.Verify(context.Background(), rotated.Sign(authtest.Claims(iss, auth.AzureADAudience, oid, clock.Now()))); err != nil {
			t.Errorf("rotated key, iss %s: Verify = %+v, %v", iss, p, err)
		}
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Errorf("keys fetched %d times after one refresh, want 2", n)
	}
}

func TestAzureADIssuersConfig(t *testing.T) {
	issuers, err := auth.AzureADIssuers(testTenant, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"https://sts.windows.net/" + testTenant + "/", "https://login.microsoftonline.com/" + testTenant + "/v2.0"}
	for i, ic := range issuers {
		if ic.Issuer != want[i] || ic.JWKSURL != "https://login.microsoftonline.com/"+testTenant+"/discovery/v2.0/keys" ||
			ic.Audience != "https://confidential-ledger.azure.com" || len(ic.Audiences) != 1 || ic.Audiences[0] != ic.Audience+"/" || ic.Namespace != "" {
			t.Errorf("issuer %d: %+v", i, ic)
		}
	}
	for _, bad := range []string{"", "contoso.onmicrosoft.com", "common", testTenant + "/", "72f988bf-86f1-41af-91ab-2d7cd011db4", "72f988bf_86f1_41af_91ab_2d7cd011db47"} {
		if _, err := auth.AzureADIssuers(bad, ""); err == nil || !strings.Contains(err.Error(), "tenant") {
			t.Errorf("AzureADIssuers(%q): err = %v", bad, err)
		}
	}
}
