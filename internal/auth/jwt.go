package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"
)

// Defaults for JWTOptions.
const (
	DefaultLeeway          = 60 * time.Second
	DefaultRefreshInterval = time.Hour
	DefaultMaxLifetime     = 24 * time.Hour
)

// IssuerConfig is one OpenID issuer whose tokens the ledger accepts.
type IssuerConfig struct {
	// Issuer is the exact iss claim of the issuer's tokens, for example
	// "https://sts.windows.net/<tenant-id>/" (Entra ID v1 tokens) or
	// "https://login.microsoftonline.com/<tenant-id>/v2.0". Required.
	Issuer string
	// Audience must appear in the token's aud claim. For ACL clients this
	// is "https://confidential-ledger.azure.com" (the scope they request
	// minus "/.default"). Required.
	Audience string
	// JWKSFile is a file holding the issuer's JWK Set, read once by
	// NewJWTVerifier. Set exactly one of JWKSFile and JWKSURL.
	JWKSFile string
	// JWKSURL is the issuer's jwks_uri, for example
	// "https://login.microsoftonline.com/common/discovery/v2.0/keys". It
	// must be https, except on a loopback host. Keys are fetched on first
	// use and cached (see JWTOptions.RefreshInterval).
	JWKSURL string
	// HTTPClient fetches JWKSURL. Nil means a client with a 10 s timeout.
	HTTPClient *http.Client
}

// JWTOptions tunes a JWTVerifier. The zero value gives the defaults.
type JWTOptions struct {
	// Now returns the current time; nil means time.Now. Tests inject a
	// fixed clock.
	Now func() time.Time
	// Leeway is the clock skew tolerated on exp, nbf and iat. Zero means
	// DefaultLeeway; to allow no skew at all, use time.Nanosecond.
	Leeway time.Duration
	// RefreshInterval is how long keys fetched from a JWKSURL are used
	// before they are fetched again. Zero means DefaultRefreshInterval.
	// Independently, a token with an unknown kid triggers a fetch, but
	// never more often than once per 30 s per URL.
	RefreshInterval time.Duration
	// MaxLifetime bounds how long a token may be valid: exp - iat, or, for
	// a token without iat, exp - now (so that such a token is never
	// honoured for more than MaxLifetime from any moment it is presented).
	// Zero means DefaultMaxLifetime (24 h); Entra ID access tokens live
	// 60 to 90 minutes. Without the bound, a token with exp=1e300 would
	// never expire.
	MaxLifetime time.Duration
	// Logger receives key-fetch events and warnings. Tokens are never
	// logged. Nil means no logging.
	Logger *slog.Logger
}

// withDefaults validates o and fills in its defaults.
func (o JWTOptions) withDefaults() (JWTOptions, error) {
	if o.Leeway < 0 {
		return o, errors.New("auth: JWTOptions.Leeway is negative; use 0 for the default of 60s")
	}
	if o.RefreshInterval < 0 {
		return o, errors.New("auth: JWTOptions.RefreshInterval is negative; use 0 for the default of 1h")
	}
	if o.MaxLifetime < 0 {
		return o, errors.New("auth: JWTOptions.MaxLifetime is negative; use 0 for the default of 24h")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxLifetime == 0 {
		o.MaxLifetime = DefaultMaxLifetime
	}
	if o.Leeway == 0 {
		o.Leeway = DefaultLeeway
	}
	if o.RefreshInterval == 0 {
		o.RefreshInterval = DefaultRefreshInterval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// validate checks one issuer's configuration.
func (c *IssuerConfig) validate() error {
	switch {
	case c.Issuer == "":
		return errors.New("no Issuer; set it to the iss claim of the issuer's tokens")
	case c.Audience == "":
		return errors.New("no Audience; set it to the audience clients request tokens for, e.g. https://confidential-ledger.azure.com")
	case (c.JWKSFile == "") == (c.JWKSURL == ""):
		return errors.New("set exactly one of JWKSFile and JWKSURL")
	case c.JWKSURL != "":
		return checkJWKSURL(c.JWKSURL)
	}
	return nil
}

// checkJWKSURL requires https, so that nobody on the path can substitute
// keys, except for loopback hosts used in tests and sidecars.
func checkJWKSURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("JWKSURL is not a URL: %w", err)
	}
	switch {
	case u.Scheme == "https" && u.Host != "":
		return nil
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return nil
	}
	return fmt.Errorf("JWKSURL %q must be an https URL (http is allowed only for localhost)", s)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// JWTVerifier verifies bearer JWTs from a fixed set of issuers and turns
// them into principals. It is safe for concurrent use.
type JWTVerifier struct {
	issuers     map[string]*issuer
	now         func() time.Time
	leeway      time.Duration
	maxLifetime time.Duration
}

// issuer is a configured issuer and its keys.
type issuer struct {
	audience string
	keys     keySource
}

// NewJWTVerifier checks the configuration and returns a verifier for tokens
// from issuers. JWKS files are read now; JWKS URLs are fetched on first use,
// so a verifier can be built while an issuer is unreachable.
func NewJWTVerifier(issuers []IssuerConfig, opts JWTOptions) (*JWTVerifier, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if len(issuers) == 0 {
		return nil, errors.New("auth: no JWT issuers configured; list at least one, or don't build a JWTVerifier")
	}
	v := &JWTVerifier{issuers: make(map[string]*issuer), now: opts.Now, leeway: opts.Leeway, maxLifetime: opts.MaxLifetime}
	for i := range issuers {
		c := &issuers[i]
		if err := c.validate(); err != nil {
			return nil, fmt.Errorf("auth: JWT issuer %d (%q): %w", i, c.Issuer, err)
		}
		if _, dup := v.issuers[c.Issuer]; dup {
			return nil, fmt.Errorf("auth: JWT issuer %q is configured twice; list each issuer once", c.Issuer)
		}
		keys, err := newKeySource(c, opts)
		if err != nil {
			return nil, fmt.Errorf("auth: JWT issuer %d (%q): %w", i, c.Issuer, err)
		}
		v.issuers[c.Issuer] = &issuer{audience: c.Audience, keys: keys}
	}
	return v, nil
}

// newKeySource builds the key source of a validated issuer configuration.
func newKeySource(c *IssuerConfig, opts JWTOptions) (keySource, error) {
	if c.JWKSFile != "" {
		return loadJWKSFile(c.JWKSFile, opts.Logger)
	}
	client := c.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: fetchTimeout}
	}
	return newRemoteKeys(c.JWKSURL, client, opts), nil
}

// Verify checks a compact-serialised JWT (without the "Bearer " prefix) and
// returns its principal. The token must be signed with an allowed
// algorithm by a key of its issuer, be for the issuer's audience, and be
// within its validity period.
//
// Errors wrap ErrNoCredentials (empty token), ErrKeysUnavailable (the
// issuer's keys couldn't be fetched), or ErrInvalidToken; some of the
// latter are more precisely ErrExpired or ErrUnknownIssuer.
func (v *JWTVerifier) Verify(ctx context.Context, token string) (Principal, error) {
	if token == "" {
		return Principal{}, ErrNoCredentials
	}
	c, err := v.verify(ctx, token)
	if err != nil {
		return Principal{}, err
	}
	id, err := c.userID()
	if err != nil {
		return Principal{}, err
	}
	return Principal{ID: id, Kind: KindJWT}, nil
}

// verify parses the token, checks its signature with the key of the issuer
// it names, and only then decodes and checks its claims.
func (v *JWTVerifier) verify(ctx context.Context, token string) (*claims, error) {
	jws, err := parseCompact(token)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	iss, err := peekIssuer(jws.payload)
	if err != nil {
		return nil, err
	}
	is, ok := v.issuers[iss]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownIssuer, clip(iss))
	}
	key, err := is.key(ctx, jws.header.Kid)
	if err != nil {
		return nil, err
	}
	if err := jws.verify(key); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	c, err := parseClaims(jws.payload)
	if err != nil {
		return nil, err
	}
	if err := c.checkAudience(is.audience); err != nil {
		return nil, err
	}
	if err := c.checkTimes(v.now(), v.leeway, v.maxLifetime); err != nil {
		return nil, err
	}
	return c, nil
}

// key finds the signing key for kid, refetching the issuer's keys once if
// it is unknown (key rotation).
func (is *issuer) key(ctx context.Context, kid string) (*jwk, error) {
	set, err := is.keys.current(ctx)
	if err != nil {
		return nil, err
	}
	k, err := set.lookup(kid)
	if errors.Is(err, errUnknownKID) && kid != "" {
		if newer, ok := is.keys.refetch(ctx); ok {
			k, err = newer.lookup(kid)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	return k, nil
}
