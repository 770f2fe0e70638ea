// Package authtest issues JWTs for tests: an in-memory OpenID issuer with
// one signing key, its JWK Set, and a signer for arbitrary claims. It is for
// tests of the ledger and tools that drive conformance tests; it uses only
// the standard library and does not import package auth, so auth's own
// tests can use it.
package authtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	_ "crypto/sha512" // registers SHA-384 and SHA-512
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Audience is the audience ACL clients request tokens for.
const Audience = "https://confidential-ledger.azure.com"

// IssuerURL is a conventional iss value for test issuers.
const IssuerURL = "https://issuer.ledgerd.test/"

// alg describes a supported JWS algorithm (RFC 7518 §3).
type alg struct {
	hash  crypto.Hash
	curve elliptic.Curve // nil for RSA
	pss   bool
}

var algs = map[string]alg{
	"RS256": {hash: crypto.SHA256},
	"RS384": {hash: crypto.SHA384},
	"RS512": {hash: crypto.SHA512},
	"PS256": {hash: crypto.SHA256, pss: true},
	"ES256": {hash: crypto.SHA256, curve: elliptic.P256()},
	"ES384": {hash: crypto.SHA384, curve: elliptic.P384()},
}

// Issuer is a test token issuer with one signing key. Its key id is the
// RFC 7638 thumbprint of the public key.
type Issuer struct {
	alg  string
	key  crypto.Signer
	kid  string
	jwk  map[string]any
	algo alg
}

// NewIssuer returns an issuer with a fresh key for alg (RS256, RS384,
// RS512, PS256, ES256 or ES384), failing t on error.
func NewIssuer(t testing.TB, alg string) *Issuer {
	t.Helper()
	is, err := New(alg)
	if err != nil {
		t.Fatal(err)
	}
	return is
}

// New returns an issuer with a fresh key for alg: a 2048-bit RSA key for the
// RS and PS algorithms, a P-256 or P-384 key for ES256 and ES384.
func New(alg string) (*Issuer, error) {
	a, ok := algs[alg]
	if !ok {
		return nil, fmt.Errorf("authtest: unsupported alg %q", alg)
	}
	var key crypto.Signer
	var err error
	if a.curve != nil {
		key, err = ecdsa.GenerateKey(a.curve, rand.Reader)
	} else {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		return nil, fmt.Errorf("authtest: couldn't generate key: %w", err)
	}
	return FromKey(key, alg)
}

// FromKey returns an issuer that signs with an existing key, for tools that
// keep the key between runs (see x509.MarshalPKCS8PrivateKey). The key must
// be an *rsa.PrivateKey or an *ecdsa.PrivateKey matching alg.
func FromKey(key crypto.Signer, alg string) (*Issuer, error) {
	a, ok := algs[alg]
	if !ok {
		return nil, fmt.Errorf("authtest: unsupported alg %q", alg)
	}
	jwk, err := publicJWK(key.Public(), a)
	if err != nil {
		return nil, err
	}
	kid := thumbprint(jwk)
	jwk["kid"], jwk["alg"], jwk["use"] = kid, alg, "sig"
	return &Issuer{alg: alg, key: key, kid: kid, jwk: jwk, algo: a}, nil
}

// publicJWK returns the required members of the JWK of pub (RFC 7638 §3.2).
func publicJWK(pub crypto.PublicKey, a alg) (map[string]any, error) {
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		if a.curve != nil {
			return nil, fmt.Errorf("authtest: an RSA key can't be used for an ES algorithm")
		}
		e := big64(uint64(pub.E))
		return map[string]any{"kty": "RSA", "n": b64(pub.N.Bytes()), "e": b64(e)}, nil
	case *ecdsa.PublicKey:
		if a.curve == nil || pub.Curve != a.curve {
			return nil, fmt.Errorf("authtest: EC key doesn't fit the algorithm's curve")
		}
		point, err := pub.Bytes()
		if err != nil {
			return nil, fmt.Errorf("authtest: couldn't encode EC key: %w", err)
		}
		size := (len(point) - 1) / 2
		return map[string]any{"kty": "EC", "crv": a.curve.Params().Name,
			"x": b64(point[1 : 1+size]), "y": b64(point[1+size:])}, nil
	}
	return nil, fmt.Errorf("authtest: unsupported key type %T", pub)
}

// thumbprint is the RFC 7638 JWK thumbprint: encoding/json sorts map keys,
// which gives exactly the required canonical form.
func thumbprint(required map[string]any) string {
	b, _ := json.Marshal(required)
	sum := sha256.Sum256(b)
	return b64(sum[:])
}

// Alg returns the issuer's JWS algorithm.
func (is *Issuer) Alg() string { return is.alg }

// KeyID returns the kid of the issuer's key.
func (is *Issuer) KeyID() string { return is.kid }

// PublicKey returns the issuer's public key.
func (is *Issuer) PublicKey() crypto.PublicKey { return is.key.Public() }

// PrivateKey returns the issuer's signing key.
func (is *Issuer) PrivateKey() crypto.Signer { return is.key }

// JWK returns the issuer's public key as a JWK object (with kid, alg and
// use), ready to be marshalled. The caller may modify the returned map.
func (is *Issuer) JWK() map[string]any {
	m := make(map[string]any, len(is.jwk))
	for k, v := range is.jwk {
		m[k] = v
	}
	return m
}

// JWKS returns the issuer's JWK Set as JSON.
func (is *Issuer) JWKS() []byte { return JWKS(is) }

// JWKSFile writes the issuer's JWK Set to a file in a test directory, as an
// operator configures a JWT issuer, and returns its path.
func (is *Issuer) JWKSFile(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, is.JWKS(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// JWKS returns one JWK Set holding the keys of all the issuers, as an
// issuer publishes while it rotates keys.
func JWKS(issuers ...*Issuer) []byte {
	keys := make([]map[string]any, len(issuers))
	for i, is := range issuers {
		keys[i] = is.JWK()
	}
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		panic("authtest: couldn't marshal JWKS: " + err.Error())
	}
	return b
}

// Sign returns a compact JWS of claims with header {"alg","kid","typ":"JWT"}.
// It panics if claims can't be marshalled.
func (is *Issuer) Sign(claims map[string]any) string {
	return is.SignWithHeader(nil, claims)
}

// SignWithHeader is Sign with extra or overriding header members, for
// negative tests: a nil value removes a member, so {"kid": nil} signs a
// token without kid. The signature always uses the issuer's own algorithm,
// whatever header["alg"] says.
func (is *Issuer) SignWithHeader(header, claims map[string]any) string {
	h := map[string]any{"alg": is.alg, "kid": is.kid, "typ": "JWT"}
	for k, v := range header {
		if v == nil {
			delete(h, k)
		} else {
			h[k] = v
		}
	}
	input := segment(h) + "." + segment(claims)
	return input + "." + b64(is.SignBytes([]byte(input)))
}

// SignBytes signs data as the issuer's algorithm prescribes: PKCS #1 v1.5
// or PSS for RSA, and fixed-length R||S for ECDSA. It panics on failure.
func (is *Issuer) SignBytes(data []byte) []byte {
	a := is.algo
	h := a.hash.New()
	h.Write(data)
	digest := h.Sum(nil)
	var sig []byte
	var err error
	switch key := is.key.(type) {
	case *ecdsa.PrivateKey:
		sig, err = signECDSA(key, digest)
	case *rsa.PrivateKey:
		if a.pss {
			sig, err = rsa.SignPSS(rand.Reader, key, a.hash, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		} else {
			sig, err = rsa.SignPKCS1v15(rand.Reader, key, a.hash, digest)
		}
	default:
		err = fmt.Errorf("unsupported key type %T", key)
	}
	if err != nil {
		panic("authtest: couldn't sign: " + err.Error())
	}
	return sig
}

// signECDSA returns the JWS form of an ECDSA signature (RFC 7518 §3.4).
func signECDSA(key *ecdsa.PrivateKey, digest []byte) ([]byte, error) {
	r, s, err := ecdsa.Sign(rand.Reader, key, digest)
	if err != nil {
		return nil, err
	}
	size := (key.Curve.Params().BitSize + 7) / 8
	sig := make([]byte, 2*size)
	r.FillBytes(sig[:size])
	s.FillBytes(sig[size:])
	return sig, nil
}

// Claims returns typical claims of an access token for user oid, valid from
// now for an hour: iss, aud, oid, sub (different from oid, as in Entra ID),
// iat, nbf and exp.
func Claims(iss, aud, oid string, now time.Time) map[string]any {
	return map[string]any{
		"iss": iss,
		"aud": aud,
		"oid": oid,
		"sub": "sub-of-" + oid,
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(time.Hour).Unix(),
	}
}

// segment marshals v and encodes it as a JWS segment.
func segment(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic("authtest: couldn't marshal JWS segment: " + err.Error())
	}
	return b64(b)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// big64 is the minimal big-endian encoding of n.
func big64(n uint64) []byte {
	var b []byte
	for ; n > 0; n >>= 8 {
		b = append([]byte{byte(n)}, b...)
	}
	return b
}
