package main

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/auth/authtest"
	"github.com/ledgerd/ledgerd/internal/testbin"
)

// --jwt-issuer with a JWKS file seeds the genesis: the issuer and its keys
// become governed state. A later start with other keys changes nothing
// (the governed state decides) and says so in the log.
func TestJWTIssuerFlagSeedsGenesis(t *testing.T) {
	bin := testbin.Command(t, "", "github.com/ledgerd/ledgerd/cmd/ledgerd")
	data := filepath.Join(t.TempDir(), "data")
	const iss = "https://idp.example/"
	a, b := authtest.NewIssuer(t, "ES256"), authtest.NewIssuer(t, "RS256")
	spec := func(is *authtest.Issuer) string { return iss + "," + authtest.Audience + "," + is.JWKSFile(t) + ",idp" }
	p := startLedgerd(t, bin, "--data", data, "--jwt-issuer", spec(a))
	base := "https://" + p.addr
	c := httpsClient(t, data)
	if status, _, body := call(t, c, "PATCH", base+"/app/users/idp:alice?api-version=2022-05-13", `{"assignedRole":"Reader"}`); status != 200 {
		t.Fatalf("PATCH user: %d %v", status, body)
	}
	bearer := bearerClient(t, data)
	get := func(is *authtest.Issuer) int {
		t.Helper()
		req, _ := http.NewRequest("GET", base+"/app/collections?api-version=2022-05-13", nil)
		req.Header.Set("Authorization", "Bearer "+is.Sign(authtest.Claims(iss, authtest.Audience, "alice", time.Now())))
		resp, err := bearer.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if sa, sb := get(a), get(b); sa != 200 || sb != 401 {
		t.Fatalf("first start: key a %d, key b %d", sa, sb)
	}
	_, _, jwk := call(t, c, "GET", base+"/gov/service/jwk?api-version=2024-07-01", "")
	if keys, _ := jwk["keys"].(map[string]any); keys[a.KeyID()] == nil {
		t.Fatalf("/gov/service/jwk lacks the flag's key: %v", jwk)
	}
	p.stop(t)

	p = startLedgerd(t, bin, "--data", data, "--jwt-issuer", spec(b))
	base = "https://" + p.addr
	if sa, sb := get(a), get(b); sa != 200 || sb != 401 {
		t.Fatalf("restart with other keys: key a %d, key b %d", sa, sb)
	}
	p.stop(t)
	if log := p.stderr.String(); !strings.Contains(log, "differs from the governed JWT issuers") || !strings.Contains(log, iss) {
		t.Fatalf("no warning about the changed flag:\n%s", log)
	}
}

// bearerClient pins the service certificate and presents no client
// certificate.
func bearerClient(t *testing.T, data string) *http.Client {
	t.Helper()
	servicePEM, err := os.ReadFile(filepath.Join(data, "service.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(servicePEM)
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}
