package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/internal/testbin"
)

// TestReadmeGoExample runs the README's Go SDK example,
// testdata/readme_example.go.txt, with `go run` against a real ledgerd,
// then checks with ledgerctl that its entry is committed with the contents
// it wrote.
func TestReadmeGoExample(t *testing.T) {
	isolateEnv(t)
	l := startLedger(t, testbin.Command(t, "LEDGERD_BIN", "github.com/ledgerd/ledgerd/cmd/ledgerd"))
	src, err := os.ReadFile(filepath.Join("testdata", "readme_example.go.txt"))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```go\n"+string(src)) {
		t.Fatal("README.md's Go example differs from testdata/readme_example.go.txt: keep them the same")
	}
	main := filepath.Join(t.TempDir(), "main.go")
	if err := os.WriteFile(main, src, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "run", main) // from this directory: in the module
	cmd.Env = append(os.Environ(), l.env()...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go run: %v\n%s", err, out)
	}
	txID, ok := strings.CutPrefix(strings.TrimSpace(string(out)), "receipt verified for ")
	if !ok {
		t.Fatalf("the example printed %q", out)
	}
	if got := ctl(append([]string{"get", "--json", txID}, l.flags()...)...).ok(t); !strings.Contains(got, `"contents":"Hello world!"`) {
		t.Errorf("the example's entry: %s", got)
	}
	if got := ctl(append([]string{"receipt", "--verify", txID}, l.flags()...)...).ok(t); !strings.Contains(got, "OK:") {
		t.Errorf("receipt --verify of the example's entry:\n%s", got)
	}
}
