// Package identity creates and loads the identities of a ledgerd node, as CCF
// has them: the service identity (the certificate clients pin), the node
// identity (its key signs Merkle roots and serves TLS, its certificate is
// endorsed by the service), and the ledger secret that encrypts the private
// domain of ledger entries (docs ccf-format.md §1.4, §3, §5).
//
// They are created on the first start of a data directory and reused after:
//
//	service.pem    service certificate, self-signed, EC P-384   0644 (clients pin it)
//	service.key    service private key, PKCS#8 PEM              0600
//	node.pem       node certificate, issued by the service key  0644
//	node.key       node private key, EC P-256, PKCS#8 PEM       0600
//	ledger.secret  ledger secret, exactly 32 raw bytes          0600
//
// Each file is written atomically (a temporary file with the final mode,
// fsync, rename, fsync of the directory), so after a crash a file is either
// whole or absent.
package identity

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"
)

// Names of the files in the data directory.
const (
	ServiceCertFile  = "service.pem"
	ServiceKeyFile   = "service.key"
	NodeCertFile     = "node.pem"
	NodeKeyFile      = "node.key"
	LedgerSecretFile = "ledger.secret"
)

// LedgerSecretSize is the size of the ledger secret, an AES-256-GCM key.
const LedgerSecretSize = 32

// Service is the service identity: a self-signed EC P-384 certificate with
// subject CN=CCF Network. It is what clients pin, and it endorses the node
// certificates. It never changes for the life of the service.
type Service struct {
	Key     *ecdsa.PrivateKey
	Cert    *x509.Certificate
	CertPEM []byte
}

// Node is a node identity: an EC P-256 key (it signs a Merkle root at every
// signature transaction) with a certificate CN=CCF Node issued by the service
// key, with the node's DNS names and IP addresses as SANs.
type Node struct {
	Key     *ecdsa.PrivateKey
	Cert    *x509.Certificate
	CertPEM []byte
	// ID is CCF's node id: the lowercase hex SHA-256 of the DER
	// SubjectPublicKeyInfo of Key (the nodeId of receipts).
	ID string
}

// Identities are everything LoadOrCreate loads from a data directory.
type Identities struct {
	Service *Service
	Node    *Node
	// LedgerSecret is LedgerSecretSize random bytes.
	LedgerSecret []byte
	// Created reports whether this call generated any key or the ledger
	// secret: a first start, or the completion of an interrupted one. A
	// caller whose ledger already holds entries must treat a newly created
	// ledger secret as a lost one, not start with it.
	Created bool
}

// Options say how LoadOrCreate issues certificates. The zero value is
// usable.
type Options struct {
	// DNSNames and IPs are the node certificate's subject alternative names,
	// the addresses clients reach the node at. If the stored node
	// certificate has other ones, it is re-issued for the same node key (the
	// node id does not change).
	DNSNames []string
	IPs      []net.IP
	// Rand is the source of serial numbers and of the ledger secret (nil:
	// crypto/rand). Key generation always uses crypto/rand since Go 1.26.
	Rand io.Reader
	// Now is the clock for certificate validity (nil: time.Now).
	Now func() time.Time
	// Logger receives what LoadOrCreate creates or re-issues, never a key
	// or a secret (nil: discard).
	Logger *slog.Logger
}

// validate checks the options and fills in the defaults.
func (o Options) validate() (Options, error) {
	for _, name := range o.DNSNames {
		if name == "" {
			return o, errors.New("identity: empty DNS name in Options.DNSNames")
		}
	}
	for _, ip := range o.IPs {
		if len(ip) != net.IPv4len && len(ip) != net.IPv6len {
			return o, fmt.Errorf("identity: invalid IP address %v in Options.IPs", ip)
		}
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// LoadOrCreate loads the identities stored in dir, creating whatever is
// missing, in this order: service key, service certificate, node key, node
// certificate, ledger secret. The files and what is checked on load are
// listed in the package documentation; any problem gives an error naming the
// file. The caller must hold the data directory's lock.
//
// An interrupted first start is completed: a key without its certificate
// gets one issued. A certificate whose key is missing is an error, since the
// key cannot be recovered (for the node, remove node.pem to create a new node
// identity).
func LoadOrCreate(dir string, opts Options) (*Identities, error) {
	o, err := opts.validate()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("identity: couldn't create data directory: %w", err)
	}
	// 1. The service identity. A crash after service.key is written and
	// before service.pem is leaves a key without a certificate: the next
	// start issues the certificate for that key.
	service, serviceCreated, err := loadOrCreateService(dir, o)
	if err != nil {
		return nil, err
	}
	// 2. The node identity, endorsed by the service. The same crash window
	// between node.key and node.pem is closed the same way; a certificate
	// for other SANs is re-issued for the same key.
	node, nodeCreated, err := loadOrCreateNode(dir, service, o)
	if err != nil {
		return nil, err
	}
	// 3. The ledger secret, last: before it exists, nothing has been
	// encrypted with it.
	secret, secretCreated, err := loadOrCreateLedgerSecret(dir, o)
	if err != nil {
		return nil, err
	}
	return &Identities{
		Service:      service,
		Node:         node,
		LedgerSecret: secret,
		Created:      serviceCreated || nodeCreated || secretCreated,
	}, nil
}
