package transport

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"
)

// NodeCN is the subject common name of a node certificate (CCF's).
const NodeCN = "CCF Node"

// ErrNotNode is wrapped by every refusal of a certificate by
// [VerifyNodeCert].
var ErrNotNode = errors.New("transport: not a node certificate of this service")

// VerifyNodeCert applies the node certificate rule to a peer's certificate
// chain (the leaf first; the rest of the chain is ignored, the service
// certificate is the only root and there are no intermediates) and returns
// the peer's node id. A node certificate of this service:
//
//   - is issued by the service key and verifies against service (the
//     service certificate of this service, the only root) at now, within
//     its validity period: a node of another service, a self-signed member
//     or user certificate, or an expired node certificate is refused;
//   - has the subject CN "CCF Node" (the service certificate is "CCF
//     Network"; member and user certificates have their own names);
//   - is not a CA certificate;
//   - has both extended key usages ServerAuth and ClientAuth (a client
//     certificate has ClientAuth only; the service certificate has none);
//   - has an ECDSA P-256 key: the node id is the lowercase hex SHA-256 of
//     its DER SubjectPublicKeyInfo (identity.NodeID).
//
// The service key issues only node certificates (identity.EndorseCSR and
// the node's own), so the first rule is the one that matters; the others
// refuse anything else the key might have signed.
func VerifyNodeCert(chain []*x509.Certificate, service *x509.Certificate, now time.Time) (string, error) {
	if len(chain) == 0 {
		return "", fmt.Errorf("%w: no certificate", ErrNotNode)
	}
	leaf := chain[0]
	if leaf.Subject.CommonName != NodeCN {
		return "", fmt.Errorf("%w: subject CN %q, want %q", ErrNotNode, leaf.Subject.CommonName, NodeCN)
	}
	if leaf.IsCA {
		return "", fmt.Errorf("%w: a CA certificate", ErrNotNode)
	}
	if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) || !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return "", fmt.Errorf("%w: extended key usage must include ServerAuth and ClientAuth", ErrNotNode)
	}
	key, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || key.Curve != elliptic.P256() {
		return "", fmt.Errorf("%w: not an ECDSA P-256 key", ErrNotNode)
	}
	roots := x509.NewCertPool()
	roots.AddCert(service)
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: x509.NewCertPool(),
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny}, // checked above
	}); err != nil {
		return "", fmt.Errorf("%w: %v", ErrNotNode, err)
	}
	return nodeID(key)
}

// nodeID is identity.NodeID (this package imports nothing of the module):
// the lowercase hex SHA-256 of the DER SubjectPublicKeyInfo.
func nodeID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNotNode, err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// validNodeID reports whether id looks like a node id (64 lowercase hex).
func validNodeID(id string) bool {
	if len(id) != 64 {
		return false
	}
	for _, c := range id {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
