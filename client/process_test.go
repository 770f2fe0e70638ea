package client_test

import (
	"bufio"
	"bytes"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/client"
	"github.com/ledgerd/ledgerd/internal/testbin"
)

// TestAgainstLedgerdProcess drives a real ledgerd process through the
// files its documentation says it writes (DATA/service.pem, DATA/admin.pem).
func TestAgainstLedgerdProcess(t *testing.T) {
	endpoint, data := startLedgerd(t)
	ctx := testContext(t)

	c, err := client.New(endpoint, client.CertificateFile(filepath.Join(data, "admin.pem")),
		&client.Options{ServiceCertFile: filepath.Join(data, "service.pem"), PollInterval: 10 * time.Millisecond,
			PollAttempts: -1}) // wait for commit as long as ctx allows, not 6 polls
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.AppendToLedger(ctx, "from the Go client", client.WaitForCommit())
	if err != nil {
		t.Fatal(err)
	}
	rec, err := c.GetTransactionReceipt(ctx, res.TransactionID)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.VerifyReceipt(rec); err != nil {
		t.Fatal(err)
	}
	e, err := c.GetLedgerEntry(ctx, "", "")
	if err != nil || e.Contents != "from the Go client" {
		t.Fatalf("latest entry %+v, %v", e, err)
	}
	id, err := c.GetLedgerIdentity(ctx, "")
	if err != nil || id.LedgerID != "proc" {
		t.Fatalf("identity %+v, %v", id, err)
	}
	// Trust on first use gets the same certificate as data/service.pem.
	tofu, err := client.New(endpoint, client.CertificateFile(filepath.Join(data, "admin.pem")), &client.Options{TrustOnFirstUse: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tofu.Close()
	if !tofu.ServiceCertificate().Equal(c.ServiceCertificate()) {
		t.Fatal("trust on first use fetched another certificate")
	}
	// A consortium member is no ledger user.
	member, err := client.New(endpoint, client.CertificateFile(filepath.Join(data, "member0.pem")),
		&client.Options{ServiceCertFile: filepath.Join(data, "service.pem")})
	if err != nil {
		t.Fatal(err)
	}
	defer member.Close()
	if _, err := member.AppendToLedger(ctx, "x"); !errors.Is(err, client.ErrForbidden) {
		t.Fatalf("member append: %v", err)
	}
}

// startLedgerd starts a real ledgerd process on a fresh data directory and
// a free loopback port, stopped (SIGTERM) when the test ends, and returns
// its endpoint and data directory.
func startLedgerd(t *testing.T, args ...string) (endpoint, data string) {
	t.Helper()
	bin := testbin.Command(t, "LEDGERD_BIN", "github.com/ledgerd/ledgerd/cmd/ledgerd")
	data = filepath.Join(t.TempDir(), "data")
	cmd := exec.Command(bin, append([]string{"--data", data, "--listen", "127.0.0.1:0", "--ledger-id", "proc"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening on https://"); ok {
				addr <- a
			}
		}
		done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("ledgerd exited with %v:\n%s", err, stderr.String())
			}
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Error("ledgerd did not stop on SIGTERM")
		}
	})
	select {
	case a := <-addr:
		return "https://" + a, data
	case err := <-done:
		t.Fatalf("ledgerd exited: %v\n%s", err, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("ledgerd did not announce its address:\n%s", stderr.String())
	}
	return "", ""
}
