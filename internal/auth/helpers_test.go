package auth_test

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/auth"
	"github.com/ledgerd/ledgerd/internal/auth/authtest"
)

// testNow is the fixed clock of the tests.
var testNow = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

var (
	issuersMu sync.Mutex
	issuers   = map[string]*authtest.Issuer{}
)

// testIssuer returns a shared issuer for alg; RSA key generation is slow
// enough to be worth sharing across tests.
func testIssuer(t testing.TB, alg string) *authtest.Issuer {
	t.Helper()
	issuersMu.Lock()
	defer issuersMu.Unlock()
	if is, ok := issuers[alg]; ok {
		return is
	}
	is := authtest.NewIssuer(t, alg)
	issuers[alg] = is
	return is
}

// claims returns valid claims for user oid at testNow.
func claims(oid string) map[string]any {
	return authtest.Claims(authtest.IssuerURL, authtest.Audience, oid, testNow)
}

// writeFile writes data to a new file in a temporary directory.
func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// fileVerifier returns a verifier for authtest.IssuerURL whose JWKS file is
// jwks, with the clock fixed at testNow.
func fileVerifier(t testing.TB, jwks []byte) *auth.JWTVerifier {
	t.Helper()
	v, err := auth.NewJWTVerifier([]auth.IssuerConfig{{
		Issuer:   authtest.IssuerURL,
		Audience: authtest.Audience,
		JWKSFile: writeFile(t, "jwks.json", jwks),
	}}, auth.JWTOptions{Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func segment(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b64(b)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// flipByte flips one bit of the decoded byte at index i (negative counts
// from the end) of segment seg of token.
func flipByte(t testing.TB, token string, seg, i int) string {
	t.Helper()
	parts := strings.Split(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[seg])
	if err != nil {
		t.Fatal(err)
	}
	if i < 0 {
		i += len(b)
	}
	b[i] ^= 0x01
	parts[seg] = b64(b)
	return strings.Join(parts, ".")
}

// fakeClock is a settable clock, safe for concurrent use.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
