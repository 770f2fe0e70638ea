package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Issue 9 item 4: ledgerctl audit checks the derived files too (--derived,
// on by default): a flipped byte in merkle.tree or signatures.idx, or an
// edited state.checkpoint, fails the audit and names the file.
func TestAuditDerivedFiles(t *testing.T) {
	corruptions := map[string]func(t *testing.T, dir string){
		"merkle.tree": func(t *testing.T, dir string) {
			// The stored hash of leaf 10 (its record starts at 2*10-popcount(10)).
			path := filepath.Join(dir, "merkle.tree")
			b, _ := os.ReadFile(path)
			b[16+32*18+5] ^= 1
			os.WriteFile(path, b, 0o600)
		},
		"signatures.idx": func(t *testing.T, dir string) {
			path := filepath.Join(dir, "signatures.idx")
			b, _ := os.ReadFile(path)
			if len(b) < 8 {
				t.Fatalf("signatures.idx has %d bytes", len(b))
			}
			b[0]++
			os.WriteFile(path, b, 0o600)
		},
		"state.checkpoint": func(t *testing.T, dir string) {
			path := filepath.Join(dir, "state.checkpoint")
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var top map[string]any
			if err := json.Unmarshal(b, &top); err != nil {
				t.Fatal(err)
			}
			cp := top
			if inner, ok := top["checkpoint"].(map[string]any); ok {
				cp = inner
			}
			cp["collections"] = map[string]any{"c": map[string]any{"latest": "2.3", "count": 1}}
			b, _ = json.Marshal(top)
			os.WriteFile(path, b, 0o600)
		},
	}
	for file, corrupt := range corruptions {
		t.Run(file, func(t *testing.T) {
			dir := smallLedger(t)
			var out, errb bytes.Buffer
			if code := run([]string{"audit", "-q", dir}, &out, &errb); code != 0 || !strings.Contains(out.String(), "derived files agree") {
				t.Fatalf("audit of an intact directory: exit %d: %s%s", code, out.String(), errb.String())
			}
			corrupt(t, dir)
			out.Reset()
			errb.Reset()
			if code := run([]string{"audit", "-q", dir}, &out, &errb); code != 1 || !strings.Contains(out.String(), "FAIL: derived file "+file) {
				t.Fatalf("audit after corrupting %s: exit %d: %s%s", file, code, out.String(), errb.String())
			}
			out.Reset()
			if code := run([]string{"audit", "-q", "--derived=false", dir}, &out, &errb); code != 0 {
				t.Fatalf("audit --derived=false: exit %d: %s", code, out.String())
			}
		})
	}
}
