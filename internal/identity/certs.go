package identity

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"time"
)

// Certificate subjects, as CCF names them.
const (
	serviceCN = "CCF Network"
	nodeCN    = "CCF Node"
)

// validity is how long the certificates issued here are valid; they are
// backdated by notBeforeSkew to tolerate clients' clock skew.
const (
	validityYears = 10
	notBeforeSkew = time.Hour
)

// template returns a certificate template for pub with a random 128-bit
// serial number, the subject CN, a subject key id and the validity period.
func template(cn string, pub *ecdsa.PublicKey, rnd io.Reader, now time.Time) (*x509.Certificate, error) {
	serial, err := randomSerial(rnd)
	if err != nil {
		return nil, err
	}
	keyID, err := subjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	return &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-notBeforeSkew),
		NotAfter:              now.AddDate(validityYears, 0, 0),
		SubjectKeyId:          keyID,
		BasicConstraintsValid: true,
	}, nil
}

// randomSerial returns a random positive serial number of 128 bits (the top
// bit set, so it is never zero).
func randomSerial(rnd io.Reader) (*big.Int, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(rnd, b); err != nil {
		return nil, fmt.Errorf("couldn't generate serial number: %w", err)
	}
	b[0] |= 0x80
	return new(big.Int).SetBytes(b), nil
}

// subjectKeyID is the leftmost 160 bits of the SHA-256 of the public key
// bits (RFC 7093, section 2, method 1).
func subjectKeyID(pub *ecdsa.PublicKey) ([]byte, error) {
	point, err := pub.Bytes()
	if err != nil {
		return nil, fmt.Errorf("couldn't encode public key: %w", err)
	}
	sum := sha256.Sum256(point)
	return sum[:20], nil
}

// createCert signs the template with the issuer's key and returns the parsed
// certificate and its PEM. A nil parent makes it self-signed.
func createCert(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, issuerKey *ecdsa.PrivateKey, rnd io.Reader) (*x509.Certificate, []byte, error) {
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rnd, tmpl, parent, pub, issuerKey)
	if err != nil {
		return nil, nil, fmt.Errorf("couldn't create certificate %s: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("couldn't parse new certificate: %w", err)
	}
	return cert, encodeCertPEM(der), nil
}

// checkKeyMatches checks that the certificate is for the key.
func checkKeyMatches(cert *x509.Certificate, key *ecdsa.PrivateKey) error {
	if !key.PublicKey.Equal(cert.PublicKey) {
		return errors.New("the certificate's public key is not the private key's")
	}
	return nil
}
