package identity

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/ledgerd/ledgerd/internal/durable"
)

// LoadOrCreateNodeKey loads DIR/node.key, or creates it (0600): the first
// step of a node that joins an existing service, before it has a
// certificate.
func LoadOrCreateNodeKey(dir string, log *slog.Logger) (*ecdsa.PrivateKey, error) {
	if log == nil {
		log = slog.Default()
	}
	key, _, err := loadOrCreateNodeKey(filepath.Join(dir, NodeKeyFile), filepath.Join(dir, NodeCertFile), Options{Logger: log})
	return key, err
}

// WriteJoined saves what a node receives when the service trusts it: the
// service certificate and key, the service's first ledger secret (0600),
// and its service-endorsed node certificate, which must be for nodeKey and
// issued by the service key. Afterwards LoadOrCreate loads the joined
// node's identities.
func WriteJoined(dir string, nodeKey *ecdsa.PrivateKey, serviceCertPEM, serviceKeyPEM, ledgerSecret, nodeCertPEM []byte) error {
	svcKey, err := parseKeyPEM(serviceKeyPEM)
	if err != nil {
		return fmt.Errorf("identity: the service key received: %w", err)
	}
	svcCert, err := parseCertPEM(serviceCertPEM)
	if err != nil {
		return fmt.Errorf("identity: the service certificate received: %w", err)
	}
	if err := checkKeyMatches(svcCert, svcKey); err != nil {
		return fmt.Errorf("identity: the service key received is not the service certificate's: %w", err)
	}
	nodeCert, err := parseCertPEM(nodeCertPEM)
	if err != nil {
		return fmt.Errorf("identity: the node certificate received: %w", err)
	}
	if err := nodeCert.CheckSignatureFrom(svcCert); err != nil {
		return fmt.Errorf("identity: the node certificate received is not endorsed by the service: %w", err)
	}
	if err := checkKeyMatches(nodeCert, nodeKey); err != nil {
		return fmt.Errorf("identity: the node certificate received is not for this node's key: %w", err)
	}
	if len(ledgerSecret) != LedgerSecretSize {
		return errors.New("identity: the ledger secret received has the wrong size")
	}
	if err := durable.WriteFile(filepath.Join(dir, LedgerSecretFile), ledgerSecret, privateMode); err != nil {
		return err
	}
	if err := writeKey(filepath.Join(dir, ServiceKeyFile), svcKey); err != nil {
		return err
	}
	if err := writeCert(filepath.Join(dir, ServiceCertFile), serviceCertPEM); err != nil {
		return err
	}
	return writeCert(filepath.Join(dir, NodeCertFile), nodeCertPEM)
}

func parseKeyPEM(p []byte) (*ecdsa.PrivateKey, error) {
	b, _ := pem.Decode(p)
	if b == nil {
		return nil, errors.New("not PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, err
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("not an ECDSA key")
	}
	return ek, nil
}

func parseCertPEM(p []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(p)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("not a PEM certificate")
	}
	return x509.ParseCertificate(b.Bytes)
}
