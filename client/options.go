package client

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// Defaults of Options.
const (
	// DefaultAPIVersion is the api-version the client speaks: the first
	// stable ACL API, the default of the Python and JavaScript SDKs 1.0.
	DefaultAPIVersion = "2022-05-13"
	// DefaultScope is the scope of the tokens a token credential is asked
	// for, as the Azure SDKs request them.
	DefaultScope = "https://confidential-ledger.azure.com/.default"
	// AzureIdentityEndpoint is the Azure identity service, which hands out
	// the service certificates of Azure ledgers. Set it as
	// Options.IdentityEndpoint to use the client with an Azure ledger and
	// TrustOnFirstUse. A ledgerd node serves its own identity.
	AzureIdentityEndpoint = "https://identity.confidential-ledger.core.azure.com"
	// DefaultPollInterval is the wait between the queries of a poll, as in
	// the Python SDK.
	DefaultPollInterval = 500 * time.Millisecond
	// DefaultPollAttempts bounds the queries of a poll, as the Python SDK's
	// max_tries does.
	DefaultPollAttempts = 6
)

// Options configure a Client. Exactly one way of trusting the ledger's
// service certificate is required: ServiceCertFile, ServiceCertPEM or
// TrustOnFirstUse. Every other field is optional.
type Options struct {
	// ServiceCertFile is a PEM file holding the ledger's service certificate
	// (ledgerd writes it as DATA/service.pem; Python's
	// ledger_certificate_path). TLS connections are verified against it
	// alone. With TrustOnFirstUse, a missing file is fetched and created.
	ServiceCertFile string
	// ServiceCertPEM is the service certificate itself, PEM-encoded. Set
	// at most one of ServiceCertFile and ServiceCertPEM.
	ServiceCertPEM []byte
	// TrustOnFirstUse fetches the service certificate from the identity
	// endpoint when New runs, without any means to check it, and pins it
	// for the client's life; with ServiceCertFile, only when that file does
	// not exist yet, and the certificate is then written there, so that
	// later clients pin what the first one saw (Python's behaviour). Never
	// the default: an attacker on the network path during that first fetch
	// could impersonate the ledger. Prefer distributing the certificate.
	TrustOnFirstUse bool
	// IdentityEndpoint is the identity service, for TrustOnFirstUse and
	// GetLedgerIdentity. Default: the ledger endpoint itself, which a
	// ledgerd node serves (its TLS certificate is then checked to be issued
	// by the certificate it hands out). Azure ledgers need
	// AzureIdentityEndpoint, which is verified with the system's roots.
	IdentityEndpoint string
	// LedgerID names the ledger at the identity service. Default: the first
	// label of the endpoint's host name, as the Python SDK derives it.
	LedgerID string
	// APIVersion is the api-version of every request. Default
	// DefaultAPIVersion. "0.1-preview" switches to that version's names
	// (subLedgerId, @nextLink).
	APIVersion string
	// HTTPClient sends the requests. If its Transport is nil or an
	// *http.Transport, the client uses a clone of it with its TLS
	// configuration set to pin the service certificate and present the
	// client certificate; any other RoundTripper is used as it is, and must
	// do both itself. Its Timeout, if any, bounds each attempt. Set at most
	// one of HTTPClient and Transport.
	HTTPClient *http.Client
	// Transport is the base transport (proxy, connection limits, timeouts):
	// the client uses a clone of it with its TLS configuration set as for
	// HTTPClient. Default: a clone of http.DefaultTransport.
	Transport *http.Transport
	// Retry says how requests are retried on 429, 503 and transport errors.
	// The zero value gives the defaults of RetryPolicy.
	Retry RetryPolicy
	// PollInterval is the wait between the queries of a poll (waiting for
	// commit, or while the ledger answers Loading). Default
	// DefaultPollInterval. The PollInterval option overrides it per call.
	PollInterval time.Duration
	// PollAttempts bounds the queries of a poll. Default
	// DefaultPollAttempts; negative means no bound but the context's. The
	// MaxAttempts option overrides it per call.
	PollAttempts int
	// MemberSigner signs the governance writes (CreateProposal,
	// SubmitBallot, WithdrawProposal, UpdateStateDigest, AckStateDigest) as
	// a consortium member. Default: the client certificate of a
	// CertificateFile or Certificate credential, if its key is ECDSA (a
	// member's DATA/member0.pem signs as that member). Governance writes
	// without a signer fail with ErrNoMemberSigner.
	MemberSigner *MemberSigner
	// Logger receives retries and the trust-on-first-use fetch, at debug and
	// info level; never tokens or keys. Default: no logging.
	Logger *slog.Logger
}

// RetryPolicy says how a request is retried. A request is retried when the
// ledger answers 429 or 503, or the connection fails, waiting as a
// Retry-After header says (seconds or an HTTP date) or else an exponential
// backoff with full jitter: a random delay in [0, min(MaxDelay,
// BaseDelay·2^(n-1))) before retry n. Retries stop at MaxAttempts or when
// the context is done, or would be done before the wait ends.
//
// GET, PATCH and DELETE are idempotent and retried in all those cases. POST
// (AppendToLedger) is retried only when the write cannot have happened: a
// connection that failed before the request was sent, 429 (throttled before
// processing) and 503 ServerBusy (ledgerd refuses writes it has not
// submitted this way). Other 503s and connection failures after the request
// was sent may have written the entry, and are returned.
type RetryPolicy struct {
	// MaxAttempts is the most attempts of one request, the first included.
	// Default 4; 1 disables retries.
	MaxAttempts int
	// BaseDelay is the backoff before the first retry. Default 200ms.
	BaseDelay time.Duration
	// MaxDelay caps the backoff (not a Retry-After). Default 10s.
	MaxDelay time.Duration
}

// Defaults of RetryPolicy.
const (
	defaultMaxAttempts = 4
	defaultBaseDelay   = 200 * time.Millisecond
	defaultMaxDelay    = 10 * time.Second
)

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts == 0 {
		p.MaxAttempts = defaultMaxAttempts
	}
	if p.BaseDelay == 0 {
		p.BaseDelay = defaultBaseDelay
	}
	if p.MaxDelay == 0 {
		p.MaxDelay = max(defaultMaxDelay, p.BaseDelay)
	}
	return p
}

func (p RetryPolicy) validate() error {
	switch {
	case p.MaxAttempts < 0:
		return fmt.Errorf("Options.Retry.MaxAttempts is %d: use 1 to disable retries, 0 for the default", p.MaxAttempts)
	case p.BaseDelay < 0 || p.MaxDelay < 0:
		return errors.New("Options.Retry delays must not be negative")
	case p.MaxDelay < p.BaseDelay:
		return fmt.Errorf("Options.Retry.MaxDelay (%v) is less than BaseDelay (%v)", p.MaxDelay, p.BaseDelay)
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.APIVersion == "" {
		o.APIVersion = DefaultAPIVersion
	}
	if o.PollInterval == 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.PollAttempts == 0 {
		o.PollAttempts = DefaultPollAttempts
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Retry = o.Retry.withDefaults()
	return o
}

// errNoTrust is New's error when no way of trusting the ledger is given.
var errNoTrust = errors.New("no service certificate to pin: set Options.ServiceCertFile " +
	"(ledgerd's DATA/service.pem) or Options.ServiceCertPEM, or, knowing the risk, " +
	"Options.TrustOnFirstUse to fetch it from the identity endpoint")

func (o Options) validate() error {
	switch {
	case o.ServiceCertFile != "" && len(o.ServiceCertPEM) > 0:
		return errors.New("both Options.ServiceCertFile and Options.ServiceCertPEM are set: set one")
	case o.TrustOnFirstUse && len(o.ServiceCertPEM) > 0:
		return errors.New("Options.TrustOnFirstUse has nothing to do with Options.ServiceCertPEM set: unset one")
	case o.ServiceCertFile == "" && len(o.ServiceCertPEM) == 0 && !o.TrustOnFirstUse:
		return errNoTrust
	case o.HTTPClient != nil && o.Transport != nil:
		return errors.New("both Options.HTTPClient and Options.Transport are set: set one")
	case o.PollInterval < 0:
		return fmt.Errorf("Options.PollInterval is negative (%v)", o.PollInterval)
	}
	return o.Retry.validate()
}
