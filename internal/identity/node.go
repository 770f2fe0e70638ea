package identity

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
)

// NodeID returns CCF's node id for a public key: the lowercase hex SHA-256 of
// its DER SubjectPublicKeyInfo.
func NodeID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("identity: couldn't marshal public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// TLSCertificate returns the node's TLS server (and Raft client) certificate:
// the chain [node certificate, service certificate] with the node key, so a
// client that pins the service certificate trusts the node.
func (n *Node) TLSCertificate(service *Service) tls.Certificate {
	return tls.Certificate{
		Certificate: [][]byte{n.Cert.Raw, service.Cert.Raw},
		PrivateKey:  n.Key,
		Leaf:        n.Cert,
	}
}

// loadOrCreateNode loads the node identity, creating the key and issuing the
// certificate as needed, and reports whether it generated the key.
func loadOrCreateNode(dir string, service *Service, o Options) (*Node, bool, error) {
	keyPath := filepath.Join(dir, NodeKeyFile)
	certPath := filepath.Join(dir, NodeCertFile)
	key, created, err := loadOrCreateNodeKey(keyPath, certPath, o)
	if err != nil {
		return nil, false, err
	}
	id, err := NodeID(&key.PublicKey)
	if err != nil {
		return nil, false, err
	}
	cert, pemBytes, err := loadOrIssueNodeCert(keyPath, certPath, key, id, service, o)
	if err != nil {
		return nil, false, err
	}
	return &Node{Key: key, Cert: cert, CertPEM: pemBytes, ID: id}, created, nil
}

// loadOrCreateNodeKey loads node.key, or generates and saves it if neither
// it nor node.pem exists.
func loadOrCreateNodeKey(keyPath, certPath string, o Options) (*ecdsa.PrivateKey, bool, error) {
	keyExists, err := exists(keyPath)
	if err != nil {
		return nil, false, err
	}
	if keyExists {
		key, err := loadKey(keyPath, o.Logger)
		return key, false, err
	}
	certExists, err := exists(certPath)
	if err != nil {
		return nil, false, err
	}
	if certExists {
		return nil, false, fmt.Errorf("identity: %s exists but %s does not: the node key is lost "+
			"(remove %s to create a new node identity)", certPath, keyPath, certPath)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("identity: couldn't generate node key: %w", err)
	}
	if err := writeKey(keyPath, key); err != nil {
		return nil, false, err
	}
	return key, true, nil
}

// loadOrIssueNodeCert loads node.pem and checks it against the node key and
// the service, and issues a new one if it is missing, expired, or has other
// SANs than the options ask for.
func loadOrIssueNodeCert(keyPath, certPath string, key *ecdsa.PrivateKey, id string, service *Service, o Options) (*x509.Certificate, []byte, error) {
	reason := "no node certificate"
	certExists, err := exists(certPath)
	if err != nil {
		return nil, nil, err
	}
	if certExists {
		cert, pemBytes, err := loadNodeCert(keyPath, certPath, key, service)
		if err != nil {
			return nil, nil, err
		}
		if reason = reissueReason(cert, o); reason == "" {
			return cert, pemBytes, nil
		}
	}
	cert, pemBytes, err := issueNodeCert(certPath, key, service, o)
	if err != nil {
		return nil, nil, err
	}
	o.Logger.Info("issued node certificate", slog.String("node_id", id), slog.String("reason", reason),
		slog.Any("dns_names", o.DNSNames), slog.Any("ips", o.IPs))
	return cert, pemBytes, nil
}

// loadNodeCert loads node.pem and checks that it is for the node key and
// issued by the service key.
func loadNodeCert(keyPath, certPath string, key *ecdsa.PrivateKey, service *Service) (*x509.Certificate, []byte, error) {
	cert, pemBytes, err := loadCert(certPath)
	if err != nil {
		return nil, nil, err
	}
	if err := checkKeyMatches(cert, key); err != nil {
		return nil, nil, fmt.Errorf("identity: node certificate %s does not match %s: %w", certPath, keyPath, err)
	}
	if err := cert.CheckSignatureFrom(service.Cert); err != nil {
		return nil, nil, fmt.Errorf("identity: node certificate %s is not issued by the service certificate %s: %w",
			certPath, filepath.Join(filepath.Dir(certPath), ServiceCertFile), err)
	}
	return cert, pemBytes, nil
}

// reissueReason says why the node certificate must be re-issued, or "" if
// it need not be.
func reissueReason(cert *x509.Certificate, o Options) string {
	switch {
	case !sameSet(cert.DNSNames, o.DNSNames):
		return "DNS names changed"
	case !sameSet(ipStrings(cert.IPAddresses), ipStrings(o.IPs)):
		return "IP addresses changed"
	case o.Now().After(cert.NotAfter):
		return "expired"
	default:
		return ""
	}
}

// issueNodeCert issues the node certificate with the service key and saves
// it.
func issueNodeCert(certPath string, key *ecdsa.PrivateKey, service *Service, o Options) (*x509.Certificate, []byte, error) {
	tmpl, err := template(nodeCN, &key.PublicKey, o.Rand, o.Now())
	if err != nil {
		return nil, nil, fmt.Errorf("identity: %w", err)
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	tmpl.DNSNames = o.DNSNames
	tmpl.IPAddresses = o.IPs
	cert, pemBytes, err := createCert(tmpl, service.Cert, &key.PublicKey, service.Key, o.Rand)
	if err != nil {
		return nil, nil, fmt.Errorf("identity: %w", err)
	}
	if err := writeCert(certPath, pemBytes); err != nil {
		return nil, nil, err
	}
	return cert, pemBytes, nil
}

// sameSet reports whether a and b hold the same strings, in any order.
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// ipStrings returns the canonical text of each address, so that 4- and
// 16-byte forms of an IPv4 address compare equal.
func ipStrings(ips []net.IP) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out
}
