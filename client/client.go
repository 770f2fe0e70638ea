package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client is a client of one ledger. It is safe for concurrent use; create
// it once and reuse it, and Close it when done.
type Client struct {
	// base is the ledger endpoint; identityBase the identity endpoint.
	base, identityBase *url.URL
	ledgerID           string
	apiVersion         string
	// legacy is api-version 0.1-preview: subLedgerId and @nextLink.
	legacy bool

	// hc sends ledger requests over the pinned TLS configuration;
	// identityHTTP sends identity requests (hc itself when the identity
	// endpoint is the ledger).
	hc, identityHTTP *http.Client
	// baseTransport is the transport the others are cloned from.
	baseTransport *http.Transport

	serviceCert *x509.Certificate
	servicePEM  []byte
	// member signs governance writes; nil if there is no member signer.
	member *MemberSigner
	// tokens is nil for a certificate credential.
	tokens tokenProvider

	retry        RetryPolicy
	pollInterval time.Duration
	pollAttempts int
	log          *slog.Logger

	// Injected for tests: sleep waits for d or until ctx is done; jitter
	// returns a random duration in [0, n); now is the clock.
	sleep  func(ctx context.Context, d time.Duration) error
	jitter func(n time.Duration) time.Duration
	now    func() time.Time
}

// New returns a client of the ledger at endpoint (such as
// "https://localhost:8443" or "https://myledger.confidential-ledger.azure.com")
// that authenticates with cred and pins the service certificate opts says
// (opts is required for that; see Options). With TrustOnFirstUse, New
// fetches the certificate, which takes up to 30 seconds; otherwise it does
// no I/O beyond reading the files named.
func New(endpoint string, cred Credential, opts *Options) (*Client, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	o = o.withDefaults()
	base, err := parseEndpoint(endpoint, "endpoint")
	if err != nil {
		return nil, err
	}
	if cred == nil {
		return nil, errors.New("client: no credential: use CertificateFile, Certificate, FromTokenSource or FromTokenCredential")
	}
	cert, tokens, err := cred.setup()
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	c := &Client{
		base:         base,
		identityBase: base,
		ledgerID:     o.LedgerID,
		apiVersion:   o.APIVersion,
		legacy:       o.APIVersion == "0.1-preview",
		tokens:       tokens,
		retry:        o.Retry,
		pollInterval: o.PollInterval,
		pollAttempts: o.PollAttempts,
		log:          o.Logger,
		sleep:        sleepCtx,
		jitter:       func(n time.Duration) time.Duration { return rand.N(n) },
		now:          time.Now,
		member:       o.MemberSigner,
	}
	if c.member == nil && cert != nil {
		c.member, _ = memberSignerOf(cert) // not a member credential: no signer, and governance writes say so
	}
	if o.IdentityEndpoint != "" {
		if c.identityBase, err = parseEndpoint(o.IdentityEndpoint, "Options.IdentityEndpoint"); err != nil {
			return nil, err
		}
	}
	if c.ledgerID == "" {
		c.ledgerID = defaultLedgerID(base)
	}
	c.baseTransport, c.identityHTTP = transports(o)
	if c.serviceCert, c.servicePEM, err = c.loadServiceCert(o); err != nil {
		c.identityHTTP.CloseIdleConnections()
		return nil, fmt.Errorf("client: %w", err)
	}
	c.hc = ledgerHTTPClient(o, c.baseTransport, c.serviceCert, cert)
	if c.identityIsLedger() {
		c.identityHTTP.CloseIdleConnections()
		c.identityHTTP = c.hc
	}
	return c, nil
}

// parseEndpoint checks that s is an https URL without query or fragment,
// and returns it without a trailing slash.
func parseEndpoint(s, what string) (*url.URL, error) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return nil, fmt.Errorf("client: bad %s: %w", what, err)
	case u.Scheme != "https":
		return nil, fmt.Errorf("client: %s %q is not an https URL: ledgers are reached over TLS only", what, s)
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("client: %s %q has no host", what, s)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("client: %s %q must have no user, query or fragment", what, s)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// transports returns the base transport and the client of a separate
// identity endpoint, which is verified with the system's roots (or the
// base's TLS configuration).
func transports(o Options) (*http.Transport, *http.Client) {
	var base *http.Transport
	switch {
	case o.Transport != nil:
		base = o.Transport
	case o.HTTPClient != nil && o.HTTPClient.Transport != nil:
		if t, ok := o.HTTPClient.Transport.(*http.Transport); ok {
			base = t
		}
	}
	if base == nil {
		base = http.DefaultTransport.(*http.Transport)
	}
	base = base.Clone()
	identity := &http.Client{Transport: base.Clone()}
	if o.HTTPClient != nil {
		identity.Timeout = o.HTTPClient.Timeout
		if _, ok := o.HTTPClient.Transport.(*http.Transport); !ok && o.HTTPClient.Transport != nil {
			identity.Transport = o.HTTPClient.Transport
		}
	}
	return base, identity
}

// ledgerHTTPClient returns the client of ledger requests, on a clone of
// the base transport that pins the service certificate, unless the caller's
// HTTPClient has a RoundTripper of its own.
func ledgerHTTPClient(o Options, base *http.Transport, service *x509.Certificate, cert *tls.Certificate) *http.Client {
	hc := &http.Client{}
	if o.HTTPClient != nil {
		*hc = *o.HTTPClient
		if _, ok := hc.Transport.(*http.Transport); !ok && hc.Transport != nil {
			return hc // the caller's RoundTripper pins and authenticates
		}
	}
	tr := base.Clone()
	tr.TLSClientConfig = pinnedTLS(base.TLSClientConfig, service, cert)
	hc.Transport = tr
	return hc
}

// Endpoint returns the ledger's URL.
func (c *Client) Endpoint() string { return c.base.String() }

// ServiceCertificate returns the pinned service certificate: the one
// receipts are verified against.
func (c *Client) ServiceCertificate() *x509.Certificate { return c.serviceCert }

// ServiceCertificatePEM returns the pinned service certificate, PEM-encoded
// as it was read or fetched.
func (c *Client) ServiceCertificatePEM() []byte { return append([]byte(nil), c.servicePEM...) }

// Close closes the client's idle connections. Requests in flight are not
// interrupted; the client remains usable.
func (c *Client) Close() error {
	c.hc.CloseIdleConnections()
	if c.identityHTTP != c.hc {
		c.identityHTTP.CloseIdleConnections()
	}
	return nil
}

// sleepCtx waits for d, or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
