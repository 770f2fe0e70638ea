package auth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/auth"
	"github.com/ledgerd/ledgerd/internal/auth/authtest"
)

// jwksServer serves a JWKS that tests can change, and counts fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	body    []byte
	status  int
	fetches atomic.Int32
}

func newJWKSServer(t *testing.T, body []byte) *jwksServer {
	s := &jwksServer{body: body, status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		body, status := s.body, s.status
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) serve(status int, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body = status, body
}

// urlVerifier returns a verifier that fetches its keys from srv, on clock.
func urlVerifier(t *testing.T, srv *jwksServer, clock *fakeClock) *auth.JWTVerifier {
	t.Helper()
	v, err := auth.NewJWTVerifier([]auth.IssuerConfig{{
		Issuer:     authtest.IssuerURL,
		Audience:   authtest.Audience,
		JWKSURL:    srv.URL + "/keys",
		HTTPClient: srv.Client(),
	}}, auth.JWTOptions{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// longClaims are valid for a day, to outlive the clock advances below.
func longClaims() map[string]any {
	c := claims("u")
	c["exp"] = testNow.Add(24 * time.Hour).Unix()
	return c
}

func TestJWKSURLRotation(t *testing.T) {
	a, b := authtest.NewIssuer(t, "ES256"), authtest.NewIssuer(t, "ES256")
	c := authtest.NewIssuer(t, "RS256")
	tokA, tokB, tokC := a.Sign(longClaims()), b.Sign(longClaims()), c.Sign(longClaims())
	srv := newJWKSServer(t, a.JWKS())
	clock := &fakeClock{now: testNow}
	v := urlVerifier(t, srv, clock)
	ctx := context.Background()

	step := func(name, token string, ok bool, fetches int32) {
		t.Helper()
		_, err := v.Verify(ctx, token)
		if (err == nil) != ok {
			t.Errorf("%s: err = %v, want ok=%v", name, err, ok)
		}
		if got := srv.fetches.Load(); got != fetches {
			t.Errorf("%s: %d fetches, want %d", name, got, fetches)
		}
	}
	step("first use fetches", tokA, true, 1)
	step("cached", tokA, true, 1)

	srv.serve(http.StatusOK, authtest.JWKS(a, b))
	step("new kid within 30s: no refetch", tokB, false, 1)
	clock.Advance(31 * time.Second)
	step("new kid after 30s: refetched", tokB, true, 2)
	step("unknown kid right after: no refetch", tokC, false, 2)

	srv.serve(http.StatusInternalServerError, []byte("oops"))
	clock.Advance(2 * time.Hour)
	step("stale, fetch fails: old keys kept", tokA, true, 3)
	step("failure is rate-limited", tokB, true, 3)

	srv.serve(http.StatusOK, c.JWKS())
	clock.Advance(31 * time.Second)
	step("stale after failure: refetched", tokC, true, 4)
	step("rotated-out key rejected", tokA, false, 4)
}

func TestJWKSURLRefreshInterval(t *testing.T) {
	a, b := authtest.NewIssuer(t, "ES256"), authtest.NewIssuer(t, "ES256")
	srv := newJWKSServer(t, a.JWKS())
	clock := &fakeClock{now: testNow}
	v := urlVerifier(t, srv, clock)
	tokA := a.Sign(longClaims())
	if _, err := v.Verify(context.Background(), tokA); err != nil {
		t.Fatal(err)
	}
	srv.serve(http.StatusOK, b.JWKS()) // a is withdrawn, e.g. compromised
	clock.Advance(59 * time.Minute)
	if _, err := v.Verify(context.Background(), tokA); err != nil {
		t.Errorf("before the refresh interval: %v", err)
	}
	clock.Advance(2 * time.Minute)
	if _, err := v.Verify(context.Background(), tokA); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("after the refresh interval: err = %v, want ErrInvalidToken", err)
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Errorf("%d fetches, want 2", n)
	}
}

func TestJWKSURLUnavailable(t *testing.T) {
	is := testIssuer(t, "ES256")
	token := is.Sign(longClaims())
	tests := map[string]struct {
		status int
		body   []byte
	}{
		"HTTP 500":      {http.StatusInternalServerError, is.JWKS()},
		"HTTP 404":      {http.StatusNotFound, nil},
		"not JSON":      {http.StatusOK, []byte("<html>")},
		"no keys":       {http.StatusOK, []byte(`{"keys":[]}`)},
		"over 1 MiB":    {http.StatusOK, []byte(`{"keys":[],"pad":"` + strings.Repeat("x", 1<<20) + `"}`)},
		"unusable keys": {http.StatusOK, []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`)},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			srv := newJWKSServer(t, tt.body)
			srv.serve(tt.status, tt.body)
			clock := &fakeClock{now: testNow}
			v := urlVerifier(t, srv, clock)
			for range 3 {
				_, err := v.Verify(context.Background(), token)
				if !errors.Is(err, auth.ErrKeysUnavailable) || errors.Is(err, auth.ErrInvalidToken) {
					t.Fatalf("err = %v, want ErrKeysUnavailable only", err)
				}
			}
			if n := srv.fetches.Load(); n != 1 {
				t.Errorf("%d fetches, want 1 (failures are rate-limited)", n)
			}
			srv.serve(http.StatusOK, is.JWKS())
			clock.Advance(30 * time.Second)
			if _, err := v.Verify(context.Background(), token); err != nil {
				t.Errorf("after recovery: %v", err)
			}
		})
	}
}

// TestJWKSURLCanceledContext checks that a caller giving up neither blocks
// nor counts as a failed fetch.
func TestJWKSURLCanceledContext(t *testing.T) {
	is := testIssuer(t, "ES256")
	srv := newJWKSServer(t, is.JWKS())
	v := urlVerifier(t, srv, &fakeClock{now: testNow})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	token := is.Sign(longClaims())
	if _, err := v.Verify(ctx, token); !errors.Is(err, auth.ErrKeysUnavailable) {
		t.Errorf("canceled: err = %v, want ErrKeysUnavailable", err)
	}
	if _, err := v.Verify(context.Background(), token); err != nil {
		t.Errorf("next caller: %v", err)
	}
}

// TestJWKSURLConcurrent runs many verifications while keys rotate; run it
// with -race.
func TestJWKSURLConcurrent(t *testing.T) {
	a, b := authtest.NewIssuer(t, "ES256"), authtest.NewIssuer(t, "ES256")
	srv := newJWKSServer(t, authtest.JWKS(a, b))
	clock := &fakeClock{now: testNow}
	v := urlVerifier(t, srv, clock)
	tokens := []string{a.Sign(longClaims()), b.Sign(longClaims())}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				if _, err := v.Verify(context.Background(), tokens[(g+i)%2]); err != nil {
					t.Error(err)
					return
				}
				if g == 0 && i%10 == 0 {
					clock.Advance(20 * time.Minute)
				}
			}
		})
	}
	wg.Wait()
	if n := srv.fetches.Load(); n < 2 || n > 6 {
		t.Errorf("%d fetches, want a handful", n)
	}
}
