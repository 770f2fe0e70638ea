package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/client"
)

// The client commands are tested against real ledgerd processes, built
// from ../ledgerd (or $LEDGERD_BIN), on free loopback ports.

// testLedger is a running ledgerd.
type testLedger struct {
	cmd         *exec.Cmd
	exited      chan struct{} // closed once the process has exited, with exitErr
	exitErr     error
	endpoint    string
	data        string
	adminPEM    string // DATA/admin.pem
	servicePEM  string // DATA/service.pem
	stderr      *bytes.Buffer
	ledgerID    string
	serviceCert *x509.Certificate
}

// startLedger starts ledgerd on a free loopback port with a fresh data
// directory, and stops it (SIGTERM) when the test ends.
func startLedger(t *testing.T, bin string, args ...string) *testLedger {
	t.Helper()
	return startLedgerIn(t, bin, filepath.Join(t.TempDir(), "data"), args...)
}

// startLedgerIn starts ledgerd on the data directory data, new or not.
func startLedgerIn(t *testing.T, bin, data string, args ...string) *testLedger {
	t.Helper()
	l := &testLedger{data: data, stderr: &bytes.Buffer{}, ledgerID: "ctltest", exited: make(chan struct{})}
	l.adminPEM, l.servicePEM = filepath.Join(l.data, "admin.pem"), filepath.Join(l.data, "service.pem")
	cmd := exec.Command(bin, append([]string{"--data", l.data, "--listen", "127.0.0.1:0", "--ledger-id", l.ledgerID,
		"--log-level", "warn"}, args...)...)
	cmd.Stderr = l.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	l.cmd = cmd
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening on https://"); ok {
				addr <- a
			}
		}
		l.exitErr = cmd.Wait()
		close(l.exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-l.exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-l.exited
			t.Error("ledgerd did not stop on SIGTERM")
		}
	})
	select {
	case a := <-addr:
		l.endpoint = "https://" + a
	case <-l.exited:
		t.Fatalf("ledgerd exited: %v\n%s", l.exitErr, l.stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("ledgerd did not announce its address:\n%s", l.stderr)
	}
	pemBytes, err := os.ReadFile(l.servicePEM)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pemBytes)
	if l.serviceCert, err = x509.ParseCertificate(block.Bytes); err != nil {
		t.Fatal(err)
	}
	return l
}

// kill kills ledgerd with SIGKILL, as a crash would, and waits for it.
func (l *testLedger) kill() {
	l.cmd.Process.Signal(syscall.SIGKILL)
	<-l.exited
}

// flags returns the connection flags of the administrator.
func (l *testLedger) flags() []string {
	return []string{"--endpoint", l.endpoint, "--cert", l.adminPEM, "--service-cert", l.servicePEM}
}

// env returns the environment variables of the administrator.
func (l *testLedger) env() []string {
	return []string{envEndpoint + "=" + l.endpoint, envCert + "=" + l.adminPEM, envServiceCert + "=" + l.servicePEM}
}

// isolateEnv clears the variables ledgerctl reads, so that the caller's
// environment cannot change the tests.
func isolateEnv(t *testing.T) {
	for _, v := range []string{envEndpoint, envCert, envServiceCert, envTokenFile, envCollection, envAPIVersion, envIdentityEndpoint} {
		t.Setenv(v, "")
	}
}

// result is the outcome of one ledgerctl command.
type result struct {
	code           int
	stdout, stderr string
}

// ctl runs ledgerctl in-process.
func ctl(args ...string) result {
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

// ok fails the test unless the command succeeded, and returns its output.
func (r result) ok(t *testing.T) string {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// fails checks the command exited with code, saying want on stderr.
func (r result) fails(t *testing.T, code int, want ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr does not say %q:\n%s", w, r.stderr)
		}
	}
}

// decode parses the command's JSON output into v.
func (r result) decode(t *testing.T, v any) {
	t.Helper()
	r.ok(t)
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("output is not one JSON value: %v\n%s", err, r.stdout)
	}
}

// newUserCert writes a fresh self-signed client certificate and its key to
// DIR/name.pem, and returns the path and the user id.
func newUserCert(t *testing.T, name string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name+".pem")
	data := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, client.CertificateUserID(der)
}
