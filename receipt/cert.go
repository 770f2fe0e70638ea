package receipt

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
)

// ParseCertificatePEM parses the first CERTIFICATE block of PEM data. Text
// around the block (such as the trailing NUL some service responses carry) is
// ignored.
func ParseCertificatePEM(data []byte) (*x509.Certificate, error) {
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("no PEM CERTIFICATE block")
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("couldn't parse certificate: %w", err)
		}
		return c, nil
	}
}

// NodeIDFromCert returns CCF's node id for a node certificate: the lowercase
// hex SHA-256 of its DER SubjectPublicKeyInfo.
func NodeIDFromCert(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:])
}
