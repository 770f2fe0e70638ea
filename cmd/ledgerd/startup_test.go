package main

import (
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/testbin"
)

// The start-up refusals of issue 9 items 1 and 3, as an operator meets
// them: ledgerd exits 1 at once with a message that says what to restore;
// --unsafe-accept-lost-tail is the explicit override of a lost tail.
func TestStartRefusals(t *testing.T) {
	bin := testbin.Command(t, "", "github.com/ledgerd/ledgerd/cmd/ledgerd")
	data := filepath.Join(t.TempDir(), "data")
	p := startLedgerd(t, bin, "--data", data, "--chunk-size", "1500")
	c := httpsClient(t, data)
	base := "https://" + p.addr
	for i := range 30 {
		status, h, body := call(t, c, "POST", base+"/app/transactions?api-version=2022-05-13", fmt.Sprintf(`{"contents":"entry %d %s"}`, i, strings.Repeat("x", 100)))
		txid := h.Get("x-ms-ccf-transaction-id")
		if status != 200 {
			t.Fatalf("POST: %d %v", status, body)
		}
		if i%10 != 9 {
			continue
		}
		waitCommittedHTTP(t, c, base, txid)
	}
	p.stop(t)

	refused := func(want ...string) {
		t.Helper()
		cmd := exec.Command(bin, "--data", data, "--listen", "127.0.0.1:0")
		done := make(chan struct{})
		var out []byte
		var err error
		go func() { out, err = cmd.CombinedOutput(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Fatalf("ledgerd did not refuse to start:\n%s", out)
		}
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Fatalf("ledgerd: %v, want exit 1:\n%s", err, out)
		}
		for _, w := range want {
			if !strings.Contains(string(out), w) {
				t.Fatalf("ledgerd's refusal lacks %q:\n%s", w, out)
			}
		}
	}

	// A wrong ledger secret.
	secretPath := filepath.Join(data, "ledger.secret")
	secret, err := os.ReadFile(secretPath)
	if err != nil {
		t.Fatal(err)
	}
	wrong := make([]byte, len(secret))
	rand.Read(wrong)
	os.WriteFile(secretPath, wrong, 0o600)
	refused("ledger.secret", "does not authenticate")
	os.WriteFile(secretPath, secret, 0o600)

	// The last chunk deleted.
	files, _ := filepath.Glob(filepath.Join(data, "ledger", "ledger_*"))
	if len(files) < 2 {
		t.Fatalf("chunk files %v", files)
	}
	start := func(f string) int {
		s := strings.TrimPrefix(filepath.Base(f), "ledger_")
		if i := strings.IndexAny(s, "-."); i >= 0 {
			s = s[:i]
		}
		n, _ := strconv.Atoi(s)
		return n
	}
	sort.Slice(files, func(i, j int) bool { return start(files[i]) < start(files[j]) })
	if err := os.Remove(files[len(files)-1]); err != nil {
		t.Fatal(err)
	}
	refused("are missing from the ledger", "restore the ledger files", "--unsafe-accept-lost-tail")
	p = startLedgerd(t, bin, "--data", data, "--unsafe-accept-lost-tail")
	p.stop(t)
}
