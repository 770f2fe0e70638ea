package client

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Credential says how the client authenticates to the ledger (acl-api.md
// §3): with a TLS client certificate (CertificateFile, Certificate), whose
// user id is the certificate's fingerprint, or with bearer tokens
// (FromTokenSource, FromTokenCredential), whose user id is the token's oid.
// Only this package implements it.
type Credential interface {
	// setup prepares the credential for New: it loads files and returns
	// the client certificate to present, or the token provider.
	setup() (*tls.Certificate, tokenProvider, error)
}

// CertificateFile is a client certificate credential from a PEM file that
// holds the certificate and its private key: the file Python's
// ConfidentialLedgerCertificateCredential takes, and ledgerd's
// DATA/admin.pem. The file is read by New.
func CertificateFile(path string) Credential { return certFile(path) }

// Certificate is a client certificate credential.
func Certificate(cert tls.Certificate) Credential { return certCred{cert} }

type certFile string

func (f certFile) setup() (*tls.Certificate, tokenProvider, error) {
	cert, err := tls.LoadX509KeyPair(string(f), string(f))
	if err != nil {
		return nil, nil, fmt.Errorf("couldn't load the client certificate and key from %s: %w", string(f), err)
	}
	return &cert, nil, nil
}

type certCred struct{ cert tls.Certificate }

func (c certCred) setup() (*tls.Certificate, tokenProvider, error) {
	if len(c.cert.Certificate) == 0 || c.cert.PrivateKey == nil {
		return nil, nil, errors.New("the client certificate has no certificate or no private key")
	}
	return &c.cert, nil, nil
}

// CertificateUserID returns the ledger user id of a client certificate: the
// SHA-256 fingerprint of its DER encoding, upper-case hex, colon-separated,
// as `openssl x509 -fingerprint -sha256` prints it (acl-api.md §3). Use it
// with CreateOrUpdateUser to register a certificate user.
func CertificateUserID(der []byte) string {
	sum := sha256.Sum256(der)
	var b strings.Builder
	for i, x := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", x)
	}
	return b.String()
}

// Token is a bearer token, shaped like golang.org/x/oauth2's Token.
type Token struct {
	// AccessToken is the token sent in the Authorization header.
	AccessToken string
	// TokenType is the header's scheme; empty means "Bearer".
	TokenType string
	// Expiry is when the token expires (zero: unknown). The client does not
	// read it: it asks the TokenSource for a token for every request.
	Expiry time.Time
}

// TokenSource supplies bearer tokens; it has the shape of
// golang.org/x/oauth2's TokenSource, whose tokens convert field by field
// (an oauth2.TokenSource is wrapped in three lines). Token is called for
// every request, so it should cache (as oauth2.ReuseTokenSource does); it
// must be safe for concurrent use.
type TokenSource interface {
	Token() (*Token, error)
}

// AccessToken is a token from a TokenCredential, shaped like azcore's.
type AccessToken struct {
	// Token is the bearer token.
	Token string
	// ExpiresOn is when it expires; a zero time makes the client ask for a
	// new token for every request.
	ExpiresOn time.Time
}

// TokenCredential has the shape of the Azure SDK's azcore.TokenCredential
// (whose GetToken takes policy.TokenRequestOptions{Scopes: scopes}): wrap
// an azidentity credential in a few lines to authenticate with Microsoft
// Entra ID. It must be safe for concurrent use.
type TokenCredential interface {
	GetToken(ctx context.Context, scopes []string) (AccessToken, error)
}

// FromTokenSource is a bearer token credential that takes its tokens from
// ts. Tokens are sent to the ledger endpoint only, never to a separate
// identity endpoint.
func FromTokenSource(ts TokenSource) Credential { return sourceCred{ts} }

// FromTokenCredential is a bearer token credential that asks tc for tokens
// for scopes (default DefaultScope), and reuses each until two minutes
// before it expires, as the Azure SDKs' bearer token policy does.
func FromTokenCredential(tc TokenCredential, scopes ...string) Credential {
	if len(scopes) == 0 {
		scopes = []string{DefaultScope}
	}
	return &azureCred{tc: tc, scopes: scopes}
}

// tokenProvider returns the Authorization header value of a request, and
// forgets cached tokens when the ledger rejects one.
type tokenProvider interface {
	authorization(ctx context.Context) (string, error)
	invalidate()
}

type sourceCred struct{ ts TokenSource }

func (s sourceCred) setup() (*tls.Certificate, tokenProvider, error) {
	if s.ts == nil {
		return nil, nil, errors.New("the token source is nil")
	}
	return nil, s, nil
}

func (s sourceCred) authorization(context.Context) (string, error) {
	t, err := s.ts.Token()
	if err != nil {
		return "", fmt.Errorf("couldn't get a token: %w", err)
	}
	if t == nil || t.AccessToken == "" {
		return "", errors.New("couldn't get a token: the token source returned an empty token")
	}
	typ := t.TokenType
	if typ == "" || strings.EqualFold(typ, "bearer") {
		typ = "Bearer"
	}
	return typ + " " + t.AccessToken, nil
}

func (sourceCred) invalidate() {}

// tokenRefreshMargin is how long before its expiry a cached token is
// replaced.
const tokenRefreshMargin = 2 * time.Minute

type azureCred struct {
	tc     TokenCredential
	scopes []string

	mu     sync.Mutex
	cached AccessToken
}

func (a *azureCred) setup() (*tls.Certificate, tokenProvider, error) {
	if a.tc == nil {
		return nil, nil, errors.New("the token credential is nil")
	}
	return nil, a, nil
}

func (a *azureCred) authorization(ctx context.Context) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cached.Token == "" || time.Until(a.cached.ExpiresOn) < tokenRefreshMargin {
		t, err := a.tc.GetToken(ctx, a.scopes)
		if err != nil {
			return "", fmt.Errorf("couldn't get a token for %s: %w", strings.Join(a.scopes, " "), err)
		}
		if t.Token == "" {
			return "", errors.New("couldn't get a token: the credential returned an empty token")
		}
		a.cached = t
	}
	return "Bearer " + a.cached.Token, nil
}

func (a *azureCred) invalidate() {
	a.mu.Lock()
	a.cached = AccessToken{}
	a.mu.Unlock()
}
