package appjs

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/dop251/goja"
)

// The key and signature part of CCF's ccf.crypto (ccf-app's CCFCrypto):
// sign, verifySignature, generateAesKey, generateRsaKeyPair,
// generateEcdsaKeyPair, generateEddsaKeyPair, wrapKey and unwrapKey
// (RSA-OAEP, AES-KWP, RSA-OAEP-AES-KWP), isValidX509CertChain, and the PEM
// to JWK conversions; standard library only. Keys are PEM strings as CCF
// gives them: private keys PKCS#8 ("PRIVATE KEY"), public keys SPKI
// ("PUBLIC KEY"); PKCS#1 and SEC 1 private keys and certificates (for
// verification) are read too. ECDSA signatures are IEEE P1363 (r‖s), as
// CCF and the Web Crypto API encode them. The Go calls are not stopped by
// the call's time limit, so their cost is bounded by their inputs: RSA
// moduli are at most MaxRSABits.

// MaxRSABits is the largest RSA modulus generateRsaKeyPair makes (CCF's
// minimum is 2048; generating a larger key takes seconds that the call's
// time limit cannot interrupt).
const MaxRSABits = 4096

// installKeyCrypto adds the key functions to crypto (ccf.crypto).
func (s *sandbox) installKeyCrypto(crypto *goja.Object) {
	rt := s.rt
	pair := func(priv, pub string) goja.Value {
		o := rt.NewObject()
		_ = o.Set("privateKey", priv)
		_ = o.Set("publicKey", pub)
		return o
	}
	fail := func(name string, err error) {
		if err != nil {
			s.throw("ccf.crypto.%s: %v", name, err)
		}
	}
	_ = crypto.Set("sign", func(c goja.FunctionCall) goja.Value {
		alg, hash := s.signingAlgorithm(c.Argument(0), "sign")
		sig, err := Sign(alg, hash, c.Argument(1).String(), s.bytes(c.Argument(2), "ccf.crypto.sign: plaintext"))
		fail("sign", err)
		return s.buf(sig)
	})
	_ = crypto.Set("verifySignature", func(c goja.FunctionCall) goja.Value {
		alg, hash := s.signingAlgorithm(c.Argument(0), "verifySignature")
		ok, err := VerifySignature(alg, hash, c.Argument(1).String(), s.bytes(c.Argument(2), "ccf.crypto.verifySignature: signature"),
			s.bytes(c.Argument(3), "ccf.crypto.verifySignature: data"))
		fail("verifySignature", err)
		return rt.ToValue(ok)
	})
	_ = crypto.Set("generateAesKey", func(c goja.FunctionCall) goja.Value {
		k, err := GenerateAESKey(int(c.Argument(0).ToInteger()))
		fail("generateAesKey", err)
		return s.buf(k)
	})
	_ = crypto.Set("generateRsaKeyPair", func(c goja.FunctionCall) goja.Value {
		exp := int64(65537)
		if a := c.Argument(1); !goja.IsUndefined(a) && !goja.IsNull(a) {
			exp = a.ToInteger()
		}
		priv, pub, err := GenerateRSAKeyPair(int(c.Argument(0).ToInteger()), exp)
		fail("generateRsaKeyPair", err)
		return pair(priv, pub)
	})
	_ = crypto.Set("generateEcdsaKeyPair", func(c goja.FunctionCall) goja.Value {
		priv, pub, err := GenerateECDSAKeyPair(c.Argument(0).String())
		fail("generateEcdsaKeyPair", err)
		return pair(priv, pub)
	})
	_ = crypto.Set("generateEddsaKeyPair", func(c goja.FunctionCall) goja.Value {
		priv, pub, err := GenerateEdDSAKeyPair(c.Argument(0).String())
		fail("generateEddsaKeyPair", err)
		return pair(priv, pub)
	})
	wrapParams := func(v goja.Value, fn string) WrapParams {
		o, ok := v.(*goja.Object)
		if !ok {
			s.throw("ccf.crypto.%s: the algorithm must be an object {name, ...}", fn)
		}
		p := WrapParams{Name: o.Get("name").String()}
		if l := o.Get("label"); l != nil && !goja.IsUndefined(l) && !goja.IsNull(l) {
			p.Label = s.bytes(l, "ccf.crypto."+fn+": label")
		}
		if n := o.Get("aesKeySize"); n != nil && !goja.IsUndefined(n) {
			p.AESKeySize = int(n.ToInteger())
		}
		return p
	}
	_ = crypto.Set("wrapKey", func(c goja.FunctionCall) goja.Value {
		out, err := WrapKey(s.bytes(c.Argument(0), "ccf.crypto.wrapKey: key"), s.bytes(c.Argument(1), "ccf.crypto.wrapKey: wrappingKey"),
			wrapParams(c.Argument(2), "wrapKey"))
		fail("wrapKey", err)
		return s.buf(out)
	})
	_ = crypto.Set("unwrapKey", func(c goja.FunctionCall) goja.Value {
		out, err := UnwrapKey(s.bytes(c.Argument(0), "ccf.crypto.unwrapKey: wrappedKey"), s.bytes(c.Argument(1), "ccf.crypto.unwrapKey: unwrappingKey"),
			wrapParams(c.Argument(2), "unwrapKey"))
		fail("unwrapKey", err)
		return s.buf(out)
	})
	_ = crypto.Set("isValidX509CertChain", func(c goja.FunctionCall) goja.Value {
		return rt.ToValue(ValidCertChain(c.Argument(0).String(), c.Argument(1).String()))
	})
	jwk := func(name string, conv func(pem string) (map[string]string, error)) {
		_ = crypto.Set(name, func(c goja.FunctionCall) goja.Value {
			m, err := conv(c.Argument(0).String())
			fail(name, err)
			if kid := c.Argument(1); !goja.IsUndefined(kid) && !goja.IsNull(kid) {
				m["kid"] = kid.String()
			}
			o := rt.NewObject()
			for k, v := range m {
				_ = o.Set(k, v)
			}
			return o
		})
	}
	jwk("pubPemToJwk", func(p string) (map[string]string, error) { return PEMToJWK(p, "EC", false) })
	jwk("pemToJwk", func(p string) (map[string]string, error) { return PEMToJWK(p, "EC", true) })
	jwk("pubRsaPemToJwk", func(p string) (map[string]string, error) { return PEMToJWK(p, "RSA", false) })
	jwk("rsaPemToJwk", func(p string) (map[string]string, error) { return PEMToJWK(p, "RSA", true) })
	jwk("pubEddsaPemToJwk", func(p string) (map[string]string, error) { return PEMToJWK(p, "OKP", false) })
	jwk("eddsaPemToJwk", func(p string) (map[string]string, error) { return PEMToJWK(p, "OKP", true) })
}

// signingAlgorithm reads CCF's SigningAlgorithm {name, hash}.
func (s *sandbox) signingAlgorithm(v goja.Value, fn string) (name, hash string) {
	o, ok := v.(*goja.Object)
	if !ok {
		s.throw("ccf.crypto.%s: the algorithm must be an object {name, hash}", fn)
	}
	name = o.Get("name").String()
	if h := o.Get("hash"); h != nil && !goja.IsUndefined(h) && !goja.IsNull(h) {
		hash = h.String()
	}
	return name, hash
}

// Signing algorithms (CCF's AlgorithmName).
const (
	AlgRSAPKCS1 = "RSASSA-PKCS1-v1_5"
	AlgECDSA    = "ECDSA"
	AlgEdDSA    = "EdDSA"
)

// digestOf hashes data with a CCF digest name (SHA-256, SHA-384, SHA-512).
func digestOf(hash string, data []byte) (crypto.Hash, []byte, error) {
	switch hash {
	case "SHA-256":
		d := sha256.Sum256(data)
		return crypto.SHA256, d[:], nil
	case "SHA-384":
		d := sha512.Sum384(data)
		return crypto.SHA384, d[:], nil
	case "SHA-512":
		d := sha512.Sum512(data)
		return crypto.SHA512, d[:], nil
	case "":
		return 0, nil, errors.New("the algorithm needs a hash (SHA-256, SHA-384 or SHA-512)")
	}
	return 0, nil, fmt.Errorf("unsupported hash %q (SHA-256, SHA-384, SHA-512)", clip(hash))
}

// Sign signs data with a PEM private key: RSASSA-PKCS1-v1_5 or ECDSA
// (P1363 r‖s) over the hash of data, or EdDSA (Ed25519) over data.
func Sign(alg, hash, keyPEM string, data []byte) ([]byte, error) {
	key, err := parsePrivateKey(keyPEM)
	if err != nil {
		return nil, err
	}
	switch alg {
	case AlgRSAPKCS1:
		k, ok := key.(*rsa.PrivateKey)
		if !ok {
			return nil, errors.New("RSASSA-PKCS1-v1_5 needs an RSA private key")
		}
		h, d, err := digestOf(hash, data)
		if err != nil {
			return nil, err
		}
		return rsa.SignPKCS1v15(nil, k, h, d)
	case AlgECDSA:
		k, ok := key.(*ecdsa.PrivateKey)
		if !ok {
			return nil, errors.New("ECDSA needs an EC private key")
		}
		_, d, err := digestOf(hash, data)
		if err != nil {
			return nil, err
		}
		r, sv, err := ecdsa.Sign(rand.Reader, k, d)
		if err != nil {
			return nil, err
		}
		n := (k.Curve.Params().BitSize + 7) / 8
		sig := make([]byte, 2*n)
		r.FillBytes(sig[:n])
		sv.FillBytes(sig[n:])
		return sig, nil
	case AlgEdDSA:
		k, ok := key.(ed25519.PrivateKey)
		if !ok {
			return nil, errors.New("EdDSA needs an Ed25519 private key")
		}
		return ed25519.Sign(k, data), nil
	}
	return nil, fmt.Errorf("unsupported signing algorithm %q (%s, %s, %s)", clip(alg), AlgRSAPKCS1, AlgECDSA, AlgEdDSA)
}

// VerifySignature reports whether sig is a valid signature of data by the
// PEM public key or certificate keyPEM. An unknown algorithm, or a key that
// does not fit it, is an error; a signature that does not verify is false.
func VerifySignature(alg, hash, keyPEM string, sig, data []byte) (bool, error) {
	key, err := parsePublicKey(keyPEM)
	if err != nil {
		return false, err
	}
	switch alg {
	case AlgRSAPKCS1:
		k, ok := key.(*rsa.PublicKey)
		if !ok {
			return false, errors.New("RSASSA-PKCS1-v1_5 needs an RSA public key")
		}
		h, d, err := digestOf(hash, data)
		if err != nil {
			return false, err
		}
		return rsa.VerifyPKCS1v15(k, h, d, sig) == nil, nil
	case AlgECDSA:
		k, ok := key.(*ecdsa.PublicKey)
		if !ok {
			return false, errors.New("ECDSA needs an EC public key")
		}
		_, d, err := digestOf(hash, data)
		if err != nil {
			return false, err
		}
		n := (k.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*n {
			return false, nil
		}
		r, sv := new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:])
		return ecdsa.Verify(k, d, r, sv), nil
	case AlgEdDSA:
		k, ok := key.(ed25519.PublicKey)
		if !ok {
			return false, errors.New("EdDSA needs an Ed25519 public key")
		}
		return ed25519.Verify(k, data, sig), nil
	}
	return false, fmt.Errorf("unsupported signing algorithm %q (%s, %s, %s)", clip(alg), AlgRSAPKCS1, AlgECDSA, AlgEdDSA)
}

// GenerateAESKey returns a random AES key of bits 128, 192 or 256.
func GenerateAESKey(bits int) ([]byte, error) {
	if bits != 128 && bits != 192 && bits != 256 {
		return nil, fmt.Errorf("invalid AES key size %d (128, 192 or 256 bits)", bits)
	}
	k := make([]byte, bits/8)
	_, err := rand.Read(k)
	return k, err
}

// GenerateRSAKeyPair returns a new RSA key pair as PEM (PKCS#8 private,
// SPKI public): bits 2048 to MaxRSABits; the exponent must be 65537 (the
// standard library generates no other).
func GenerateRSAKeyPair(bits int, exponent int64) (priv, pub string, err error) {
	if bits < 2048 || bits > MaxRSABits {
		return "", "", fmt.Errorf("invalid RSA key size %d (2048 to %d bits)", bits, MaxRSABits)
	}
	if exponent != 65537 {
		return "", "", fmt.Errorf("unsupported RSA public exponent %d (only 65537)", exponent)
	}
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return "", "", err
	}
	return pemPair(k, &k.PublicKey)
}

// GenerateECDSAKeyPair returns a new ECDSA key pair as PEM on curve
// secp256r1 or secp384r1 (CCF also knows secp256k1, which the standard
// library does not).
func GenerateECDSAKeyPair(curve string) (priv, pub string, err error) {
	var c elliptic.Curve
	switch curve {
	case "secp256r1":
		c = elliptic.P256()
	case "secp384r1":
		c = elliptic.P384()
	default:
		return "", "", fmt.Errorf("unsupported curve %q (secp256r1, secp384r1)", clip(curve))
	}
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		return "", "", err
	}
	return pemPair(k, &k.PublicKey)
}

// GenerateEdDSAKeyPair returns a new Ed25519 key pair as PEM (CCF's curve
// name "curve25519").
func GenerateEdDSAKeyPair(curve string) (priv, pub string, err error) {
	if curve != "curve25519" {
		return "", "", fmt.Errorf("unsupported curve %q (curve25519)", clip(curve))
	}
	pk, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", err
	}
	return pemPair(k, pk)
}

func pemPair(priv, pub any) (string, string, error) {
	p8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", "", err
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki})), nil
}

func pemBlock(s string) (*pem.Block, error) {
	b, _ := pem.Decode([]byte(strings.TrimSpace(s)))
	if b == nil {
		return nil, errors.New("the key is not PEM")
	}
	return b, nil
}

// parsePrivateKey reads a PEM private key: PKCS#8, PKCS#1 (RSA) or SEC 1
// (EC).
func parsePrivateKey(s string) (crypto.PrivateKey, error) {
	b, err := pemBlock(s)
	if err != nil {
		return nil, err
	}
	switch b.Type {
	case "PRIVATE KEY":
		return x509.ParsePKCS8PrivateKey(b.Bytes)
	case "RSA PRIVATE KEY":
		return x509.ParsePKCS1PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(b.Bytes)
	}
	return nil, fmt.Errorf("a PEM %q is not a private key", clip(b.Type))
}

// parsePublicKey reads a PEM public key (SPKI or PKCS#1 RSA) or the key of
// a PEM certificate.
func parsePublicKey(s string) (crypto.PublicKey, error) {
	b, err := pemBlock(s)
	if err != nil {
		return nil, err
	}
	switch b.Type {
	case "PUBLIC KEY":
		return x509.ParsePKIXPublicKey(b.Bytes)
	case "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(b.Bytes)
	case "CERTIFICATE":
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		return c.PublicKey, nil
	}
	return nil, fmt.Errorf("a PEM %q is not a public key or certificate", clip(b.Type))
}

// WrapParams are CCF's WrapAlgoParams: Name RSA-OAEP (SHA-256; Label
// optional), AES-KWP (RFC 5649) or RSA-OAEP-AES-KWP (PKCS #11's
// CKM_RSA_AES_KEY_WRAP: a temporary AES key of AESKeySize bits wrapped
// with RSA-OAEP, followed by the key wrapped with it by AES-KWP).
type WrapParams struct {
	Name       string
	Label      []byte
	AESKeySize int
}

// Wrapping algorithms (CCF's WrapAlgoParams names).
const (
	WrapRSAOAEP       = "RSA-OAEP"
	WrapAESKWP        = "AES-KWP"
	WrapRSAOAEPAESKWP = "RSA-OAEP-AES-KWP"
)

// WrapKey wraps key with wrappingKey: for the RSA algorithms a PEM RSA
// public key (as bytes), for AES-KWP an AES key.
func WrapKey(key, wrappingKey []byte, p WrapParams) ([]byte, error) {
	switch p.Name {
	case WrapAESKWP:
		return AESKWPWrap(wrappingKey, key)
	case WrapRSAOAEP, WrapRSAOAEPAESKWP:
		pk, err := parsePublicKey(string(wrappingKey))
		if err != nil {
			return nil, err
		}
		k, ok := pk.(*rsa.PublicKey)
		if !ok {
			return nil, errors.New("the wrapping key is not an RSA public key")
		}
		if p.Name == WrapRSAOAEP {
			return rsa.EncryptOAEP(sha256.New(), rand.Reader, k, key, p.Label)
		}
		tmp, err := GenerateAESKey(p.AESKeySize)
		if err != nil {
			return nil, err
		}
		head, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, k, tmp, p.Label)
		if err != nil {
			return nil, err
		}
		tail, err := AESKWPWrap(tmp, key)
		if err != nil {
			return nil, err
		}
		return append(head, tail...), nil
	}
	return nil, fmt.Errorf("unsupported wrapping algorithm %q (%s, %s, %s)", clip(p.Name), WrapRSAOAEP, WrapAESKWP, WrapRSAOAEPAESKWP)
}

// UnwrapKey undoes WrapKey: unwrappingKey is a PEM RSA private key (as
// bytes) for the RSA algorithms, the AES key for AES-KWP.
func UnwrapKey(wrapped, unwrappingKey []byte, p WrapParams) ([]byte, error) {
	switch p.Name {
	case WrapAESKWP:
		return AESKWPUnwrap(unwrappingKey, wrapped)
	case WrapRSAOAEP, WrapRSAOAEPAESKWP:
		sk, err := parsePrivateKey(string(unwrappingKey))
		if err != nil {
			return nil, err
		}
		k, ok := sk.(*rsa.PrivateKey)
		if !ok {
			return nil, errors.New("the unwrapping key is not an RSA private key")
		}
		if p.Name == WrapRSAOAEP {
			return rsa.DecryptOAEP(sha256.New(), nil, k, wrapped, p.Label)
		}
		n := k.Size()
		if len(wrapped) <= n {
			return nil, errors.New("the wrapped key is too short")
		}
		tmp, err := rsa.DecryptOAEP(sha256.New(), nil, k, wrapped[:n], p.Label)
		if err != nil {
			return nil, err
		}
		return AESKWPUnwrap(tmp, wrapped[n:])
	}
	return nil, fmt.Errorf("unsupported wrapping algorithm %q (%s, %s, %s)", clip(p.Name), WrapRSAOAEP, WrapAESKWP, WrapRSAOAEPAESKWP)
}

// kwpIV is RFC 5649's alternative initial value's constant half.
var kwpIV = []byte{0xA6, 0x59, 0x59, 0xA6}

// maxKWPBytes bounds what AES-KWP wraps (RFC 5649 allows 2^32 bytes; keys
// are small).
const maxKWPBytes = 1 << 20

// AESKWPWrap wraps key with kek by AES key wrap with padding (RFC 5649).
func AESKWPWrap(kek, key []byte) ([]byte, error) {
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("the AES-KWP wrapping key: %v", err)
	}
	if len(key) == 0 || len(key) > maxKWPBytes {
		return nil, fmt.Errorf("AES-KWP wraps 1 to %d bytes, not %d", maxKWPBytes, len(key))
	}
	var a [8]byte
	copy(a[:], kwpIV)
	binary.BigEndian.PutUint32(a[4:], uint32(len(key)))
	padded := make([]byte, (len(key)+7)/8*8)
	copy(padded, key)
	n := len(padded) / 8
	if n == 1 {
		out := make([]byte, 16)
		copy(out, a[:])
		copy(out[8:], padded)
		block.Encrypt(out, out)
		return out, nil
	}
	var b [16]byte
	for j := 0; j < 6; j++ {
		for i := 1; i <= n; i++ {
			copy(b[:8], a[:])
			copy(b[8:], padded[(i-1)*8:i*8])
			block.Encrypt(b[:], b[:])
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(a[:], binary.BigEndian.Uint64(b[:8])^t)
			copy(padded[(i-1)*8:i*8], b[8:])
		}
	}
	return append(a[:], padded...), nil
}

// AESKWPUnwrap unwraps an RFC 5649 wrapped key; a wrapped key that does not
// check (wrong key, altered bytes) is an error.
func AESKWPUnwrap(kek, wrapped []byte) ([]byte, error) {
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("the AES-KWP unwrapping key: %v", err)
	}
	if len(wrapped) < 16 || len(wrapped)%8 != 0 || len(wrapped) > maxKWPBytes+16 {
		return nil, errors.New("the wrapped key's length is not that of an AES-KWP output")
	}
	var a [8]byte
	var r []byte
	if len(wrapped) == 16 {
		var b [16]byte
		block.Decrypt(b[:], wrapped)
		copy(a[:], b[:8])
		r = append([]byte(nil), b[8:]...)
	} else {
		n := len(wrapped)/8 - 1
		copy(a[:], wrapped[:8])
		r = append([]byte(nil), wrapped[8:]...)
		var b [16]byte
		for j := 5; j >= 0; j-- {
			for i := n; i >= 1; i-- {
				t := uint64(n*j + i)
				binary.BigEndian.PutUint64(b[:8], binary.BigEndian.Uint64(a[:])^t)
				copy(b[8:], r[(i-1)*8:i*8])
				block.Decrypt(b[:], b[:])
				copy(a[:], b[:8])
				copy(r[(i-1)*8:i*8], b[8:])
			}
		}
	}
	mli := int(binary.BigEndian.Uint32(a[4:]))
	ok := subtle.ConstantTimeCompare(a[:4], kwpIV) == 1 && mli > len(r)-8 && mli <= len(r) &&
		bytes.Equal(r[mli:], make([]byte, len(r)-mli))
	if !ok {
		return nil, errors.New("the wrapped key does not unwrap with this key (integrity check failed)")
	}
	return r[:mli], nil
}

// ValidCertChain reports whether the PEM bundle chain (leaf first, then
// intermediates) verifies up to one of the PEM bundle trusted's
// certificates, at the current time.
func ValidCertChain(chain, trusted string) bool {
	certs, ok := parseCerts(chain)
	if !ok {
		return false
	}
	roots, ok := parseCerts(trusted)
	if !ok {
		return false
	}
	opts := x509.VerifyOptions{Roots: x509.NewCertPool(), Intermediates: x509.NewCertPool(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
	for _, c := range roots {
		opts.Roots.AddCert(c)
	}
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
	}
	_, err := certs[0].Verify(opts)
	return err == nil
}

func parseCerts(s string) ([]*x509.Certificate, bool) {
	if !validCertBundle(s) {
		return nil, false
	}
	var out []*x509.Certificate
	rest := []byte(strings.TrimSpace(s))
	for len(rest) > 0 {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		c, _ := x509.ParseCertificate(b.Bytes) // validCertBundle parsed each
		out = append(out, c)
		rest = []byte(strings.TrimSpace(string(rest)))
	}
	return out, true
}

// PEMToJWK converts a PEM key to a JSON Web Key (RFC 7517/7518/8037) of
// kty EC, RSA or OKP (Ed25519): public members, and the private ones with
// private (from a private key).
func PEMToJWK(pemKey, kty string, private bool) (map[string]string, error) {
	var pub crypto.PublicKey
	var priv crypto.PrivateKey
	var err error
	if private {
		priv, err = parsePrivateKey(pemKey)
		if err == nil {
			pub = priv.(interface{ Public() crypto.PublicKey }).Public()
		}
	} else {
		pub, err = parsePublicKey(pemKey)
	}
	if err != nil {
		return nil, err
	}
	b64 := base64.RawURLEncoding.EncodeToString
	switch kty {
	case "EC":
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok {
			return nil, errors.New("not an EC key")
		}
		xy, err := k.Bytes() // 0x04 ‖ x ‖ y
		if err != nil {
			return nil, err
		}
		n := (len(xy) - 1) / 2
		m := map[string]string{"kty": "EC", "crv": k.Curve.Params().Name, "x": b64(xy[1 : 1+n]), "y": b64(xy[1+n:])}
		if private {
			d, err := priv.(*ecdsa.PrivateKey).Bytes()
			if err != nil {
				return nil, err
			}
			m["d"] = b64(d)
		}
		return m, nil
	case "RSA":
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return nil, errors.New("not an RSA key")
		}
		m := map[string]string{"kty": "RSA", "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
		if private {
			sk := priv.(*rsa.PrivateKey)
			if len(sk.Primes) != 2 {
				return nil, errors.New("a multi-prime RSA key has no JWK form")
			}
			sk.Precompute()
			m["d"], m["p"], m["q"] = b64(sk.D.Bytes()), b64(sk.Primes[0].Bytes()), b64(sk.Primes[1].Bytes())
			m["dp"], m["dq"], m["qi"] = b64(sk.Precomputed.Dp.Bytes()), b64(sk.Precomputed.Dq.Bytes()), b64(sk.Precomputed.Qinv.Bytes())
		}
		return m, nil
	case "OKP":
		k, ok := pub.(ed25519.PublicKey)
		if !ok {
			return nil, errors.New("not an Ed25519 key")
		}
		m := map[string]string{"kty": "OKP", "crv": "Ed25519", "x": b64(k)}
		if private {
			m["d"] = b64(priv.(ed25519.PrivateKey).Seed())
		}
		return m, nil
	}
	return nil, fmt.Errorf("unknown key type %q", kty)
}
