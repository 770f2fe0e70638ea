package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/testbin"
)

// process is a running ledgerd.
type process struct {
	cmd    *exec.Cmd
	addr   string
	stdout []string
	stderr *bytes.Buffer
	done   chan error
}

// startLedgerd starts the binary on a free port and waits until it
// announces its address, the last line of its announcement.
func startLedgerd(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	return startWrapped(t, nil, bin, args...)
}

// startWrapped is startLedgerd with the command line prefixed by wrap (a
// command that execs the rest, e.g. one that lowers a limit first).
func startWrapped(t *testing.T, wrap []string, bin string, args ...string) *process {
	t.Helper()
	argv := append(append(wrap, bin, "--listen", "127.0.0.1:0", "--log-level", "debug"), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	p := &process{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-p.done
		}
	})
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		p.done <- cmd.Wait()
	}()
	timeout := time.After(30 * time.Second)
	for p.addr == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("ledgerd exited before listening:\n%s", p.stderr)
			}
			p.stdout = append(p.stdout, line)
			if a, found := strings.CutPrefix(line, "listening on https://"); found {
				p.addr = a
			}
		case <-timeout:
			t.Fatalf("ledgerd did not announce its address:\n%s", p.stderr)
		}
	}
	go func() {
		for range lines { // drain, so that ledgerd never blocks on stdout
		}
	}()
	return p
}

// stop sends SIGTERM and checks a clean exit.
func (p *process) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("ledgerd exited with %v:\n%s", err, p.stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("ledgerd did not stop on SIGTERM:\n%s", p.stderr)
	}
}

// httpsClient pins the service certificate and presents the combined
// certificate-and-key file, as the Python client does.
func httpsClient(t *testing.T, data string) *http.Client {
	t.Helper()
	servicePEM, err := os.ReadFile(filepath.Join(data, "service.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(servicePEM)
	adminPEM := filepath.Join(data, "admin.pem")
	cert, err := tls.LoadX509KeyPair(adminPEM, adminPEM)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}}
}

func call(t *testing.T, c *http.Client, method, url, body string) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var m map[string]any
	json.Unmarshal(data, &m)
	return resp.StatusCode, resp.Header, m
}

func TestSmoke(t *testing.T) {
	bin := testbin.Command(t, "", "github.com/ledgerd/ledgerd/cmd/ledgerd") // its own source, not $LEDGERD_BIN
	data := filepath.Join(t.TempDir(), "data")
	p := startLedgerd(t, bin, "--data", data, "--ledger-id", "smoke")
	out := strings.Join(p.stdout, "\n")
	for _, want := range []string{"ledger id: smoke", filepath.Join(data, "service.pem"), "administrator credentials (certificate and key): " + filepath.Join(data, "admin.pem")} {
		if !strings.Contains(out, want) {
			t.Errorf("start-up output lacks %q:\n%s", want, out)
		}
	}
	for _, f := range []string{"admin.pem", "member0.pem"} {
		fi, err := os.Stat(filepath.Join(data, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, fi.Mode(), err)
		}
	}
	adminBefore, _ := os.ReadFile(filepath.Join(data, "admin.pem"))

	c := httpsClient(t, data)
	base := "https://" + p.addr
	if status, _, body := call(t, c, "GET", base+"/healthz", ""); status != 200 || body["status"] != "ok" {
		t.Fatalf("healthz %d %v", status, body)
	}
	status, h, body := call(t, c, "POST", base+"/app/transactions?api-version=2022-05-13", `{"contents":"survives a restart"}`)
	txid := h.Get("x-ms-ccf-transaction-id")
	if status != 200 || txid == "" || body["collectionId"] != "subledger:0" {
		t.Fatalf("POST: %d %v %q", status, body, txid)
	}
	waitCommittedHTTP(t, c, base, txid)
	if py := pythonWithSDK(); py != "" {
		out, err := exec.Command(py, "testdata/python_client.py", base, data).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "OK") {
			t.Errorf("the Python SDK against ledgerd: %v\n%s", err, out)
		}
	} else {
		t.Log("azure-confidentialledger for Python not installed; skipping the Python client check")
	}

	// A second ledgerd on the same directory is refused.
	second := exec.Command(bin, "--data", data, "--listen", "127.0.0.1:0")
	if out, err := second.CombinedOutput(); err == nil || !strings.Contains(string(out), "another ledgerd") {
		t.Errorf("second ledgerd on the same directory: %v\n%s", err, out)
	}
	p.stop(t)

	p = startLedgerd(t, bin, "--data", data, "--ledger-id", "smoke")
	if out := strings.Join(p.stdout, "\n"); strings.Contains(out, "credentials") {
		t.Errorf("restart announced new credentials:\n%s", out)
	}
	if after, _ := os.ReadFile(filepath.Join(data, "admin.pem")); !bytes.Equal(after, adminBefore) {
		t.Fatal("admin.pem changed on restart")
	}
	base = "https://" + p.addr
	status, _, body = call(t, c, "GET", base+"/app/transactions/"+txid+"?api-version=2022-05-13", "")
	entry, _ := body["entry"].(map[string]any)
	if status != 200 || body["state"] != "Ready" || entry["contents"] != "survives a restart" {
		t.Fatalf("after restart: %d %v", status, body)
	}
	p.stop(t)
}

// pythonWithSDK returns a Python interpreter with azure-confidentialledger,
// or "".
func pythonWithSDK() string {
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(py, "-c", "import azure.confidentialledger").Run() == nil {
			return py
		}
	}
	return ""
}

func TestVersionFlag(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(t.Context(), []string{"--version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "ledgerd ") {
		t.Fatalf("--version: %d %q %q", code, out.String(), errb.String())
	}
	if code := run(t.Context(), []string{"--bogus"}, &out, &errb); code != 2 {
		t.Fatalf("unknown flag: exit %d", code)
	}
}
