package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"

	"github.com/ledgerd/ledgerd/internal/durable"
)

// File modes: certificates are public, keys and secrets private.
const (
	publicMode  fs.FileMode = 0o644
	privateMode fs.FileMode = 0o600
)

// exists reports whether path exists; an error other than "does not exist"
// is returned.
func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("identity: couldn't stat %s: %w", path, err)
	}
}

// readPEM reads the only PEM block of a file, of type blockType.
func readPEM(path, blockType string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	if block.Type != blockType {
		return nil, fmt.Errorf("PEM block is %q, want %q", block.Type, blockType)
	}
	if len(rest) != 0 {
		if next, _ := pem.Decode(rest); next != nil {
			return nil, errors.New("more than one PEM block")
		}
	}
	return block.Bytes, nil
}

// loadCert reads a PEM certificate file.
func loadCert(path string) (*x509.Certificate, []byte, error) {
	der, err := readPEM(path, "CERTIFICATE")
	if err != nil {
		return nil, nil, fmt.Errorf("identity: couldn't load certificate %s: %w", path, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("identity: couldn't parse certificate %s: %w", path, err)
	}
	return cert, encodeCertPEM(der), nil
}

// loadKey reads a PKCS#8 PEM EC P-256 or P-384 private key file, warning if
// others can read it.
func loadKey(path string, log *slog.Logger) (*ecdsa.PrivateKey, error) {
	warnIfNotPrivate(path, log)
	der, err := readPEM(path, "PRIVATE KEY")
	if err != nil {
		return nil, fmt.Errorf("identity: couldn't load key %s: %w", path, err)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("identity: couldn't parse key %s: %w", path, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("identity: key %s is %T, want ECDSA", path, k)
	}
	if key.Curve != elliptic.P256() && key.Curve != elliptic.P384() {
		return nil, fmt.Errorf("identity: key %s is on %s, want P-256 or P-384", path, key.Curve.Params().Name)
	}
	return key, nil
}

// writeKey writes a private key as PKCS#8 PEM with mode 0600.
func writeKey(path string, key *ecdsa.PrivateKey) error {
	pemBytes, err := encodeKeyPEM(key)
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	if err := durable.WriteFile(path, pemBytes, privateMode); err != nil {
		return fmt.Errorf("identity: couldn't save key: %w", err)
	}
	return nil
}

// writeCert writes a PEM certificate with mode 0644.
func writeCert(path string, pemBytes []byte) error {
	if err := durable.WriteFile(path, pemBytes, publicMode); err != nil {
		return fmt.Errorf("identity: couldn't save certificate: %w", err)
	}
	return nil
}

// encodeKeyPEM encodes a private key as PKCS#8 PEM.
func encodeKeyPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("couldn't marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// encodeCertPEM encodes a DER certificate as PEM.
func encodeCertPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// warnIfNotPrivate logs a warning if group or others may access path.
func warnIfNotPrivate(path string, log *slog.Logger) {
	fi, err := os.Stat(path)
	if err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("private file is accessible to group or others",
			slog.String("file", path), slog.String("mode", fi.Mode().Perm().String()))
	}
}

// LoadKey reads a PKCS#8 PEM EC P-256 or P-384 private key file (such as
// service.key), for tools that need one key without the rest of a data
// directory (ledgerctl audit unwraps rekeyed ledger secrets with it).
func LoadKey(path string) (*ecdsa.PrivateKey, error) {
	return loadKey(path, slog.New(slog.DiscardHandler))
}

// KeyPEM encodes a private key as the key files hold it (PKCS#8 PEM), for
// handing the service key to a joining node sealed to its key.
func KeyPEM(key *ecdsa.PrivateKey) ([]byte, error) { return encodeKeyPEM(key) }
