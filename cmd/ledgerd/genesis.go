package main

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/ledgerd/ledgerd/internal/auth"
	"github.com/ledgerd/ledgerd/internal/durable"
	"github.com/ledgerd/ledgerd/internal/gov"
	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/recovery"
)

// Credential files written on the first start. member0 is a recovery
// member, as in CCF's sandbox: it holds a share of the ledger secret,
// encrypted to its RSA encryption key (member0_enc_pubk.pem; the private
// key, member0_enc_privk.pem, opens the share).
const (
	adminFile         = "admin.pem"
	memberFile        = "member0.pem"
	memberEncPrivFile = "member0_enc_privk.pem"
	memberEncPubFile  = "member0_enc_pubk.pem"
)

// genesisPlan is the genesis transaction's governance and what was created
// for it.
type genesisPlan struct {
	writes []ledger.MapWrites
	// created lists the credential files created by this start.
	created []string
	// issuers are the JWT issuers of --aad-tenant and --jwt-issuer, which
	// seed the genesis only (warnFlagIssuers).
	issuers []gov.JWTIssuer
}

// planGenesis assembles the genesis governance. On the first start (fresh:
// the ledger holds nothing) it creates admin.pem, member0.pem and member0's
// encryption key pair if they are missing, and reads every --user
// certificate; member0 gets a share of secret, the ledger secret. On later starts nothing
// is created: the node ignores the genesis writes once the service exists,
// but they are still assembled from the files that exist, so that a start
// interrupted after Raft's bootstrap entries and before the genesis
// transaction still founds the service with its administrator.
func planGenesis(cfg config, fresh bool, secret []byte, log *slog.Logger) (*genesisPlan, error) {
	var plan genesisPlan
	g := gov.Genesis{}
	// The join policy admits nodes running this very binary, as CCF
	// admits the first node's measurement.
	platform, err := thisPlatform()
	if err != nil {
		return nil, err
	}
	g.JoinMeasurements = []string{platform.Measurement()}
	admin, created, err := clientCert(filepath.Join(cfg.Data, adminFile), "ledgerd administrator", fresh)
	if err != nil {
		return nil, err
	}
	if created {
		plan.created = append(plan.created, filepath.Join(cfg.Data, adminFile))
	}
	member, created, err := clientCert(filepath.Join(cfg.Data, memberFile), "ledgerd member 0", fresh)
	if err != nil {
		return nil, err
	}
	if created {
		plan.created = append(plan.created, filepath.Join(cfg.Data, memberFile))
	}
	if admin != nil {
		g.Users = append(g.Users, gov.User{ID: identity.Fingerprint(admin.Raw), Role: auth.RoleAdministrator})
	}
	if member != nil {
		g.Members = append(g.Members, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: member.Raw}))
		pub, created, err := encryptionKey(cfg.Data, fresh)
		if err != nil {
			return nil, err
		}
		plan.created = append(plan.created, created...)
		g.EncryptionKeys = [][]byte{pub}
		g.LedgerSecret = secret
	}
	for _, spec := range cfg.Users {
		u, err := userFromSpec(spec)
		if err != nil && fresh {
			return nil, err
		}
		if err != nil {
			log.Warn("ignoring --user: the service exists already", "user", spec, "err", err)
			continue
		}
		g.Users = append(g.Users, u)
	}
	if plan.issuers, err = flagIssuers(cfg, log); err != nil {
		if fresh {
			return nil, err
		}
		log.Warn("ignoring --jwt-issuer: the service exists already", "err", err)
	}
	g.JWTIssuers = plan.issuers
	if len(g.Members) == 0 {
		// Not fresh and member0.pem is gone: the service exists, and the
		// node will not write genesis again.
		return &plan, nil
	}
	if plan.writes, err = g.Writes(); err != nil {
		return nil, fmt.Errorf("couldn't assemble the genesis transaction: %w", err)
	}
	return &plan, nil
}

// clientCert loads the certificate of a combined certificate-and-key PEM
// file, creating the file with a new identity if it is missing and create
// is set. It returns nil if the file is missing and create is not set.
func clientCert(path, cn string, create bool) (*x509.Certificate, bool, error) {
	cert, err := readCertificate(path)
	switch {
	case err == nil:
		return cert, false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, false, err
	case !create:
		return nil, false, nil
	}
	certPEM, keyPEM, err := identity.NewClientIdentity(cn, nil)
	if err != nil {
		return nil, false, err
	}
	if err := identity.WriteCombinedPEM(path, certPEM, keyPEM); err != nil {
		return nil, false, err
	}
	cert, err = readCertificate(path)
	return cert, true, err
}

// encryptionKey returns member0's encryption public key (PEM), creating
// the key pair if it is missing and create is set: the private key first
// (0600), then the public key, so that a public key on disk always has its
// private key (a lost public key is rebuilt from the private key, and
// saved if create is set). It returns nil if there is no key and create
// is not set.
func encryptionKey(dir string, create bool) ([]byte, []string, error) {
	privPath, pubPath := filepath.Join(dir, memberEncPrivFile), filepath.Join(dir, memberEncPubFile)
	pub, err := os.ReadFile(pubPath)
	switch {
	case err == nil:
		return pub, nil, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, nil, fmt.Errorf("couldn't read the member's encryption key: %w", err)
	}
	var created []string
	priv, err := os.ReadFile(privPath)
	switch {
	case err == nil:
		// The public key was lost after the private key was written.
		key, err := recovery.ParsePrivateKey(priv)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", privPath, err)
		}
		der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
		if err != nil {
			return nil, nil, err
		}
		pub = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		if !create {
			return pub, nil, nil
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, nil, fmt.Errorf("couldn't read the member's encryption key: %w", err)
	case !create:
		return nil, nil, nil
	default:
		if priv, pub, err = recovery.NewEncryptionKey(); err != nil {
			return nil, nil, err
		}
		if err := durable.WriteFile(privPath, priv, 0o600); err != nil {
			return nil, nil, fmt.Errorf("couldn't save the member's encryption key: %w", err)
		}
		created = append(created, privPath)
	}
	if err := durable.WriteFile(pubPath, pub, 0o644); err != nil {
		return nil, nil, fmt.Errorf("couldn't save the member's encryption key: %w", err)
	}
	return pub, append(created, pubPath), nil
}

// readCertificate parses the first CERTIFICATE block of a PEM file (which
// may also hold a key, never decoded here).
func readCertificate(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read certificate: %w", err)
	}
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return nil, fmt.Errorf("%s holds no PEM CERTIFICATE block", path)
		}
		if b.Type == "CERTIFICATE" {
			cert, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("couldn't parse the certificate in %s: %w", path, err)
			}
			return cert, nil
		}
	}
}

// userFromSpec reads the certificate of a --user CERTFILE:ROLE.
func userFromSpec(spec string) (gov.User, error) {
	path, role, err := parseUserSpec(spec)
	if err != nil {
		return gov.User{}, err
	}
	cert, err := readCertificate(path)
	if err != nil {
		return gov.User{}, fmt.Errorf("--user %q: %w", spec, err)
	}
	return gov.User{ID: identity.Fingerprint(cert.Raw), Role: role}, nil
}

// ledgerIsEmpty reports whether the node's ledger (DIR/ledger, see
// node.Config.Dir) holds no transaction: the first start of a service.
func ledgerIsEmpty(dataDir string, log *slog.Logger) (bool, error) {
	dir := filepath.Join(dataDir, "ledger")
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	l, err := ledger.Open(dir, ledger.Options{Logger: log})
	if err != nil {
		return false, fmt.Errorf("couldn't open the ledger: %w", err)
	}
	last := l.LastSeqno()
	if err := l.Close(); err != nil {
		return false, fmt.Errorf("couldn't close the ledger: %w", err)
	}
	return last == 0, nil
}
