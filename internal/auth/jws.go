package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	_ "crypto/sha256" // registers SHA-256 for crypto.Hash
	_ "crypto/sha512" // registers SHA-384 and SHA-512 for crypto.Hash
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// maxTokenLen caps the size of a compact JWS before anything is decoded.
const maxTokenLen = 16 << 10

// algorithm is a JWS signature algorithm this package accepts (RFC 7518 §3).
type algorithm struct {
	name string
	hash crypto.Hash
	kty  string // key type the algorithm needs: "RSA" or "EC"
	crv  string // curve, for EC
	pss  bool   // RSASSA-PSS rather than PKCS #1 v1.5
}

// algorithms is the allow-list. Everything else, notably "none" and the
// HMAC algorithms, is rejected before a key is even looked up.
var algorithms = map[string]algorithm{
	"RS256": {name: "RS256", hash: crypto.SHA256, kty: "RSA"},
	"RS384": {name: "RS384", hash: crypto.SHA384, kty: "RSA"},
	"RS512": {name: "RS512", hash: crypto.SHA512, kty: "RSA"},
	"PS256": {name: "PS256", hash: crypto.SHA256, kty: "RSA", pss: true},
	"ES256": {name: "ES256", hash: crypto.SHA256, kty: "EC", crv: "P-256"},
	"ES384": {name: "ES384", hash: crypto.SHA384, kty: "EC", crv: "P-384"},
}

// jwsHeader is the JOSE header of a token (RFC 7515 §4.1).
type jwsHeader struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Crit json.RawMessage `json:"crit"`
}

// compactJWS is a parsed but not yet verified JWS (RFC 7515 §7.1).
type compactJWS struct {
	header       jwsHeader
	alg          algorithm
	payload      []byte
	signingInput string // ASCII(BASE64URL(header) || '.' || BASE64URL(payload))
	signature    []byte
}

// parseCompact splits and decodes a compact JWS and checks its header. It
// does not verify the signature.
func parseCompact(token string) (*compactJWS, error) {
	if len(token) > maxTokenLen {
		return nil, fmt.Errorf("token is %d bytes, more than %d", len(token), maxTokenLen)
	}
	if !isCompactJWSAlphabet(token) || strings.Count(token, ".") != 2 {
		return nil, errors.New("not a compact JWS: want three base64url segments separated by dots")
	}
	segs := strings.Split(token, ".")
	raw := make([][]byte, len(segs))
	for i, name := range []string{"header", "payload", "signature"} {
		b, err := decodeSegment(segs[i])
		if err != nil {
			return nil, fmt.Errorf("couldn't decode %s: %w", name, err)
		}
		raw[i] = b
	}
	jws := &compactJWS{payload: raw[1], signingInput: segs[0] + "." + segs[1], signature: raw[2]}
	if err := jws.parseHeader(raw[0]); err != nil {
		return nil, err
	}
	return jws, nil
}

// parseHeader decodes the JOSE header and resolves its algorithm.
func (j *compactJWS) parseHeader(b []byte) error {
	if err := json.Unmarshal(b, &j.header); err != nil {
		return fmt.Errorf("couldn't parse header: %w", err)
	}
	alg, ok := algorithms[j.header.Alg]
	if !ok {
		return fmt.Errorf("unsupported alg %q: want RS256, RS384, RS512, PS256, ES256 or ES384", clip(j.header.Alg))
	}
	// RFC 7515 §4.1.11: extensions listed in crit must be understood; we
	// understand none.
	if j.header.Crit != nil {
		return errors.New("header has crit extensions, none are supported")
	}
	j.alg = alg
	return nil
}

// isCompactJWSAlphabet reports whether s contains only base64url characters
// and dots. Go's base64 decoder silently skips CR and LF, so they, padding
// and everything else are rejected here.
func isCompactJWSAlphabet(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			return false
		}
	}
	return true
}

// decodeSegment decodes one non-empty, unpadded base64url segment.
func decodeSegment(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("empty segment")
	}
	return base64.RawURLEncoding.Strict().DecodeString(s)
}

// errBadSignature deliberately says nothing about why a signature failed.
var errBadSignature = errors.New("bad signature")

// verify checks the signature of j with key, after checking that the key is
// one the token's algorithm may use (RFC 7517 §4.4, RFC 7518 §6).
func (j *compactJWS) verify(key *jwk) error {
	if err := key.usableWith(j.alg); err != nil {
		return err
	}
	h := j.alg.hash.New()
	h.Write([]byte(j.signingInput))
	digest := h.Sum(nil)
	switch pub := key.pub.(type) {
	case *rsa.PublicKey:
		return verifyRSA(j.alg, pub, digest, j.signature)
	case *ecdsa.PublicKey:
		return verifyECDSA(key.size, pub, digest, j.signature)
	}
	return errBadSignature
}

// verifyRSA checks an RSASSA-PKCS1-v1_5 (RFC 7518 §3.3) or RSASSA-PSS
// (§3.5, salt length = hash length) signature.
func verifyRSA(alg algorithm, pub *rsa.PublicKey, digest, sig []byte) error {
	var err error
	if alg.pss {
		err = rsa.VerifyPSS(pub, alg.hash, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	} else {
		err = rsa.VerifyPKCS1v15(pub, alg.hash, digest, sig)
	}
	if err != nil {
		return errBadSignature
	}
	return nil
}

// verifyECDSA checks a JWS ECDSA signature, which is the fixed-length
// big-endian R || S (RFC 7518 §3.4), not ASN.1 DER.
func verifyECDSA(size int, pub *ecdsa.PublicKey, digest, sig []byte) error {
	if len(sig) != 2*size {
		return fmt.Errorf("ECDSA signature is %d bytes, want R||S of %d", len(sig), 2*size)
	}
	r := new(big.Int).SetBytes(sig[:size])
	s := new(big.Int).SetBytes(sig[size:])
	if !ecdsa.Verify(pub, digest, r, s) {
		return errBadSignature
	}
	return nil
}
