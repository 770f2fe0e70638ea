package main

import (
	"bufio"
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/node"
	"github.com/ledgerd/ledgerd/internal/testbin"
	"github.com/ledgerd/ledgerd/receipt"
)

// TestJoinFromSnapshotProcess: a service of one ledgerd takes snapshots
// (--snapshot-tx-interval 20); a second ledgerd joins it (trusted by the
// consortium), fetches and verifies the latest committed snapshot at S and
// starts from it: its ledger directory starts at S+1 (it did not replay),
// it serves entries after S and refuses those before with a clear 404, it
// takes writes (forwarded) and reads them, and ledgerctl audit passes on
// its directory (the snapshot, then the suffix). A tampered snapshot is
// refused by the audit.
func TestJoinFromSnapshotProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two ledgerd processes")
	}
	bin := testbin.Command(t, "", "github.com/ledgerd/ledgerd/cmd/ledgerd")
	ctl := testbin.Command(t, "LEDGERCTL_BIN", "github.com/ledgerd/ledgerd/cmd/ledgerctl")
	base := t.TempDir()
	dir0 := filepath.Join(base, "a")
	p0 := startLedgerd(t, bin, "--data", dir0, "--peer-listen", freeAddr(t), "--election-timeout", "500ms", "--snapshot-tx-interval", "20")
	serviceCert := filepath.Join(dir0, "service.pem")
	admin := httpsClientWith(t, serviceCert, filepath.Join(dir0, "admin.pem"))
	base0 := "https://" + p0.addr
	var early, last string
	for i := 0; ; i++ {
		status, h, body := call(t, admin, "POST", base0+"/app/transactions?api-version=2022-05-13", `{"contents":"before `+strconv.Itoa(i)+`"}`)
		if status != 200 {
			t.Fatalf("append: %d %v", status, body)
		}
		last = h.Get("x-ms-ccf-transaction-id")
		if i == 0 {
			early = last
		}
		if i >= 100 && snapshotSeqno(t, dir0) >= 60 {
			break
		}
		if i > 5000 {
			t.Fatalf("no committed snapshot beyond 60 in %s", dir0)
		}
	}
	waitCommittedHTTP(t, admin, base0, last)

	// The joiner, Pending until trusted.
	dir1 := filepath.Join(base, "b")
	addr, stderr, stop := joinTrusted(t, bin, ctl, base0, dir0, dir1)
	base1 := "https://" + addr

	// It started from a snapshot: its ledger begins after S.
	startup, err := node.StartupSnapshot(dir1, mustCert(t, serviceCert))
	if err != nil || startup == nil {
		t.Fatalf("the joiner holds no verified startup snapshot: %v\n%s", err, stderr.String())
	}
	s := startup.Seqno
	if !strings.Contains(stderr.String(), "installed a snapshot to start from") {
		t.Fatalf("no log line of the snapshot install:\n%s", stderr.String())
	}
	waitCommittedHTTP(t, admin, base1, last)
	ents, _ := os.ReadDir(filepath.Join(dir1, "ledger"))
	var first uint64
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), "ledger_")
		if !ok {
			continue
		}
		start, _, _ := strings.Cut(strings.TrimSuffix(rest, ".committed"), "-")
		if v, err := strconv.ParseUint(start, 10, 64); err == nil && (first == 0 || v < first) {
			first = v
		}
	}
	if first != s+1 {
		t.Fatalf("the joiner's ledger starts at %d, want %d: it did not start from the snapshot at %d", first, s+1, s)
	}
	// An entry written after the snapshot is replicated and served.
	status, h, body := call(t, admin, "POST", base0+"/app/transactions?api-version=2022-05-13", `{"contents":"after the snapshot"}`)
	if status != 200 {
		t.Fatalf("append: %d %v", status, body)
	}
	after := h.Get("x-ms-ccf-transaction-id")
	waitCommittedHTTP(t, admin, base1, after)
	readEntry(t, admin, base1, after, "after the snapshot")
	status, _, body = call(t, admin, "GET", base1+"/app/transactions/"+early+"?api-version=2022-05-13", "")
	if msg, _ := body["error"].(map[string]any)["message"].(string); status != 404 || !strings.Contains(msg, "snapshot") {
		t.Fatalf("GET %s (before the snapshot at %d) on the joiner: %d %v", early, s, status, body)
	}
	// Writes through the joiner (forwarded) are read back there.
	status, h, body = call(t, admin, "POST", base1+"/app/transactions?api-version=2022-05-13", `{"contents":"through the joiner"}`)
	if status != 200 {
		t.Fatalf("append on the joiner: %d %v", status, body)
	}
	txid := h.Get("x-ms-ccf-transaction-id")
	waitCommittedHTTP(t, admin, base1, txid)
	readEntry(t, admin, base1, txid, "through the joiner")

	// A joiner with --fetch-history also holds the ledger before its
	// snapshot, verified against it: it serves the early entry too.
	dir2 := filepath.Join(base, "c")
	addr2, stderr2, stop2 := joinTrusted(t, bin, ctl, base0, dir0, dir2, "--fetch-history")
	if !strings.Contains(stderr2.String(), "fetched the ledger before the snapshot") {
		t.Fatalf("no history fetched:\n%s", stderr2.String())
	}
	waitCommittedHTTP(t, admin, "https://"+addr2, txid)
	readEntry(t, admin, "https://"+addr2, early, "before 0")
	readEntry(t, admin, "https://"+addr2, txid, "through the joiner")
	stop2()
	if b, err := exec.Command(ctl, "audit", "-q", dir2).CombinedOutput(); err != nil || !strings.Contains(string(b), "holds the ledger before it") {
		t.Fatalf("audit of the --fetch-history joiner's directory: %v\n%s", err, b)
	}

	stop()
	if b, err := exec.Command(ctl, "audit", "-q", dir1).CombinedOutput(); err != nil || !strings.Contains(string(b), "started from a snapshot") {
		t.Fatalf("audit of the joiner's directory: %v\n%s", err, b)
	}
	// A tampered startup snapshot is refused.
	path := filepath.Join(dir1, "startup.snapshot")
	b, _ := os.ReadFile(path)
	b[len(b)/2] ^= 1
	os.WriteFile(path, b, 0o600)
	if b, err := exec.Command(ctl, "audit", "-q", dir1).CombinedOutput(); err == nil || !strings.Contains(string(b), "FAIL: startup.snapshot") {
		t.Fatalf("audit with a tampered startup snapshot: %v\n%s", err, b)
	}
}

func mustCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := receipt.ParseCertificatePEM(b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// joinTrusted starts a ledgerd that joins the service at base0 (founded in
// dir0) in dir, trusts it as the founder's member, and returns its client
// address, its stderr and a function that stops it.
func joinTrusted(t *testing.T, bin, ctl, base0, dir0, dir string, extra ...string) (string, *stderrWriter, func()) {
	t.Helper()
	return joinTrustedAs(t, bin, ctl, base0, filepath.Join(dir0, "service.pem"), filepath.Join(dir0, "member0.pem"), dir, extra...)
}

// joinTrustedAs is joinTrusted with the service certificate and the
// credentials of the member that trusts the joiner named.
func joinTrustedAs(t *testing.T, bin, ctl, base0, serviceCert, member, dir string, extra ...string) (string, *stderrWriter, func()) {
	t.Helper()
	args := append([]string{"--data", dir, "--listen", "127.0.0.1:0", "--peer-listen", freeAddr(t), "--log-level", "debug",
		"--election-timeout", "500ms", "--snapshot-tx-interval", "20", "--join", base0, "--service-cert", serviceCert}, extra...)
	cmd := exec.Command(bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &stderrWriter{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	listening, pending := make(chan string, 1), make(chan string, 1)
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if a, ok := strings.CutPrefix(line, "listening on https://"); ok {
				listening <- a
			}
			if rest, ok := strings.CutPrefix(line, "node "); ok && strings.Contains(rest, " is Pending") {
				pending <- strings.Fields(rest)[0]
			}
		}
		cmd.Wait()
	}()
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}
	t.Cleanup(stop)
	var id string
	select {
	case id = <-pending:
	case <-exited:
		t.Fatalf("the joiner exited:\n%s", stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("the joiner never said it is Pending:\n%s", stderr.String())
	}
	conn := []string{"--endpoint", base0, "--service-cert", serviceCert}
	if b, err := exec.Command(ctl, append([]string{"nodes", "trust", id, "--cert", member}, conn...)...).CombinedOutput(); err != nil ||
		!regexp.MustCompile(`^proposal [0-9a-f]{64} Accepted\n`).Match(b) {
		t.Fatalf("nodes trust %s: %v\n%s", id, err, b)
	}
	select {
	case addr := <-listening:
		return addr, stderr, stop
	case <-exited:
		t.Fatalf("the trusted joiner exited:\n%s", stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("the trusted joiner does not serve:\n%s", stderr.String())
	}
	return "", nil, nil
}

// snapshotSeqno is the seqno of the latest committed snapshot in dir.
func snapshotSeqno(t *testing.T, dir string) uint64 {
	ents, _ := os.ReadDir(filepath.Join(dir, "snapshots"))
	var last uint64
	for _, e := range ents {
		if s, _, ok := node.ParseSnapshotName(e.Name()); ok && s > last {
			last = s
		}
	}
	return last
}
