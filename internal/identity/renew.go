package identity

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"
)

// MaxValidityDays bounds the validity governance may give a certificate.
const MaxValidityDays = 10 * 366

// RenewedServiceCert is a new self-signed service certificate for the same
// service key, valid from validFrom for days (CCF's
// generateNetworkCertificate, behind set_service_certificate_validity).
// Receipts stay verifiable: they are signed by the key, which is unchanged.
func (s *Service) RenewedServiceCert(validFrom time.Time, days int) ([]byte, error) {
	if days < 1 || days > MaxValidityDays {
		return nil, fmt.Errorf("identity: validity of %d days is out of range (1..%d)", days, MaxValidityDays)
	}
	tmpl, err := template(serviceCN, &s.Key.PublicKey, rand.Reader, validFrom.Add(notBeforeSkew))
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	tmpl.NotBefore, tmpl.NotAfter = validFrom, validFrom.AddDate(0, 0, days)
	tmpl.Subject = s.Cert.Subject
	tmpl.IsCA = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	_, pemBytes, err := createCert(tmpl, nil, &s.Key.PublicKey, s.Key, rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	return pemBytes, nil
}

// EndorseCSR issues a node certificate for a certificate signing request
// (PEM), signed by the service key, valid from validFrom for days (CCF's
// generateEndorsedCertificate). The request's signature must verify and
// its key must be ECDSA.
func (s *Service) EndorseCSR(csrPEM []byte, validFrom time.Time, days int) ([]byte, error) {
	if days < 1 || days > MaxValidityDays {
		return nil, fmt.Errorf("identity: validity of %d days is out of range (1..%d)", days, MaxValidityDays)
	}
	b, _ := pem.Decode(csrPEM)
	if b == nil || b.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("identity: not a PEM certificate signing request")
	}
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("identity: certificate signing request: %w", err)
	}
	pub, ok := csr.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return nil, errors.New("identity: certificate signing request with a non-ECDSA key")
	}
	tmpl, err := template(nodeCN, pub, rand.Reader, validFrom.Add(notBeforeSkew))
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	tmpl.NotBefore, tmpl.NotAfter = validFrom, validFrom.AddDate(0, 0, days)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	tmpl.DNSNames, tmpl.IPAddresses = csr.DNSNames, csr.IPAddresses
	_, pemBytes, err := createCert(tmpl, s.Cert, pub, s.Key, rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	return pemBytes, nil
}
