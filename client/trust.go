package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/ledgerd/ledgerd/internal/durable"

	"github.com/ledgerd/ledgerd/receipt"
)

// tofuTimeout bounds the trust-on-first-use fetch in New.
const tofuTimeout = 30 * time.Second

// loadServiceCert returns the service certificate to pin, as the options
// say: from ServiceCertPEM, from ServiceCertFile, or fetched from the
// identity endpoint (TrustOnFirstUse), and then written to ServiceCertFile
// if that is set.
func (c *Client) loadServiceCert(o Options) (*x509.Certificate, []byte, error) {
	if len(o.ServiceCertPEM) > 0 {
		return parseServiceCert(o.ServiceCertPEM, "Options.ServiceCertPEM")
	}
	if o.ServiceCertFile != "" {
		data, err := os.ReadFile(o.ServiceCertFile)
		switch {
		case err == nil:
			return parseServiceCert(data, o.ServiceCertFile)
		case !errors.Is(err, fs.ErrNotExist) || !o.TrustOnFirstUse:
			return nil, nil, fmt.Errorf("couldn't read the service certificate: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), tofuTimeout)
	defer cancel()
	cert, pemData, err := c.fetchServiceCert(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("couldn't fetch the service certificate (TrustOnFirstUse): %w", err)
	}
	c.log.Info("trusting the service certificate fetched on first use",
		"identity_endpoint", c.identityBase.String(), "ledger_id", c.ledgerID, "subject", cert.Subject.String())
	if o.ServiceCertFile != "" {
		if err := durable.WriteFile(o.ServiceCertFile, pemData, 0o644); err != nil {
			return nil, nil, fmt.Errorf("couldn't save the service certificate: %w", err)
		}
	}
	return cert, pemData, nil
}

func parseServiceCert(data []byte, source string) (*x509.Certificate, []byte, error) {
	cert, err := receipt.ParseCertificatePEM(data)
	if err != nil {
		return nil, nil, fmt.Errorf("couldn't parse the service certificate in %s: %w", source, err)
	}
	return cert, data, nil
}

// fetchServiceCert asks the identity endpoint for the service certificate.
// When the identity endpoint is the ledger itself, its TLS certificate
// cannot be verified before the service certificate is known: the
// connection is made unverified, and then the node's certificate chain must
// verify against the certificate it handed out, for the endpoint's host
// name. Otherwise (the Azure identity service) TLS is verified with the
// system's roots.
func (c *Client) fetchServiceCert(ctx context.Context) (*x509.Certificate, []byte, error) {
	self := c.identityIsLedger()
	hc := c.identityHTTP
	if self {
		tr := c.baseTransport.Clone()
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12} // checked below
		defer tr.CloseIdleConnections()
		hc = &http.Client{Transport: tr}
	}
	id, state, err := c.getLedgerIdentity(ctx, hc, c.ledgerID)
	if err != nil {
		return nil, nil, err
	}
	cert, pemData, err := parseServiceCert([]byte(id.TLSCertificate), "the identity endpoint's answer")
	if err != nil {
		return nil, nil, err
	}
	if self {
		if err := verifyPeer(state, cert, c.base.Hostname()); err != nil {
			return nil, nil, err
		}
	}
	return cert, pemData, nil
}

// verifyPeer checks that the TLS peer's certificate chain is issued by the
// service certificate, for host.
func verifyPeer(state *tls.ConnectionState, service *x509.Certificate, host string) error {
	if state == nil || len(state.PeerCertificates) == 0 {
		return errors.New("the identity endpoint presented no TLS certificate")
	}
	roots := x509.NewCertPool()
	roots.AddCert(service)
	inter := x509.NewCertPool()
	for _, ic := range state.PeerCertificates[1:] {
		inter.AddCert(ic)
	}
	_, err := state.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: host})
	if err != nil {
		return fmt.Errorf("the node's TLS certificate is not issued by the service certificate it handed out: %w", err)
	}
	return nil
}

// identityIsLedger reports whether the identity endpoint is the ledger.
func (c *Client) identityIsLedger() bool {
	return c.identityBase.Scheme == c.base.Scheme && c.identityBase.Host == c.base.Host
}

// LedgerIdentity is the identity service's answer: the ledger's service
// certificate.
type LedgerIdentity struct {
	// LedgerID is the ledger's name.
	LedgerID string `json:"ledgerId"`
	// TLSCertificate is the PEM service certificate, the one to pin.
	TLSCertificate string `json:"ledgerTlsCertificate"`
}

// Certificate parses TLSCertificate (ignoring the trailing NUL some
// answers carry).
func (id LedgerIdentity) Certificate() (*x509.Certificate, error) {
	return receipt.ParseCertificatePEM([]byte(id.TLSCertificate))
}

// GetLedgerIdentity asks the identity endpoint (Options.IdentityEndpoint)
// for the service certificate of ledgerID ("" for Options.LedgerID): GET
// /ledgerIdentity/{ledgerId}, without a bearer token. When the identity
// endpoint is the ledger itself, the connection is the pinned one.
func (c *Client) GetLedgerIdentity(ctx context.Context, ledgerID string) (LedgerIdentity, error) {
	if ledgerID == "" {
		ledgerID = c.ledgerID
	}
	id, _, err := c.getLedgerIdentity(ctx, c.identityHTTP, ledgerID)
	return id, err
}

func (c *Client) getLedgerIdentity(ctx context.Context, hc *http.Client, ledgerID string) (LedgerIdentity, *tls.ConnectionState, error) {
	if ledgerID == "" {
		return LedgerIdentity{}, nil, errors.New("empty ledger id")
	}
	rq := &request{method: http.MethodGet, path: "/ledgerIdentity/" + url.PathEscape(ledgerID), identity: true, hc: hc}
	resp, err := c.do(ctx, rq)
	if err != nil {
		return LedgerIdentity{}, nil, err
	}
	var id LedgerIdentity
	if err := resp.decode(&id); err != nil {
		return LedgerIdentity{}, nil, err
	}
	if id.TLSCertificate == "" {
		return LedgerIdentity{}, nil, errors.New("the identity endpoint's answer has no ledgerTlsCertificate")
	}
	return id, resp.tls, nil
}

// pinnedTLS returns the TLS configuration of ledger connections: the
// service certificate as the only root (the host name is checked as usual)
// and the client certificate, if any, presented whatever the server asks
// for. base, if not nil, supplies the other settings.
func pinnedTLS(base *tls.Config, service *x509.Certificate, cert *tls.Certificate) *tls.Config {
	var tc *tls.Config
	if base != nil {
		tc = base.Clone()
	} else {
		tc = &tls.Config{}
	}
	pool := x509.NewCertPool()
	pool.AddCert(service)
	tc.RootCAs = pool
	tc.InsecureSkipVerify = false
	tc.VerifyPeerCertificate = nil
	if tc.MinVersion < tls.VersionTLS12 {
		tc.MinVersion = tls.VersionTLS12
	}
	tc.Certificates = nil
	tc.GetClientCertificate = nil
	if cert != nil {
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return tc
}

// defaultLedgerID derives a ledger id from the endpoint's host as the
// Python SDK does: the first label of the host name.
func defaultLedgerID(u *url.URL) string {
	host := u.Hostname()
	if i := strings.IndexByte(host, '.'); i > 0 {
		return host[:i]
	}
	return host
}
