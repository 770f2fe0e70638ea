package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
)

// Governed issuers. In a ledgerd service the JWT issuers and their keys are
// governed state, as in CCF (public:ccf.gov.jwt.issuers and
// public:ccf.gov.jwt.public_signing_keys_metadata_v2, written by the
// constitution's set_jwt_issuer, set_jwt_public_signing_keys and
// remove_jwt_issuer): a GovernedVerifier reads them from an IssuerRegistry
// on every request, so that a change is seen by the next request.

// IssuerPolicy is what the tokens of a governed issuer must satisfy, and
// where its keys come from besides the governed ones.
type IssuerPolicy struct {
	// Audiences are the accepted aud values; at least one must be in the
	// token's aud claim.
	Audiences []string
	// Namespace prefixes the issuer's user ids (see IssuerConfig.Namespace).
	Namespace string
	// JWKSURL, if set, is a JWK Set URL the node fetches keys from (cached
	// and refreshed as JWTOptions.RefreshInterval says) for kids the
	// governed keys do not have.
	JWKSURL string
}

// IssuerRegistry is the governed state a GovernedVerifier reads. The server
// backs it with its latest executed state (gov.JWTRegistry). Its methods
// must be safe for concurrent use and must not block on I/O.
type IssuerRegistry interface {
	// JWTIssuer returns the policy of issuer iss, and false if the
	// service does not trust iss.
	JWTIssuer(iss string) (IssuerPolicy, bool)
	// JWTKey returns the DER SubjectPublicKeyInfo of the key kid of issuer
	// iss, and false if iss has no such governed key.
	JWTKey(iss, kid string) ([]byte, bool)
	// JWTNamespaces returns the namespaces of the trusted issuers.
	JWTNamespaces() []string
}

// GovernedVerifier verifies bearer JWTs from the issuers of an
// IssuerRegistry. It is safe for concurrent use.
type GovernedVerifier struct {
	opts   JWTOptions
	client *http.Client

	mu     sync.Mutex
	remote map[string]*remoteKeys // by JWKS URL: one cache per URL
	parsed map[string]*jwk        // by kid and DER: keys already decoded
}

// maxParsedKeys bounds the cache of decoded governed keys.
const maxParsedKeys = 1024

// NewGovernedVerifier returns a verifier of tokens from governed issuers.
// JWKS URLs are fetched with client (nil: a client with a 10 s timeout).
func NewGovernedVerifier(opts JWTOptions, client *http.Client) (*GovernedVerifier, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if client == nil {
		client = &http.Client{Timeout: fetchTimeout}
	}
	return &GovernedVerifier{opts: opts, client: client, remote: map[string]*remoteKeys{}, parsed: map[string]*jwk{}}, nil
}

// Verify checks a compact-serialised JWT as JWTVerifier.Verify does,
// against the issuers and keys of reg. A governed key is found by the
// token's kid, which is then required, as in CCF; an issuer with a JWKS URL
// also accepts the keys fetched from it.
func (g *GovernedVerifier) Verify(ctx context.Context, token string, reg IssuerRegistry) (Principal, error) {
	if token == "" {
		return Principal{}, ErrNoCredentials
	}
	check := tokenCheck{now: g.opts.Now, leeway: g.opts.Leeway, maxLifetime: g.opts.MaxLifetime}
	c, is, err := check.verify(ctx, token, func(iss string) (*issuer, bool) {
		p, ok := reg.JWTIssuer(iss)
		if !ok {
			return nil, false
		}
		_, azure := azureADTenant(iss)
		is := &issuer{audiences: p.Audiences, namespace: p.Namespace, azureAD: azure}
		is.lookup = func(ctx context.Context, kid string) (*jwk, error) { return g.key(ctx, reg, iss, p, kid) }
		return is, true
	})
	if err != nil {
		return Principal{}, err
	}
	id, err := userID(is, c, reg.JWTNamespaces)
	if err != nil {
		return Principal{}, err
	}
	return Principal{ID: id, Kind: KindJWT}, nil
}

// key finds the key kid of issuer iss: a governed key, else one fetched
// from the issuer's JWKS URL.
func (g *GovernedVerifier) key(ctx context.Context, reg IssuerRegistry, iss string, p IssuerPolicy, kid string) (*jwk, error) {
	if kid != "" {
		if der, ok := reg.JWTKey(iss, kid); ok {
			k, err := g.decode(kid, der)
			if err != nil {
				return nil, fmt.Errorf("%w: governed key %q of issuer %q: %w", ErrInvalidToken, clip(kid), clip(iss), err)
			}
			return k, nil
		}
	}
	if p.JWKSURL != "" {
		rk, err := g.remoteKeys(p.JWKSURL)
		if err != nil {
			return nil, fmt.Errorf("%w: issuer %q: %w", ErrKeysUnavailable, clip(iss), err)
		}
		return (&issuer{keys: rk}).key(ctx, kid)
	}
	if kid == "" {
		return nil, fmt.Errorf("%w: token has no kid", ErrInvalidToken)
	}
	return nil, fmt.Errorf("%w: %w with kid %q for issuer %q", ErrInvalidToken, errUnknownKID, clip(kid), clip(iss))
}

// remoteKeys returns the key cache of a JWKS URL, creating it on first use.
func (g *GovernedVerifier) remoteKeys(url string) (*remoteKeys, error) {
	if err := checkJWKSURL(url); err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	rk, ok := g.remote[url]
	if !ok {
		rk = newRemoteKeys(url, g.client, g.opts)
		g.remote[url] = rk
	}
	return rk, nil
}

// decode returns the key of a governed DER public key, decoding it once.
func (g *GovernedVerifier) decode(kid string, der []byte) (*jwk, error) {
	cacheKey := kid + "\x00" + string(der)
	g.mu.Lock()
	k, ok := g.parsed[cacheKey]
	g.mu.Unlock()
	if ok {
		return k, nil
	}
	k, err := keyFromDER(kid, der)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	if len(g.parsed) >= maxParsedKeys {
		clear(g.parsed)
	}
	g.parsed[cacheKey] = k
	g.mu.Unlock()
	return k, nil
}

// keyFromDER decodes a DER SubjectPublicKeyInfo into a signing key, with
// the checks a JWK gets (RSA size and exponent; EC P-256 or P-384).
func keyFromDER(kid string, der []byte) (*jwk, error) {
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("couldn't parse public key: %w", err)
	}
	return keyFromPublic(kid, pub)
}

func keyFromPublic(kid string, pub crypto.PublicKey) (*jwk, error) {
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		if bits := pub.N.BitLen(); bits < minRSABits || bits > maxRSABits {
			return nil, fmt.Errorf("RSA modulus has %d bits, want %d to %d", bits, minRSABits, maxRSABits)
		}
		if pub.N.Bit(0) == 0 || pub.E < 3 || pub.E&1 == 0 {
			return nil, errors.New("RSA key is not sound (even modulus, or exponent even or below 3)")
		}
		return &jwk{kid: kid, kty: "RSA", pub: pub}, nil
	case *ecdsa.PublicKey:
		var crv string
		switch pub.Curve {
		case elliptic.P256():
			crv = "P-256"
		case elliptic.P384():
			crv = "P-384"
		default:
			return nil, fmt.Errorf("unsupported curve %s", pub.Curve.Params().Name)
		}
		return &jwk{kid: kid, kty: "EC", crv: crv, size: (pub.Curve.Params().BitSize + 7) / 8, pub: pub}, nil
	}
	return nil, fmt.Errorf("unsupported public key type %T", pub)
}

// JWKPublicKeyDER validates one JWK (RFC 7517) as a signing key this
// package verifies with, and returns its kid and its DER
// SubjectPublicKeyInfo: what CCF stores of a key in
// public:ccf.gov.jwt.public_signing_keys_metadata_v2. As in CCF, the kid is
// required, and the key is taken from n and e (RSA), else x, y and crv
// (EC), else the first certificate of x5c.
func JWKPublicKeyDER(raw []byte) (kid string, der []byte, err error) {
	var k struct {
		rawJWK
		X5C []string `json:"x5c"`
	}
	if err := json.Unmarshal(raw, &k); err != nil {
		return "", nil, fmt.Errorf("couldn't parse key: %w", err)
	}
	if k.Kid == "" {
		return "", nil, errors.New("missing kid for JWT signing key")
	}
	var pub crypto.PublicKey
	switch {
	case k.N != "" || k.E != "" || k.X != "" || k.Y != "":
		key, err := parseJWK(raw)
		if err != nil {
			return k.Kid, nil, err
		}
		pub = key.pub
	case len(k.X5C) > 0:
		if err := k.checkUse(); err != nil {
			return k.Kid, nil, err
		}
		certDER, err := base64.StdEncoding.DecodeString(k.X5C[0])
		if err != nil {
			return k.Kid, nil, fmt.Errorf("key %q: couldn't decode x5c: %w", clip(k.Kid), err)
		}
		cert, err := x509.ParseCertificate(certDER)
		if err != nil {
			return k.Kid, nil, fmt.Errorf("key %q has an invalid X.509 certificate: %w", clip(k.Kid), err)
		}
		if _, err := keyFromPublic(k.Kid, cert.PublicKey); err != nil {
			return k.Kid, nil, fmt.Errorf("key %q: %w", clip(k.Kid), err)
		}
		pub = cert.PublicKey
	default:
		return k.Kid, nil, fmt.Errorf("key %q has neither an RSA or EC public key nor x5c", clip(k.Kid))
	}
	der, err = x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return k.Kid, nil, fmt.Errorf("key %q: %w", clip(k.Kid), err)
	}
	return k.Kid, der, nil
}
