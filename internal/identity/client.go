package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ledgerd/ledgerd/internal/durable"
)

// NewClientIdentity generates a user or member identity: an EC P-256 key and
// a self-signed certificate CN=cn for TLS client authentication, valid for 10
// years. rnd is the source of the serial number (nil: crypto/rand). The ACL
// user id of the certificate is its Fingerprint.
func NewClientIdentity(cn string, rnd io.Reader) (certPEM, keyPEM []byte, err error) {
	if cn == "" {
		return nil, nil, errors.New("identity: empty common name")
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("identity: couldn't generate client key: %w", err)
	}
	tmpl, err := template(cn, &key.PublicKey, rnd, time.Now())
	if err != nil {
		return nil, nil, fmt.Errorf("identity: %w", err)
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	_, certPEM, err = createCert(tmpl, nil, &key.PublicKey, key, rnd)
	if err != nil {
		return nil, nil, fmt.Errorf("identity: %w", err)
	}
	keyPEM, err = encodeKeyPEM(key)
	if err != nil {
		return nil, nil, fmt.Errorf("identity: %w", err)
	}
	return certPEM, keyPEM, nil
}

// WriteCombinedPEM atomically writes a certificate followed by its private
// key into one file with mode 0600: the form Azure's
// ConfidentialLedgerCertificateCredential takes.
func WriteCombinedPEM(path string, certPEM, keyPEM []byte) error {
	if b, _ := pem.Decode(certPEM); b == nil || b.Type != "CERTIFICATE" {
		return errors.New("identity: certPEM holds no PEM CERTIFICATE")
	}
	if b, _ := pem.Decode(keyPEM); b == nil || !strings.HasSuffix(b.Type, "PRIVATE KEY") {
		return errors.New("identity: keyPEM holds no PEM PRIVATE KEY")
	}
	data := make([]byte, 0, len(certPEM)+1+len(keyPEM))
	data = append(data, certPEM...)
	if data[len(data)-1] != '\n' {
		data = append(data, '\n')
	}
	data = append(data, keyPEM...)
	if err := durable.WriteFile(path, data, privateMode); err != nil {
		return fmt.Errorf("identity: couldn't write combined PEM: %w", err)
	}
	return nil
}

// Fingerprint returns the SHA-256 fingerprint of a DER certificate as
// upper-case hex pairs separated by colons, as `openssl x509 -fingerprint
// -sha256` prints it: the ACL user id of a certificate user.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	pairs := make([]string, len(sum))
	for i, b := range sum {
		pairs[i] = strings.ToUpper(hex.EncodeToString([]byte{b}))
	}
	return strings.Join(pairs, ":")
}
