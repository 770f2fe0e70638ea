package identity_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/identity"
)

var start = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testOptions() identity.Options {
	return identity.Options{
		DNSNames: []string{"ledger.example", "localhost"},
		IPs:      []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
		Now:      func() time.Time { return start },
	}
}

func mustLoad(t *testing.T, dir string, o identity.Options) *identity.Identities {
	t.Helper()
	ids, err := identity.LoadOrCreate(dir, o)
	if err != nil {
		t.Fatalf("LoadOrCreate: %v", err)
	}
	return ids
}

func TestCreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	ids := mustLoad(t, dir, testOptions())
	if !ids.Created {
		t.Error("Created = false on first start")
	}
	checkService(t, ids.Service)
	checkNode(t, ids)
	if len(ids.LedgerSecret) != identity.LedgerSecretSize {
		t.Errorf("ledger secret is %d bytes", len(ids.LedgerSecret))
	}
	for name, want := range map[string]fs.FileMode{
		identity.ServiceCertFile:  0o644,
		identity.ServiceKeyFile:   0o600,
		identity.NodeCertFile:     0o644,
		identity.NodeKeyFile:      0o600,
		identity.LedgerSecretFile: 0o600,
		".":                       0o700 | fs.ModeDir,
	} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode(); got != want {
			t.Errorf("%s: mode %v, want %v", name, got, want)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 5 {
		t.Errorf("data directory holds %d files, want 5 (no temporary files left)", len(entries))
	}
}

func checkService(t *testing.T, s *identity.Service) {
	t.Helper()
	c := s.Cert
	if c.Subject.String() != "CN=CCF Network" || c.Issuer.String() != "CN=CCF Network" {
		t.Errorf("service subject %v, issuer %v", c.Subject, c.Issuer)
	}
	if !c.IsCA || !c.BasicConstraintsValid || c.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageDigitalSignature {
		t.Errorf("service IsCA %v, BasicConstraintsValid %v, KeyUsage %v", c.IsCA, c.BasicConstraintsValid, c.KeyUsage)
	}
	if s.Key.Curve != elliptic.P384() || !s.Key.PublicKey.Equal(c.PublicKey) {
		t.Error("service key is not the P-384 key of the certificate")
	}
	checkCommon(t, c)
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("service certificate is not self-signed: %v", err)
	}
	if !bytes.Equal(pemDER(t, s.CertPEM), c.Raw) {
		t.Error("service CertPEM is not Cert")
	}
}

func checkNode(t *testing.T, ids *identity.Identities) {
	t.Helper()
	n := ids.Node
	c := n.Cert
	if c.Subject.String() != "CN=CCF Node" || c.IsCA {
		t.Errorf("node subject %v, IsCA %v", c.Subject, c.IsCA)
	}
	if n.Key.Curve != elliptic.P256() || !n.Key.PublicKey.Equal(c.PublicKey) {
		t.Error("node key is not the P-256 key of the certificate")
	}
	checkCommon(t, c)
	if len(c.ExtKeyUsage) != 2 || c.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth || c.ExtKeyUsage[1] != x509.ExtKeyUsageClientAuth {
		t.Errorf("node ExtKeyUsage %v", c.ExtKeyUsage)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ids.Service.Cert)
	for _, host := range []string{"ledger.example", "localhost", "127.0.0.1", "::1"} {
		_, err := c.Verify(x509.VerifyOptions{
			DNSName:     host,
			Roots:       roots,
			CurrentTime: start,
			KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		})
		if err != nil {
			t.Errorf("node certificate does not verify for %s: %v", host, err)
		}
	}
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	if want := hex.EncodeToString(sum[:]); n.ID != want {
		t.Errorf("node ID %s, want %s", n.ID, want)
	}
	if !bytes.Equal(pemDER(t, n.CertPEM), c.Raw) {
		t.Error("node CertPEM is not Cert")
	}
}

func checkCommon(t *testing.T, c *x509.Certificate) {
	t.Helper()
	if !c.NotBefore.Equal(start.Add(-time.Hour)) || !c.NotAfter.Equal(start.AddDate(10, 0, 0)) {
		t.Errorf("%s valid %v to %v", c.Subject, c.NotBefore, c.NotAfter)
	}
	if c.SerialNumber.BitLen() != 128 {
		t.Errorf("%s serial has %d bits", c.Subject, c.SerialNumber.BitLen())
	}
	if len(c.SubjectKeyId) != 20 {
		t.Errorf("%s subject key id %x", c.Subject, c.SubjectKeyId)
	}
}

func pemDER(t *testing.T, data []byte) []byte {
	t.Helper()
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("no PEM in %q", data)
	}
	return b.Bytes
}

func TestReload(t *testing.T) {
	dir := t.TempDir()
	first := mustLoad(t, dir, testOptions())
	o := testOptions()
	o.Now = func() time.Time { return start.Add(24 * time.Hour) }
	o.IPs = []net.IP{net.ParseIP("::1"), net.IPv4(127, 0, 0, 1).To4()} // same set
	second := mustLoad(t, dir, o)
	if second.Created {
		t.Error("Created = true on reload")
	}
	if !first.Service.Key.Equal(second.Service.Key) || !first.Node.Key.Equal(second.Node.Key) {
		t.Error("keys changed on reload")
	}
	if !bytes.Equal(first.Service.Cert.Raw, second.Service.Cert.Raw) || !bytes.Equal(first.Node.Cert.Raw, second.Node.Cert.Raw) {
		t.Error("certificates changed on reload")
	}
	if first.Node.ID != second.Node.ID || !bytes.Equal(first.LedgerSecret, second.LedgerSecret) {
		t.Error("node id or ledger secret changed on reload")
	}
}

func TestSANChangeReissuesNodeCert(t *testing.T) {
	dir := t.TempDir()
	first := mustLoad(t, dir, testOptions())
	o := testOptions()
	o.DNSNames = []string{"ledger2.example"}
	second := mustLoad(t, dir, o)
	if second.Created {
		t.Error("Created = true after re-issue")
	}
	if second.Node.ID != first.Node.ID || !second.Node.Key.Equal(first.Node.Key) {
		t.Error("node key or id changed on re-issue")
	}
	if bytes.Equal(first.Node.Cert.Raw, second.Node.Cert.Raw) {
		t.Fatal("node certificate not re-issued")
	}
	if got := second.Node.Cert.DNSNames; len(got) != 1 || got[0] != "ledger2.example" {
		t.Errorf("re-issued DNS names %v", got)
	}
	if err := second.Node.Cert.CheckSignatureFrom(first.Service.Cert); err != nil {
		t.Errorf("re-issued node certificate not signed by the service: %v", err)
	}
	third := mustLoad(t, dir, o)
	if !bytes.Equal(third.Node.Cert.Raw, second.Node.Cert.Raw) {
		t.Error("node certificate re-issued again for the same SANs")
	}
	o.IPs = nil
	fourth := mustLoad(t, dir, o)
	if len(fourth.Node.Cert.IPAddresses) != 0 || fourth.Node.ID != first.Node.ID {
		t.Errorf("after dropping the IPs: %v, id %s", fourth.Node.Cert.IPAddresses, fourth.Node.ID)
	}
}

func TestExpiredNodeCertReissued(t *testing.T) {
	dir := t.TempDir()
	first := mustLoad(t, dir, testOptions())
	o := testOptions()
	later := start.AddDate(11, 0, 0)
	o.Now = func() time.Time { return later }
	second := mustLoad(t, dir, o)
	if !second.Node.Cert.NotAfter.After(later) || second.Node.ID != first.Node.ID {
		t.Errorf("node certificate valid until %v, id %s", second.Node.Cert.NotAfter, second.Node.ID)
	}
}

// TestPartialFirstStart removes files as a crash during the first start, or
// an operator, would, and checks what LoadOrCreate makes of it.
func TestPartialFirstStart(t *testing.T) {
	for _, tc := range []struct {
		name        string
		remove      []string
		wantCreated bool
		wantErr     string // the file the error must name
	}{
		{"only service key", []string{identity.ServiceCertFile, identity.NodeKeyFile, identity.NodeCertFile, identity.LedgerSecretFile}, true, ""},
		{"service, no node", []string{identity.NodeKeyFile, identity.NodeCertFile, identity.LedgerSecretFile}, true, ""},
		{"node key, no node cert", []string{identity.NodeCertFile, identity.LedgerSecretFile}, true, ""},
		{"no ledger secret", []string{identity.LedgerSecretFile}, true, ""},
		{"no service cert", []string{identity.ServiceCertFile}, false, ""},
		{"no node cert", []string{identity.NodeCertFile}, false, ""},
		{"service key lost", []string{identity.ServiceKeyFile}, false, identity.ServiceKeyFile},
		{"node key lost", []string{identity.NodeKeyFile}, false, identity.NodeKeyFile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			first := mustLoad(t, dir, testOptions())
			for _, name := range tc.remove {
				if err := os.Remove(filepath.Join(dir, name)); err != nil {
					t.Fatal(err)
				}
			}
			ids, err := identity.LoadOrCreate(dir, testOptions())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("LoadOrCreate = %v, want an error naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadOrCreate: %v", err)
			}
			if ids.Created != tc.wantCreated {
				t.Errorf("Created = %v, want %v", ids.Created, tc.wantCreated)
			}
			if !ids.Service.Key.Equal(first.Service.Key) {
				t.Error("service key not reused")
			}
			checkService(t, ids.Service)
			checkNode(t, ids)
			if !mustLoad(t, dir, testOptions()).Node.Key.Equal(ids.Node.Key) {
				t.Error("node key changed on the next start")
			}
		})
	}
}

func TestCorruptFiles(t *testing.T) {
	other := mustLoad(t, t.TempDir(), testOptions())
	for _, tc := range []struct {
		file string
		data func(dir string) []byte
	}{
		{identity.ServiceCertFile, func(string) []byte { return []byte("garbage") }},
		{identity.ServiceKeyFile, func(string) []byte { return []byte("garbage") }},
		{identity.NodeCertFile, func(string) []byte { return []byte("garbage") }},
		{identity.NodeKeyFile, func(string) []byte { return []byte("garbage") }},
		{identity.LedgerSecretFile, func(string) []byte { return make([]byte, 31) }},
		{identity.LedgerSecretFile, func(string) []byte { return make([]byte, 33) }},
		// Valid PEM of the wrong kind.
		{identity.ServiceCertFile, func(dir string) []byte { return readFile(t, filepath.Join(dir, identity.ServiceKeyFile)) }},
		{identity.NodeKeyFile, func(dir string) []byte { return readFile(t, filepath.Join(dir, identity.NodeCertFile)) }},
		// Another service's certificate or key.
		{identity.ServiceCertFile, func(string) []byte { return other.Service.CertPEM }},
		{identity.NodeCertFile, func(string) []byte { return other.Node.CertPEM }},
		// The node's certificate issued by another service, for the right key.
		{identity.ServiceCertFile, func(dir string) []byte { return readFile(t, filepath.Join(dir, identity.NodeCertFile)) }},
		// Two certificates in one file.
		{identity.NodeCertFile, func(dir string) []byte {
			return append(readFile(t, filepath.Join(dir, identity.NodeCertFile)), other.Node.CertPEM...)
		}},
	} {
		dir := t.TempDir()
		mustLoad(t, dir, testOptions())
		path := filepath.Join(dir, tc.file)
		if err := os.WriteFile(path, tc.data(dir), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := identity.LoadOrCreate(dir, testOptions())
		if err == nil || !strings.Contains(err.Error(), tc.file) {
			t.Errorf("corrupt %s: LoadOrCreate = %v, want an error naming it", tc.file, err)
		}
		t.Logf("corrupt %s: %v", tc.file, err)
	}
}

func TestNodeCertFromAnotherService(t *testing.T) {
	dir := t.TempDir()
	mustLoad(t, dir, testOptions())
	// Replace the service identity with another one: the node certificate
	// no longer chains to it.
	other := t.TempDir()
	mustLoad(t, other, testOptions())
	for _, name := range []string{identity.ServiceCertFile, identity.ServiceKeyFile} {
		if err := os.WriteFile(filepath.Join(dir, name), readFile(t, filepath.Join(other, name)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, err := identity.LoadOrCreate(dir, testOptions())
	if err == nil || !strings.Contains(err.Error(), identity.NodeCertFile) {
		t.Fatalf("LoadOrCreate = %v, want an error naming %s", err, identity.NodeCertFile)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

func TestOptions(t *testing.T) {
	o := testOptions()
	o.Rand = failingReader{}
	if _, err := identity.LoadOrCreate(t.TempDir(), o); err == nil || !strings.Contains(err.Error(), "no entropy") {
		t.Errorf("LoadOrCreate with a failing Rand = %v", err)
	}
	o = testOptions()
	o.DNSNames = []string{""}
	if _, err := identity.LoadOrCreate(t.TempDir(), o); err == nil {
		t.Error("LoadOrCreate accepted an empty DNS name")
	}
	// The zero Options work: no SANs, the real clock and randomness.
	ids, err := identity.LoadOrCreate(t.TempDir(), identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(ids.Node.Cert.NotBefore) > 2*time.Hour {
		t.Errorf("NotBefore %v with the real clock", ids.Node.Cert.NotBefore)
	}
}

func TestTLSCertificate(t *testing.T) {
	ids := mustLoad(t, t.TempDir(), identity.Options{DNSNames: []string{"ledger.example"}})
	serverCert := ids.Node.TLSCertificate(ids.Service)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ids.Service.CertPEM)
	serverConn, clientConn := net.Pipe()
	defer serverConn.Close()
	defer clientConn.Close()
	server := tls.Server(serverConn, &tls.Config{Certificates: []tls.Certificate{serverCert}})
	done := make(chan error, 1)
	go func() { done <- server.Handshake() }()
	client := tls.Client(clientConn, &tls.Config{RootCAs: roots, ServerName: "ledger.example"})
	if err := client.Handshake(); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	chain := client.ConnectionState().PeerCertificates
	if len(chain) != 2 || !chain[0].Equal(ids.Node.Cert) || !chain[1].Equal(ids.Service.Cert) {
		t.Errorf("peer chain %v", chain)
	}
}

func TestNodeID(t *testing.T) {
	// The real service's node certificate and its node id, from the receipt
	// test vector.
	data := readFile(t, "../../testdata/acl-receipt-2022-05-13.json")
	var v struct {
		Receipt struct {
			Cert   string `json:"cert"`
			NodeID string `json:"nodeId"`
		} `json:"receipt"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(pemDER(t, []byte(v.Receipt.Cert)))
	if err != nil {
		t.Fatal(err)
	}
	id, err := identity.NodeID(cert.PublicKey)
	if err != nil || id != v.Receipt.NodeID {
		t.Errorf("NodeID = %s, %v; want %s", id, err, v.Receipt.NodeID)
	}
	if _, err := identity.NodeID(struct{}{}); err == nil {
		t.Error("NodeID of a non-key succeeded")
	}
}

var fingerprintFormat = regexp.MustCompile(`^([0-9A-F]{2}:){31}[0-9A-F]{2}$`)

func TestFingerprint(t *testing.T) {
	// `openssl x509 -noout -fingerprint -sha256` of the test vector's
	// service certificate.
	data := readFile(t, "../../testdata/acl-receipt-2022-05-13.json")
	var v struct {
		ServiceCertificate string `json:"serviceCertificate"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	const want = "B6:00:9D:B4:D2:D6:90:BF:8A:C0:9F:30:CD:FD:04:8E:8C:61:A5:9A:19:04:81:BC:51:A5:78:F9:CC:B5:0B:DB"
	if got := identity.Fingerprint(pemDER(t, []byte(v.ServiceCertificate))); got != want {
		t.Errorf("Fingerprint = %s, want %s", got, want)
	}
	certPEM, _, err := identity.NewClientIdentity("user", nil)
	if err != nil {
		t.Fatal(err)
	}
	der := pemDER(t, certPEM)
	got := identity.Fingerprint(der)
	sum := sha256.Sum256(der)
	if !fingerprintFormat.MatchString(got) || strings.ReplaceAll(got, ":", "") != strings.ToUpper(hex.EncodeToString(sum[:])) {
		t.Errorf("Fingerprint = %s for SHA-256 %x", got, sum)
	}
}

func TestNewClientIdentity(t *testing.T) {
	certPEM, keyPEM, err := identity.NewClientIdentity("ledger user", nil)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("X509KeyPair: %v", err)
	}
	c := pair.Leaf
	if c.Subject.CommonName != "ledger user" || c.IsCA || len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Errorf("client certificate %v IsCA %v ExtKeyUsage %v", c.Subject, c.IsCA, c.ExtKeyUsage)
	}
	if key, ok := pair.PrivateKey.(*ecdsa.PrivateKey); !ok || key.Curve != elliptic.P256() {
		t.Errorf("client key %T", pair.PrivateKey)
	}
	if err := c.CheckSignatureFrom(c); err == nil {
		t.Error("a client certificate must not be a CA, yet it checks as its own issuer")
	}
	if err := c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature); err != nil {
		t.Errorf("client certificate not self-signed: %v", err)
	}
	if _, _, err := identity.NewClientIdentity("", nil); err == nil {
		t.Error("NewClientIdentity accepted an empty common name")
	}
}

func TestWriteCombinedPEM(t *testing.T) {
	certPEM, keyPEM, err := identity.NewClientIdentity("member0", nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "member0.pem")
	if err := identity.WriteCombinedPEM(path, certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode())
	}
	if _, err := tls.LoadX509KeyPair(path, path); err != nil {
		t.Errorf("combined file does not load as a key pair: %v", err)
	}
	if err := identity.WriteCombinedPEM(path, keyPEM, certPEM); err == nil {
		t.Error("WriteCombinedPEM accepted key and certificate swapped")
	}
	if err := identity.WriteCombinedPEM(path, certPEM, nil); err == nil {
		t.Error("WriteCombinedPEM accepted no key")
	}
}

func TestLogging(t *testing.T) {
	var logs bytes.Buffer
	o := testOptions()
	o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	dir := t.TempDir()
	ids := mustLoad(t, dir, o)
	for _, want := range []string{"created service identity", "issued node certificate", "node_id=" + ids.Node.ID, "created ledger secret"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
	secretKey, err := x509.MarshalPKCS8PrivateKey(ids.Node.Key)
	if err != nil {
		t.Fatal(err)
	}
	scalar, err := ids.Node.Key.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"PRIVATE KEY", hex.EncodeToString(ids.LedgerSecret), base64.StdEncoding.EncodeToString(ids.LedgerSecret),
		base64.StdEncoding.EncodeToString(secretKey)[:40], hex.EncodeToString(scalar)} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("log holds a secret %q", secret)
		}
	}
	logs.Reset()
	if err := os.Chmod(filepath.Join(dir, identity.NodeKeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	mustLoad(t, dir, o)
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), identity.NodeKeyFile) {
		t.Errorf("no warning about a world-readable key:\n%s", logs.String())
	}
}
