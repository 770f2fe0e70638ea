package main

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/auth"
	"github.com/ledgerd/ledgerd/internal/auth/authtest"
	"github.com/ledgerd/ledgerd/internal/gov"
	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/ledger"
)

// verifierFunc verifies a token.
type verifierFunc func(ctx context.Context, token string) (auth.Principal, error)

func (f verifierFunc) Verify(ctx context.Context, token string) (auth.Principal, error) {
	return f(ctx, token)
}

// memState is a gov.State over applied writes.
type memState map[string]map[string][]byte

func (s memState) apply(ws []ledger.MapWrites) {
	for _, w := range ws {
		if s[w.Name] == nil {
			s[w.Name] = map[string][]byte{}
		}
		for _, kv := range w.Writes {
			s[w.Name][string(kv.Key)] = kv.Value
		}
		for _, k := range w.Removes {
			delete(s[w.Name], string(k))
		}
	}
}

func (s memState) Get(name string, key []byte) ([]byte, bool) {
	v, ok := s[name][string(key)]
	return v, ok
}

func (s memState) Range(name string, fn func(key, value []byte) bool) {
	for _, k := range slices.Sorted(maps.Keys(s[name])) {
		if !fn([]byte(k), s[name][k]) {
			return
		}
	}
}

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
	// The flags seed the genesis; tokens are verified against the state.
	issuers, err := flagIssuers(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	member, _, err := identity.NewClientIdentity("member", nil)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := gov.Genesis{Members: [][]byte{member}, JWTIssuers: issuers}.Writes()
	if err != nil {
		t.Fatal(err)
	}
	st := memState{}
	st.apply(ws)
	gv, err := auth.NewGovernedVerifier(auth.JWTOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := verifierFunc(func(ctx context.Context, token string) (auth.Principal, error) {
		return gv.Verify(ctx, token, gov.JWTRegistry{State: st})
	})
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
