package recovery

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
)

// Recovery members' encryption keys are RSA keys, as in CCF (members pass
// encryption_pub_key, a PEM PUBLIC KEY, to set_member). Shares are encrypted
// with RSA-OAEP, SHA-256 for both the hash and MGF1, no label: CCF's
// rsa_oaep_wrap, which a member undoes with
//
//	openssl pkeyutl -decrypt -inkey member0_enc_privk.pem \
//	    -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256

// EncryptionKeyBits is the size of the encryption keys NewEncryptionKey
// makes (CCF's sandbox makes 2048-bit keys).
const EncryptionKeyBits = 2048

// Accepted sizes of a member's encryption key.
const (
	minKeyBits = 2048
	maxKeyBits = 8192
)

// NewEncryptionKey returns a new RSA encryption key pair: the private key
// as PEM PRIVATE KEY (PKCS #8), the public key as PEM PUBLIC KEY (PKIX).
func NewEncryptionKey() (privPEM, pubPEM []byte, err error) {
	key, err := rsa.GenerateKey(rand.Reader, EncryptionKeyBits)
	if err != nil {
		return nil, nil, fmt.Errorf("recovery: couldn't generate an encryption key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), nil
}

// ParsePublicKey parses a member's encryption public key: PEM PUBLIC KEY
// (PKIX) or RSA PUBLIC KEY (PKCS #1), RSA of 2048..8192 bits.
func ParsePublicKey(pemBytes []byte) (*rsa.PublicKey, error) {
	b, _ := pem.Decode(pemBytes)
	if b == nil {
		return nil, errors.New("encryption key is not PEM")
	}
	var pub *rsa.PublicKey
	switch b.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("couldn't parse the encryption key: %w", err)
		}
		var ok bool
		if pub, ok = k.(*rsa.PublicKey); !ok {
			return nil, fmt.Errorf("encryption key is %T, not RSA", k)
		}
	case "RSA PUBLIC KEY":
		k, err := x509.ParsePKCS1PublicKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("couldn't parse the encryption key: %w", err)
		}
		pub = k
	default:
		return nil, fmt.Errorf("encryption key is a PEM %q block, not PUBLIC KEY", b.Type)
	}
	if bits := pub.N.BitLen(); bits < minKeyBits || bits > maxKeyBits {
		return nil, fmt.Errorf("encryption key is RSA-%d; %d..%d bits are accepted", bits, minKeyBits, maxKeyBits)
	}
	return pub, nil
}

// ParsePrivateKey parses a member's encryption private key: the first PEM
// PRIVATE KEY (PKCS #8) or RSA PRIVATE KEY (PKCS #1) block of pemBytes.
func ParsePrivateKey(pemBytes []byte) (*rsa.PrivateKey, error) {
	for rest := pemBytes; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return nil, errors.New("no PEM PRIVATE KEY block")
		}
		switch b.Type {
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("couldn't parse the private key: %w", err)
			}
			key, ok := k.(*rsa.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("private key is %T, not RSA", k)
			}
			return key, nil
		case "RSA PRIVATE KEY":
			key, err := x509.ParsePKCS1PrivateKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("couldn't parse the private key: %w", err)
			}
			return key, nil
		}
	}
}

// EncryptShare encrypts a share to a member's key with RSA-OAEP (SHA-256).
func EncryptShare(pub *rsa.PublicKey, share []byte, rnd io.Reader) ([]byte, error) {
	return rsa.EncryptOAEP(sha256.New(), rnd, pub, share, nil)
}

// DecryptShare decrypts a share encrypted with EncryptShare: what a member
// does with its private encryption key before submitting its share.
func DecryptShare(priv *rsa.PrivateKey, encrypted []byte) ([]byte, error) {
	share, err := rsa.DecryptOAEP(sha256.New(), nil, priv, encrypted, nil)
	if err != nil {
		return nil, fmt.Errorf("recovery: couldn't decrypt the share: %w", err)
	}
	return share, nil
}
