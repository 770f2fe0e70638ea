// Package join is the join protocol's wire format and cryptography: what a
// node that asks to join a service sends (CCF's JoinNetworkNodeToNode
// request, reduced to what ledgerd uses), what a node of the service
// answers, and how the service's secrets reach the joiner sealed to its
// encryption key. It checks a request against nothing but itself (the CSR
// and the quote bind the joiner's key); what the service's state says
// (the join policy, known nodes) is the caller's to check.
//
// Standard library only.
package join

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"strconv"
)

// Path is the endpoint a joiner POSTs its Request to (CCF's /node/join),
// on the client interface of any node of the service.
const Path = "/node/join"

// MaxRequestBytes bounds a join request.
const MaxRequestBytes = 64 << 10

// QuoteInfo is the joiner's attestation (CCF's QuoteInfo).
type QuoteInfo struct {
	Format       string `json:"format"`
	Quote        []byte `json:"quote"`
	Endorsements []byte `json:"endorsements,omitempty"`
}

// Request is what a joiner sends.
type Request struct {
	// CSR is the joiner's certificate signing request (PEM) for its node
	// key, with its DNS names and IP addresses.
	CSR string `json:"certificate_signing_request"`
	// EncryptionKey is the joiner's X25519 public key (PKIX PEM), to which
	// the service's secrets are sealed.
	EncryptionKey string `json:"public_encryption_key"`
	// QuoteInfo binds the node key (report data = SHA-256 of its DER
	// public key).
	QuoteInfo QuoteInfo `json:"quote_info"`
	// RPCAddress is the joiner's client interface (host:port).
	RPCAddress string `json:"rpc_address"`
	// PeerAddress is the joiner's node-to-node interface (host:port).
	PeerAddress string `json:"node_to_node_address"`
}

// Response is a node's answer to a join request.
type Response struct {
	// NodeStatus is Pending (the consortium has to trust it) or Trusted.
	NodeStatus string `json:"node_status"`
	// NodeID is the joiner's node id (hex SHA-256 of its DER public key).
	NodeID string `json:"node_id"`
	// Welcome is set once the joiner is Trusted.
	Welcome *Welcome `json:"network_info,omitempty"`
}

// Welcome is what a Trusted joiner needs to run as a node of the service.
type Welcome struct {
	// ServiceCert is the service certificate (PEM).
	ServiceCert string `json:"service_certificate"`
	// EndorsedCert is the joiner's node certificate, issued by the service
	// key (PEM).
	EndorsedCert string `json:"endorsed_certificate"`
	// RaftID is the joiner's Raft member id.
	RaftID uint64 `json:"raft_id"`
	// Secrets is the sealed Secrets (Seal).
	Secrets []byte `json:"encrypted_secrets"`
	// Peers are the service's Trusted nodes with a node-to-node address.
	Peers []Peer `json:"peers"`
	// Recovery is set while the service is being recovered and its
	// previous ledger secrets are not (CCF's public-only network): the
	// previous service identities and the seqnos they signed, as the
	// recovering node's recovery.json names them (node.JoinedRecovery).
	// The joiner replays the whole ledger from its peers and verifies the
	// previous nodes' signatures against them.
	Recovery json.RawMessage `json:"recovery,omitempty"`
}

// Peer is a node of the service as a joiner needs to reach it.
type Peer struct {
	NodeID  string `json:"node_id"`
	RaftID  uint64 `json:"raft_id"`
	Address string `json:"node_to_node_address"`
}

// Secrets are the service secrets every node holds: the service's first
// ledger secret (later ones are in the ledger, wrapped with a key derived
// from the service key) and the service key (PKCS#8 PEM).
type Secrets struct {
	LedgerSecret []byte `json:"ledger_secret"`
	ServiceKey   []byte `json:"service_key"`
}

// Check validates a request's shape and that its CSR is signed by an ECDSA
// key; it returns the parsed CSR. Sizes are bounded by MaxRequestBytes
// before decoding.
func (r *Request) Check() (*x509.CertificateRequest, error) {
	b, _ := pem.Decode([]byte(r.CSR))
	if b == nil || b.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("certificate_signing_request is not a PEM certificate request")
	}
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certificate_signing_request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("certificate_signing_request: %w", err)
	}
	if _, ok := csr.PublicKey.(*ecdsa.PublicKey); !ok {
		return nil, errors.New("certificate_signing_request: the node key must be ECDSA")
	}
	if _, err := ParseEncryptionKey(r.EncryptionKey); err != nil {
		return nil, err
	}
	if err := r.CheckAddresses(); err != nil {
		return nil, err
	}
	return csr, nil
}

// CheckAddresses checks the request's two addresses (host:port, a port of
// 1-65535).
func (r *Request) CheckAddresses() error {
	for what, addr := range map[string]string{"rpc_address": r.RPCAddress, "node_to_node_address": r.PeerAddress} {
		if err := checkAddress(addr); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return nil
}

func checkAddress(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "" || len(host) > 253 {
		return errors.New("no host")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("port %q is not 1-65535", port)
	}
	return nil
}

// NewEncryptionKey returns a fresh X25519 key and its public key as PKIX
// PEM.
func NewEncryptionKey() (*ecdh.PrivateKey, string, error) {
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, "", err
	}
	der, err := x509.MarshalPKIXPublicKey(k.PublicKey())
	if err != nil {
		return nil, "", err
	}
	return k, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

// ParseEncryptionKey parses a joiner's X25519 public key (PKIX PEM).
func ParseEncryptionKey(p string) (*ecdh.PublicKey, error) {
	b, _ := pem.Decode([]byte(p))
	if b == nil || b.Type != "PUBLIC KEY" {
		return nil, errors.New("public_encryption_key is not a PEM public key")
	}
	k, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("public_encryption_key: %w", err)
	}
	pub, ok := k.(*ecdh.PublicKey)
	if !ok || pub.Curve() != ecdh.X25519() {
		return nil, errors.New("public_encryption_key must be an X25519 key")
	}
	return pub, nil
}

const sealInfo = "ledgerd join secrets v1"

// Seal encrypts plaintext to an X25519 public key: an ephemeral X25519
// key, HKDF-SHA256 over the shared secret (salt: both public keys) to an
// AES-256-GCM key. Output: ephemeral public key (32) || nonce (12) ||
// ciphertext and tag.
func Seal(to *ecdh.PublicKey, plaintext []byte) ([]byte, error) {
	eph, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	aead, err := sealKey(eph, to, eph.PublicKey().Bytes())
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := append(eph.PublicKey().Bytes(), nonce...)
	return aead.Seal(out, nonce, plaintext, nil), nil
}

// Open decrypts what Seal sealed to priv's public key.
func Open(priv *ecdh.PrivateKey, sealed []byte) ([]byte, error) {
	if len(sealed) < 32+12+16 {
		return nil, errors.New("join: sealed secrets too short")
	}
	ephPub, err := ecdh.X25519().NewPublicKey(sealed[:32])
	if err != nil {
		return nil, err
	}
	aead, err := sealKey(priv, ephPub, sealed[:32])
	if err != nil {
		return nil, err
	}
	plain, err := aead.Open(nil, sealed[32:44], sealed[44:], nil)
	if err != nil {
		return nil, errors.New("join: the sealed secrets do not open with this key")
	}
	return plain, nil
}

func sealKey(priv *ecdh.PrivateKey, pub *ecdh.PublicKey, ephPub []byte) (cipher.AEAD, error) {
	shared, err := priv.ECDH(pub)
	if err != nil {
		return nil, err
	}
	recipient := pub.Bytes()
	if string(recipient) == string(ephPub) {
		recipient = priv.PublicKey().Bytes()
	}
	salt := append(append([]byte{}, ephPub...), recipient...)
	key, err := hkdf.Key(sha256.New, shared, salt, sealInfo, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// SealSecrets seals s to the request's encryption key.
func SealSecrets(encryptionKey string, s Secrets) ([]byte, error) {
	pub, err := ParseEncryptionKey(encryptionKey)
	if err != nil {
		return nil, err
	}
	plain, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	defer clear(plain)
	return Seal(pub, plain)
}

// OpenSecrets opens what SealSecrets sealed.
func OpenSecrets(priv *ecdh.PrivateKey, sealed []byte) (*Secrets, error) {
	plain, err := Open(priv, sealed)
	if err != nil {
		return nil, err
	}
	defer clear(plain)
	var s Secrets
	if err := json.Unmarshal(plain, &s); err != nil {
		return nil, fmt.Errorf("join: sealed secrets: %w", err)
	}
	if len(s.LedgerSecret) != 32 || len(s.ServiceKey) == 0 {
		return nil, errors.New("join: sealed secrets incomplete")
	}
	return &s, nil
}
