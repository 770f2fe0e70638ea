package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/auth"
	"github.com/ledgerd/ledgerd/internal/auth/authtest"
)

// --aad-tenant TENANT accepts the tenant's v1 and v2 tokens for ACL's
// audience, with the keys of the tenant's key set URL (here a local server
// standing in for login.microsoftonline.com), fetched once for both.
func TestAADTenant(t *testing.T) {
	const tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	is := authtest.NewIssuer(t, "RS256")
	var fetches atomic.Int32
	var path atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		path.Store(r.URL.Path)
		w.Header().Set("Content-Type", "application/json")
		w.Write(is.JWKS())
	}))
	defer srv.Close()
	aadKeysURL = srv.URL + "/" + tenant + "/discovery/v2.0/keys"
	defer func() { aadKeysURL = "" }()

	cfg, _, err := parseConfig([]string{"--aad-tenant", tenant}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	v, err := jwtVerifier(cfg, slog.New(slog.DiscardHandler))
	if err != nil || v == nil {
		t.Fatalf("jwtVerifier: %v, %v", v, err)
	}
	const oid = "6696d1bc-6012-47da-8556-ab4c747999c9"
	now := time.Now()
	for _, iss := range []string{"https://sts.windows.net/" + tenant + "/", "https://login.microsoftonline.com/" + tenant + "/v2.0"} {
		for _, aud := range []string{auth.AzureADAudience, auth.AzureADAudience + "/"} {
			p, err := v.Verify(context.Background(), is.Sign(authtest.Claims(iss, aud, oid, now)))
			if err != nil || p.ID != oid {
				t.Errorf("iss %s, aud %s: Verify = %+v, %v", iss, aud, p, err)
			}
		}
	}
	if n, p := fetches.Load(), path.Load(); n != 1 || p != "/"+tenant+"/discovery/v2.0/keys" {
		t.Errorf("keys fetched %d times, last from %v; want once from the tenant's key set", n, p)
	}
	if got := auth.AzureADKeysURL(tenant); got != "https://login.microsoftonline.com/"+tenant+"/discovery/v2.0/keys" {
		t.Errorf("AzureADKeysURL = %s", got)
	}
}
