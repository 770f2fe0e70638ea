package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"log/slog"
	"path/filepath"
)

// loadOrCreateService loads the service identity, creating the key and the
// certificate if they are missing, and reports whether it generated a key.
func loadOrCreateService(dir string, o Options) (*Service, bool, error) {
	keyPath := filepath.Join(dir, ServiceKeyFile)
	certPath := filepath.Join(dir, ServiceCertFile)
	keyExists, err := exists(keyPath)
	if err != nil {
		return nil, false, err
	}
	certExists, err := exists(certPath)
	if err != nil {
		return nil, false, err
	}
	switch {
	case !keyExists && certExists:
		return nil, false, fmt.Errorf("identity: %s exists but %s does not: the service key is lost", certPath, keyPath)
	case !keyExists:
		s, err := createService(keyPath, certPath, o)
		return s, err == nil, err
	case !certExists:
		s, err := reissueService(keyPath, certPath, o)
		return s, false, err
	default:
		s, err := loadService(keyPath, certPath, o)
		return s, false, err
	}
}

// createService generates the service key and certificate and saves them,
// the key first.
func createService(keyPath, certPath string, o Options) (*Service, error) {
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("identity: couldn't generate service key: %w", err)
	}
	if err := writeKey(keyPath, key); err != nil {
		return nil, err
	}
	s, err := issueService(certPath, key, o)
	if err != nil {
		return nil, err
	}
	o.Logger.Info("created service identity", slog.String("cert", certPath))
	return s, nil
}

// reissueService issues a certificate for an existing service key whose
// certificate was never written (an interrupted first start).
func reissueService(keyPath, certPath string, o Options) (*Service, error) {
	key, err := loadKey(keyPath, o.Logger)
	if err != nil {
		return nil, err
	}
	s, err := issueService(certPath, key, o)
	if err != nil {
		return nil, err
	}
	o.Logger.Info("issued service certificate for the existing service key", slog.String("cert", certPath))
	return s, nil
}

// issueService issues and saves the self-signed service certificate.
func issueService(certPath string, key *ecdsa.PrivateKey, o Options) (*Service, error) {
	tmpl, err := template(serviceCN, &key.PublicKey, o.Rand, o.Now())
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	tmpl.IsCA = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	cert, pemBytes, err := createCert(tmpl, nil, &key.PublicKey, key, o.Rand)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	if err := writeCert(certPath, pemBytes); err != nil {
		return nil, err
	}
	return &Service{Key: key, Cert: cert, CertPEM: pemBytes}, nil
}

// loadService loads the service key and certificate and checks that they
// match and that the certificate is self-signed.
func loadService(keyPath, certPath string, o Options) (*Service, error) {
	key, err := loadKey(keyPath, o.Logger)
	if err != nil {
		return nil, err
	}
	cert, pemBytes, err := loadCert(certPath)
	if err != nil {
		return nil, err
	}
	if err := checkKeyMatches(cert, key); err != nil {
		return nil, fmt.Errorf("identity: service certificate %s does not match %s: %w", certPath, keyPath, err)
	}
	if err := cert.CheckSignatureFrom(cert); err != nil {
		return nil, fmt.Errorf("identity: service certificate %s is not a self-signed CA certificate: %w", certPath, err)
	}
	return &Service{Key: key, Cert: cert, CertPEM: pemBytes}, nil
}
