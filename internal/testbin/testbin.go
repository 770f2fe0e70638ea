// Package testbin builds this module's commands for tests that run them as
// real processes (never a mock of the server).
package testbin

import (
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"testing"
)

// Command returns the binary of the module's command pkg (an import path,
// e.g. "github.com/ledgerd/ledgerd/cmd/ledgerd"): $envVar if envVar is set
// and non-empty in the environment (test.sh builds the binaries once), else
// one built into the test's temporary directory. Under -short the test is
// skipped, since it builds and runs processes.
func Command(t testing.TB, envVar, pkg string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs " + path.Base(pkg))
	}
	if envVar != "" {
		if bin := os.Getenv(envVar); bin != "" {
			return bin
		}
	}
	bin := filepath.Join(t.TempDir(), path.Base(pkg))
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}
