package api_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/attest"
	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/join"
)

// joiner is a node asking to join: its node key, encryption key, request,
// and a client that presents a self-signed certificate for its node key.
type joiner struct {
	key    *ecdsa.PrivateKey
	enc    *ecdh.PrivateKey
	req    join.Request
	client *client
	id     string
}

func selfSigned(t *testing.T, key *ecdsa.PrivateKey) credential {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "CCF Node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return credential{cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, der: der,
		pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func (e *env) newJoiner(t *testing.T, platform attest.Platform) *joiner {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "CCF Node"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}, key)
	if err != nil {
		t.Fatal(err)
	}
	enc, encPub, err := join.NewEncryptionKey()
	if err != nil {
		t.Fatal(err)
	}
	rd, _ := attest.ReportData(&key.PublicKey)
	quote, err := platform.Quote(rd)
	if err != nil {
		t.Fatal(err)
	}
	cred := selfSigned(t, key)
	id, _ := identity.NodeID(&key.PublicKey)
	return &joiner{key: key, enc: enc, id: id, client: e.client(&cred), req: join.Request{
		CSR:           string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr})),
		EncryptionKey: encPub, QuoteInfo: join.QuoteInfo{Format: attest.FormatVirtual, Quote: quote},
		RPCAddress: "127.0.0.1:9443", PeerAddress: "127.0.0.1:9444"}}
}

func (j *joiner) ask(t *testing.T) join.Response {
	t.Helper()
	var resp join.Response
	j.client.post("/node/join", j.req).expect(200, "").decode(&resp)
	return resp
}

// checkWelcome: the endorsed certificate chains to the service certificate
// and is for the joiner's key, and the sealed secrets are the service's.
func (e *env) checkWelcome(t *testing.T, j *joiner, w *join.Welcome) {
	t.Helper()
	if w == nil || w.ServiceCert != string(e.ids.Service.CertPEM) || w.RaftID < 2 {
		t.Fatalf("welcome %+v", w)
	}
	b, _ := pem.Decode([]byte(w.EndorsedCert))
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.CheckSignatureFrom(e.ids.Service.Cert); err != nil || !cert.PublicKey.(*ecdsa.PublicKey).Equal(&j.key.PublicKey) {
		t.Fatalf("endorsed certificate: %v", err)
	}
	s, err := join.OpenSecrets(j.enc, w.Secrets)
	if err != nil || !bytes.Equal(s.LedgerSecret, e.ids.LedgerSecret) {
		t.Fatalf("secrets: %v", err)
	}
	want, _ := identity.KeyPEM(e.ids.Service.Key)
	if !bytes.Equal(s.ServiceKey, want) {
		t.Fatal("the sealed service key is not the service's")
	}
	var self bool
	for _, p := range w.Peers {
		self = self || p.NodeID == j.id
	}
	if !self {
		t.Fatalf("peers %+v do not include the joiner", w.Peers)
	}
}

// TestJoinOpeningService: a node joining an Opening service is Trusted at
// once and gets what it needs; asking again answers the same.
func TestJoinOpeningService(t *testing.T) {
	e := newEnv(t, envOptions{startOpening: true})
	j := e.newJoiner(t, e.platform)
	// Not in the join policy yet.
	j.client.post("/node/join", j.req).expect(403, "NotAllowed")
	e.pass("add_virtual_measurement", map[string]any{"measurement": e.platform.Measurement()})
	r := j.ask(t)
	if r.NodeStatus != "Trusted" || r.NodeID != j.id {
		t.Fatalf("join: %+v", r)
	}
	e.checkWelcome(t, j, r.Welcome)
	if again := j.ask(t); again.NodeStatus != "Trusted" || again.Welcome.RaftID != r.Welcome.RaftID {
		t.Fatalf("asking again: %+v", again)
	}
	// A second joiner gets the next Raft id.
	k := e.newJoiner(t, e.platform)
	if r2 := k.ask(t); r2.Welcome == nil || r2.Welcome.RaftID != r.Welcome.RaftID+1 {
		t.Fatalf("second joiner: %+v", r2)
	}
}

// TestJoinOpenServiceNeedsTheConsortium: joining an Open service leaves
// the node Pending, without secrets, until transition_node_to_trusted.
func TestJoinOpenServiceNeedsTheConsortium(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.pass("add_virtual_measurement", map[string]any{"measurement": e.platform.Measurement()})
	j := e.newJoiner(t, e.platform)
	r := j.ask(t)
	if r.NodeStatus != "Pending" || r.Welcome != nil {
		t.Fatalf("join: %+v", r)
	}
	e.pass("transition_node_to_trusted", map[string]any{"node_id": j.id, "valid_from": time.Now().UTC().Format("20060102150405Z")})
	r = j.ask(t)
	if r.NodeStatus != "Trusted" {
		t.Fatalf("after transition_node_to_trusted: %+v", r)
	}
	e.checkWelcome(t, j, r.Welcome)
	e.pass("remove_node", map[string]any{"node_id": j.id})
	j.client.post("/node/join", j.req).expect(403, "NotAllowed")
}

// TestJoinRefusals: what a joiner presents must bind its key.
func TestJoinRefusals(t *testing.T) {
	e := newEnv(t, envOptions{startOpening: true})
	e.pass("add_virtual_measurement", map[string]any{"measurement": e.platform.Measurement()})
	j := e.newJoiner(t, e.platform)
	other := e.newJoiner(t, e.platform)
	// Another key's TLS certificate.
	other.client.post("/node/join", j.req).expect(401, "InvalidAuthenticationInfo")
	// No client certificate.
	e.anonymous.post("/node/join", j.req).expect(401, "InvalidAuthenticationInfo")
	// A quote for another key.
	forged := j.req
	forged.QuoteInfo = other.req.QuoteInfo
	j.client.post("/node/join", forged).expect(403, "NotAllowed")
	// A measurement the policy does not allow.
	stranger, err := attest.NewVirtual("/proc/self/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	s := e.newJoiner(t, stranger)
	s.client.post("/node/join", s.req).expect(403, "NotAllowed")
	// Malformed.
	bad := j.req
	bad.CSR = "nonsense"
	j.client.post("/node/join", bad).expect(400, "InvalidInput")
	j.client.post("/node/join", "{").expect(400, "InvalidInput")
	if got := len(e.node.State().Collections()); got != 0 {
		t.Fatalf("collections %d", got)
	}
}
