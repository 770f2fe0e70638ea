package main

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/internal/testbin"
)

// --start-opening founds the service Opening: the data plane answers CCF's
// 404 FrontendNotOpen, governance reports the status, and the flag is read
// at genesis only.
func TestStartOpeningFlag(t *testing.T) {
	bin := testbin.Command(t, "", "github.com/ledgerd/ledgerd/cmd/ledgerd")
	data := filepath.Join(t.TempDir(), "data")
	p := startLedgerd(t, bin, "--data", data, "--start-opening")
	if !slices.ContainsFunc(p.stdout, func(l string) bool { return strings.HasPrefix(l, "service status: Opening") }) {
		t.Fatalf("announcement lacks the status:\n%s", strings.Join(p.stdout, "\n"))
	}
	check := func(data, base, want string) {
		t.Helper()
		c := httpsClient(t, data)
		status, _, body := call(t, c, "POST", base+"/app/transactions?api-version=2022-05-13", `{"contents":"x"}`)
		if want == "Opening" && (status != 404 || body["error"].(map[string]any)["code"] != "FrontendNotOpen") {
			t.Fatalf("POST while Opening: %d %v", status, body)
		}
		if want == "Open" && status != 200 {
			t.Fatalf("POST while Open: %d %v", status, body)
		}
		_, _, info := call(t, c, "GET", base+"/gov/service/info?api-version=2024-07-01", "")
		if info["status"] != want {
			t.Fatalf("service info %v, want status %s", info, want)
		}
	}
	check(data, "https://"+p.addr, "Opening")
	p.stop(t)
	p = startLedgerd(t, bin, "--data", data) // still Opening: only the members open it
	check(data, "https://"+p.addr, "Opening")
	p.stop(t)

	open := filepath.Join(t.TempDir(), "data")
	p = startLedgerd(t, bin, "--data", open)
	p.stop(t)
	p = startLedgerd(t, bin, "--data", open, "--start-opening") // too late: Open stays Open
	check(open, "https://"+p.addr, "Open")
	p.stop(t)
}
