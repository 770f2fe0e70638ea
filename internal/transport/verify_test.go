package transport

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/ledgerd/ledgerd/internal/identity"
)

// issue signs a certificate for a new key with the service key, from a
// node certificate template changed by mod.
func issue(t *testing.T, svc *identity.Identities, curve elliptic.Curve, mod func(*x509.Certificate)) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: NodeCN},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if mod != nil {
		mod(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, svc.Service.Cert, &key.PublicKey, svc.Service.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestVerifyNodeCert checks each part of the node certificate rule with a
// certificate that breaks that part only (or, for real-world refusals, the
// certificates ledgerd makes for other roles).
func TestVerifyNodeCert(t *testing.T) {
	svc := newService(t)
	ids := svc.node(t)
	other := newService(t)
	now := time.Now()

	id, err := VerifyNodeCert([]*x509.Certificate{ids.Node.Cert, ids.Service.Cert}, svc.ids.Service.Cert, now)
	if err != nil {
		t.Fatalf("a node certificate of the service: %v", err)
	}
	if id != ids.Node.ID {
		t.Fatalf("node id %s, identity.NodeID says %s", id, ids.Node.ID)
	}
	if _, err := VerifyNodeCert([]*x509.Certificate{issue(t, svc.ids, elliptic.P256(), nil)}, svc.ids.Service.Cert, now); err != nil {
		t.Fatalf("the test's own node certificate template: %v", err)
	}

	clientPEM, clientKey, err := identity.NewClientIdentity("user0", nil)
	if err != nil {
		t.Fatal(err)
	}
	clientPair, err := tls.X509KeyPair(clientPEM, clientKey)
	if err != nil {
		t.Fatal(err)
	}
	clientCert, _ := x509.ParseCertificate(clientPair.Certificate[0])

	cases := []struct {
		name string
		cert *x509.Certificate
		now  time.Time
		want string
	}{
		{"a user or member certificate", clientCert, now, "subject CN"},
		{"the service certificate", svc.ids.Service.Cert, now, "subject CN"},
		{"a node of another service", other.ids.Node.Cert, now, "unknown authority"},
		{"an expired node certificate", ids.Node.Cert, now.AddDate(20, 0, 0), "expired"},
		{"issued by the service, ClientAuth only", issue(t, svc.ids, elliptic.P256(), func(c *x509.Certificate) {
			c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		}), now, "extended key usage"},
		{"issued by the service, ServerAuth only", issue(t, svc.ids, elliptic.P256(), func(c *x509.Certificate) {
			c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		}), now, "extended key usage"},
		{"issued by the service, another CN", issue(t, svc.ids, elliptic.P256(), func(c *x509.Certificate) {
			c.Subject.CommonName = "member0"
		}), now, "subject CN"},
		{"issued by the service, a CA", issue(t, svc.ids, elliptic.P256(), func(c *x509.Certificate) {
			c.IsCA = true
			c.KeyUsage |= x509.KeyUsageCertSign
		}), now, "CA"},
		{"issued by the service, a P-384 key", issue(t, svc.ids, elliptic.P384(), nil), now, "P-256"},
	}
	for _, c := range cases {
		_, err := VerifyNodeCert([]*x509.Certificate{c.cert}, svc.ids.Service.Cert, c.now)
		if !errors.Is(err, ErrNotNode) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want ErrNotNode saying %q", c.name, err, c.want)
		}
	}
	if _, err := VerifyNodeCert(nil, svc.ids.Service.Cert, now); !errors.Is(err, ErrNotNode) {
		t.Errorf("no certificate: err = %v", err)
	}
}

// TestNewRefusesOwnCertificate: a transport whose own certificate is not a
// node certificate of its service does not start.
func TestNewRefusesOwnCertificate(t *testing.T) {
	svc := newService(t)
	other := newService(t)
	_, err := New(Config{RaftID: 1, Cert: other.ids.Node.TLSCertificate(other.ids.Service),
		ServiceCert: svc.ids.Service.Cert, Allowed: func(string) bool { return true }, Deliver: func(m raftpb.Message) {}})
	if !errors.Is(err, ErrNotNode) {
		t.Fatalf("New with another service's node certificate: %v", err)
	}
}
