package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
)

// RSA modulus bounds. The upper bound keeps a hostile JWKS from making every
// verification expensive.
const (
	minRSABits = 2048
	maxRSABits = 8192
)

// jwk is a validated public signing key from a JWK Set (RFC 7517).
type jwk struct {
	kid  string
	kty  string // "RSA" or "EC"
	crv  string // "P-256" or "P-384" for EC
	alg  string // optional; restricts the key to one algorithm
	size int    // EC: coordinate and signature-half length in bytes
	pub  crypto.PublicKey
}

// usableWith checks that the token's algorithm fits the key's type, curve
// and, if the key names one, algorithm.
func (k *jwk) usableWith(alg algorithm) error {
	if k.kty != alg.kty || k.crv != alg.crv {
		return fmt.Errorf("alg %s can't be used with a %s key", alg.name, k.describe())
	}
	if k.alg != "" && k.alg != alg.name {
		return fmt.Errorf("alg %s can't be used with key %q, which is for %s", alg.name, clip(k.kid), clip(k.alg))
	}
	return nil
}

func (k *jwk) describe() string {
	if k.crv != "" {
		return k.kty + " " + k.crv
	}
	return k.kty
}

// keySet is an issuer's usable keys.
type keySet struct {
	keys  []*jwk
	byKID map[string]*jwk
}

// errUnknownKID means the key set has no key for the token.
var errUnknownKID = errors.New("no signing key")

// lookup returns the key a token with header kid should be verified with:
// the key with that kid, or, for a token without kid, the only key.
func (s *keySet) lookup(kid string) (*jwk, error) {
	if kid == "" {
		if len(s.keys) == 1 {
			return s.keys[0], nil
		}
		return nil, fmt.Errorf("%w: token has no kid and the issuer has %d keys", errUnknownKID, len(s.keys))
	}
	if k, ok := s.byKID[kid]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("%w with kid %q", errUnknownKID, clip(kid))
}

// rawJWK is a JWK as it appears on the wire (RFC 7517 §4, RFC 7518 §6).
type rawJWK struct {
	Kty    string   `json:"kty"`
	Kid    string   `json:"kid"`
	Alg    string   `json:"alg"`
	Use    string   `json:"use"`
	KeyOps []string `json:"key_ops"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	Crv    string   `json:"crv"`
	X      string   `json:"x"`
	Y      string   `json:"y"`
}

// parseJWKS parses a JWK Set. Keys that can't be used for verifying
// signatures (other key types or curves, encryption keys, malformed or weak
// keys, duplicate kids) are left out, each with a reason in skipped; it is
// an error if the document is malformed or no key is left.
func parseJWKS(data []byte) (set *keySet, skipped []error, err error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("auth: couldn't parse JWKS: %w", err)
	}
	set = &keySet{byKID: make(map[string]*jwk)}
	for i, raw := range doc.Keys {
		k, err := parseJWK(raw)
		if err == nil {
			err = set.add(k)
		}
		if err != nil {
			skipped = append(skipped, fmt.Errorf("key %d: %w", i, err))
		}
	}
	if len(set.keys) == 0 {
		return nil, skipped, fmt.Errorf("auth: JWKS has no usable signing key (%d keys listed)", len(doc.Keys))
	}
	return set, skipped, nil
}

// add appends k, refusing a second key with the same kid.
func (s *keySet) add(k *jwk) error {
	if k.kid != "" {
		if _, dup := s.byKID[k.kid]; dup {
			return fmt.Errorf("duplicate kid %q", clip(k.kid))
		}
		s.byKID[k.kid] = k
	}
	s.keys = append(s.keys, k)
	return nil
}

// parseJWK decodes and validates one key.
func parseJWK(data json.RawMessage) (*jwk, error) {
	var raw rawJWK
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("couldn't parse key: %w", err)
	}
	if err := raw.checkUse(); err != nil {
		return nil, err
	}
	k := &jwk{kid: raw.Kid, kty: raw.Kty, alg: raw.Alg}
	if raw.Alg != "" {
		alg, ok := algorithms[raw.Alg]
		if !ok || alg.kty != raw.Kty || alg.crv != raw.Crv {
			return nil, fmt.Errorf("key %q: alg %q does not fit a %q %q key", clip(raw.Kid), clip(raw.Alg), clip(raw.Kty), clip(raw.Crv))
		}
	}
	var err error
	switch raw.Kty {
	case "RSA":
		k.pub, err = raw.rsaKey()
	case "EC":
		k.crv = raw.Crv
		k.pub, k.size, err = raw.ecKey()
	default:
		err = fmt.Errorf("unsupported kty %q", clip(raw.Kty))
	}
	if err != nil {
		return nil, fmt.Errorf("key %q: %w", clip(raw.Kid), err)
	}
	return k, nil
}

// checkUse rejects keys published for something other than signatures
// (RFC 7517 §4.2, §4.3).
func (raw *rawJWK) checkUse() error {
	if raw.Use != "" && raw.Use != "sig" {
		return fmt.Errorf("key %q: use is %q, not sig", clip(raw.Kid), clip(raw.Use))
	}
	if raw.KeyOps != nil && !slices.Contains(raw.KeyOps, "verify") {
		return fmt.Errorf("key %q: key_ops does not include verify", clip(raw.Kid))
	}
	return nil
}

// rsaKey decodes n and e (RFC 7518 §6.3.1) and checks the key is sound.
func (raw *rawJWK) rsaKey() (*rsa.PublicKey, error) {
	nb, err := decodeKeyParam("n", raw.N)
	if err != nil {
		return nil, err
	}
	eb, err := decodeKeyParam("e", raw.E)
	if err != nil {
		return nil, err
	}
	n := new(big.Int).SetBytes(nb)
	if bits := n.BitLen(); bits < minRSABits || bits > maxRSABits {
		return nil, fmt.Errorf("RSA modulus has %d bits, want %d to %d", bits, minRSABits, maxRSABits)
	}
	if n.Bit(0) == 0 {
		return nil, errors.New("RSA modulus is even")
	}
	e := new(big.Int).SetBytes(eb)
	if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
		return nil, errors.New("RSA exponent must be odd, at least 3 and below 2^31")
	}
	return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
}

// ecKey decodes crv, x and y (RFC 7518 §6.2.1) and checks that the point is
// on the curve and not the point at infinity.
func (raw *rawJWK) ecKey() (*ecdsa.PublicKey, int, error) {
	var curve elliptic.Curve
	switch raw.Crv {
	case "P-256":
		curve = elliptic.P256()
	case "P-384":
		curve = elliptic.P384()
	default:
		return nil, 0, fmt.Errorf("unsupported crv %q", clip(raw.Crv))
	}
	size := (curve.Params().BitSize + 7) / 8
	x, err := decodeKeyParam("x", raw.X)
	if err != nil {
		return nil, 0, err
	}
	y, err := decodeKeyParam("y", raw.Y)
	if err != nil {
		return nil, 0, err
	}
	// RFC 7518 §6.2.1.2: coordinates are the full length of the field.
	if len(x) != size || len(y) != size {
		return nil, 0, fmt.Errorf("EC coordinates must be %d bytes each", size)
	}
	point := append(append([]byte{4}, x...), y...) // SEC 1 uncompressed point
	pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
	if err != nil {
		return nil, 0, fmt.Errorf("EC point is not a valid %s public key: %w", raw.Crv, err)
	}
	return pub, size, nil
}

// decodeKeyParam decodes a base64url key parameter. Trailing padding is
// tolerated because some issuers emit it.
func decodeKeyParam(name, s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if s == "" || !isCompactJWSAlphabet(s) || strings.Contains(s, ".") {
		return nil, fmt.Errorf("parameter %s is missing or not base64url", name)
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("couldn't decode parameter %s: %w", name, err)
	}
	return b, nil
}
