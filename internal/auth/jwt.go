package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
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
	// Audiences are further audiences accepted in place of Audience, for
	// example Audience with a trailing slash.
	Audiences []string
	// Namespace names the issuer's users apart from those of the other
	// issuers. Empty: a user's id is its oid (or sub) as is, the default
	// namespace. Otherwise it is Namespace + ":" + oid (or sub), for
	// example "partner:alice". A namespace is 1 to 64 letters, digits,
	// '.', '-' or '_'. Issuers may not share a namespace, except the v1 and
	// v2 issuers of one Azure AD tenant (see AzureADIssuers), whose tokens
	// name one user by one oid.
	Namespace string
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
	case c.Namespace != "" && !validNamespace(c.Namespace):
		return fmt.Errorf("namespace %q: use 1 to 64 letters, digits, '.', '-' or '_'", clip(c.Namespace))
	case c.Audience == "" || slices.Contains(c.Audiences, ""):
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
	issuers map[string]*issuer
	// namespaces lists the issuers' non-empty namespaces: a subject of the
	// default namespace may not start with one of them and a colon.
	namespaces  []string
	now         func() time.Time
	leeway      time.Duration
	maxLifetime time.Duration
}

// issuer is a configured issuer and its keys.
type issuer struct {
	audiences []string
	keys      keySource
	// namespace is the issuer's IssuerConfig.Namespace.
	namespace string
	// azureAD: the issuer is Azure AD's, whose tokens must carry oid.
	azureAD bool
	// lookup, if set, finds the key of a kid instead of keys (a governed
	// issuer: GovernedVerifier).
	lookup func(ctx context.Context, kid string) (*jwk, error)
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
	if err := ValidateIssuers(issuers); err != nil {
		return nil, err
	}
	v := &JWTVerifier{issuers: make(map[string]*issuer), now: opts.Now, leeway: opts.Leeway, maxLifetime: opts.MaxLifetime}
	remote := map[string]keySource{} // one cache per JWKS URL, shared by the issuers using it
	for i := range issuers {
		c := &issuers[i]
		keys, ok := remote[c.JWKSURL]
		if !ok {
			if keys, err = newKeySource(c, opts); err != nil {
				return nil, fmt.Errorf("auth: JWT issuer %d (%q): %w", i, c.Issuer, err)
			}
			if c.JWKSURL != "" {
				remote[c.JWKSURL] = keys
			}
		}
		_, azure := azureADTenant(c.Issuer)
		v.issuers[c.Issuer] = &issuer{audiences: append([]string{c.Audience}, c.Audiences...), keys: keys,
			namespace: c.Namespace, azureAD: azure}
		if c.Namespace != "" && !slices.Contains(v.namespaces, c.Namespace) {
			v.namespaces = append(v.namespaces, c.Namespace)
		}
	}
	return v, nil
}

// ValidateIssuers checks a list of issuer configurations without reading
// or fetching their keys: each must be complete, each issuer listed once,
// and no two issuers may share a namespace (an empty Namespace is the
// default one), except the issuers of one Azure AD tenant. Otherwise one
// user id could name a user of each, and the role given to one would be
// the other's.
func ValidateIssuers(issuers []IssuerConfig) error {
	if len(issuers) == 0 {
		return errors.New("auth: no JWT issuers configured; list at least one, or don't build a JWTVerifier")
	}
	seen := map[string]bool{}
	byNamespace := map[string]string{} // namespace -> first issuer in it
	for i := range issuers {
		c := &issuers[i]
		if err := c.validate(); err != nil {
			return fmt.Errorf("auth: JWT issuer %d (%q): %w", i, c.Issuer, err)
		}
		if seen[c.Issuer] {
			return fmt.Errorf("auth: JWT issuer %q is configured twice; list each issuer once", c.Issuer)
		}
		seen[c.Issuer] = true
		first, shared := byNamespace[c.Namespace]
		if !shared {
			byNamespace[c.Namespace] = c.Issuer
			continue
		}
		t1, ok1 := azureADTenant(first)
		t2, ok2 := azureADTenant(c.Issuer)
		if !ok1 || !ok2 || !strings.EqualFold(t1, t2) {
			what := "the default namespace (bare user ids)"
			if c.Namespace != "" {
				what = fmt.Sprintf("the namespace %q", c.Namespace)
			}
			return fmt.Errorf("auth: JWT issuers %q and %q would share %s, so that one user id could name a user of each; "+
				"give %q a namespace of its own (ledgerd: --jwt-issuer ISSUER,AUDIENCE,JWKS,NAMESPACE)", first, c.Issuer, what, c.Issuer)
		}
	}
	return nil
}

// validNamespace reports whether ns is 1 to 64 letters, digits, '.', '-'
// or '_'.
func validNamespace(ns string) bool {
	if len(ns) == 0 || len(ns) > 64 {
		return false
	}
	for i := 0; i < len(ns); i++ {
		c := ns[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
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
	c, is, err := v.check().verify(ctx, token, func(iss string) (*issuer, bool) {
		is, ok := v.issuers[iss]
		return is, ok
	})
	if err != nil {
		return Principal{}, err
	}
	id, err := userID(is, c, func() []string { return v.namespaces })
	if err != nil {
		return Principal{}, err
	}
	return Principal{ID: id, Kind: KindJWT}, nil
}

// check returns the verifier's token checks.
func (v *JWTVerifier) check() tokenCheck {
	return tokenCheck{now: v.now, leeway: v.leeway, maxLifetime: v.maxLifetime}
}

// tokenCheck is the time-dependent part of a verifier's configuration.
type tokenCheck struct {
	now         func() time.Time
	leeway      time.Duration
	maxLifetime time.Duration
}

// userID names the subject of a verified token in the ledger's one user-id
// namespace, apart from certificate users and other issuers' users: its
// oid (required of Azure AD's tokens), else its sub, prefixed with the
// issuer's namespace if it has one. A subject shaped like a certificate
// fingerprint is refused, as is a subject of the default namespace that
// starts with another issuer's namespace and a colon.
// namespaces returns the namespaces of all issuers; it is called only for
// a subject of the default namespace.
func userID(is *issuer, c *claims, namespaces func() []string) (string, error) {
	subject := c.Oid
	switch {
	case subject == "" && is.azureAD:
		return "", fmt.Errorf("%w: token of Azure AD issuer %q has no oid claim", ErrInvalidToken, clip(c.Iss))
	case subject == "":
		subject = c.Sub
	}
	if subject == "" {
		return "", fmt.Errorf("%w: token has neither oid nor sub", ErrInvalidToken)
	}
	if isFingerprint(subject) {
		return "", fmt.Errorf("%w: token subject %q has the shape of a certificate fingerprint, which names certificate users",
			ErrInvalidToken, clip(subject))
	}
	if is.namespace != "" {
		id := is.namespace + ":" + subject
		if isFingerprint(id) {
			return "", fmt.Errorf("%w: token subject %q in namespace %q has the shape of a certificate fingerprint",
				ErrInvalidToken, clip(subject), is.namespace)
		}
		return id, nil
	}
	for _, ns := range namespaces() {
		if ns != "" && strings.HasPrefix(subject, ns+":") {
			return "", fmt.Errorf("%w: token subject %q starts with %q, the namespace of another issuer's users",
				ErrInvalidToken, clip(subject), ns+":")
		}
	}
	return subject, nil
}

// verify parses the token, checks its signature with the key of the issuer
// it names (found with lookup), and only then decodes and checks its
// claims.
func (v tokenCheck) verify(ctx context.Context, token string, lookup func(iss string) (*issuer, bool)) (*claims, *issuer, error) {
	jws, err := parseCompact(token)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	iss, err := peekIssuer(jws.payload)
	if err != nil {
		return nil, nil, err
	}
	is, ok := lookup(iss)
	if !ok {
		return nil, nil, fmt.Errorf("%w %q", ErrUnknownIssuer, clip(iss))
	}
	key, err := is.key(ctx, jws.header.Kid)
	if err != nil {
		return nil, nil, err
	}
	if err := jws.verify(key); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	c, err := parseClaims(jws.payload)
	if err != nil {
		return nil, nil, err
	}
	if err := c.checkAudience(is.audiences); err != nil {
		return nil, nil, err
	}
	if err := c.checkTimes(v.now(), v.leeway, v.maxLifetime); err != nil {
		return nil, nil, err
	}
	return c, is, nil
}

// key finds the signing key for kid, refetching the issuer's keys once if
// it is unknown (key rotation).
func (is *issuer) key(ctx context.Context, kid string) (*jwk, error) {
	if is.lookup != nil {
		return is.lookup(ctx, kid)
	}
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
