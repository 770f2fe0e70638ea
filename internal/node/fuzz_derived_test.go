package node_test

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/node"
)

var derivedFiles = []string{"merkle.tree", "signatures.idx", "state.checkpoint", "raft.state"}

func copyDir(t testing.TB, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		dst := filepath.Join(to, rel)
		if info.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		src, err := os.Open(path)
		if err != nil {
			return err
		}
		defer src.Close()
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, info.Mode())
		if err != nil {
			return err
		}
		_, err = io.Copy(out, src)
		return joinClose(err, out)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func joinClose(err error, f *os.File) error {
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// FuzzDerivedFiles corrupts a stopped node's derived files at random (a
// byte changed, or the file cut short) and starts it: the node either
// refuses to start, or rebuilds what it must, and every receipt it serves
// verifies and every collection's current entry is of that collection
// (issue 9). Run: go test -fuzz FuzzDerivedFiles ./internal/node
func FuzzDerivedFiles(f *testing.F) {
	for file := range derivedFiles {
		f.Add(uint8(file), uint32(16+32*40+3), uint8(0x10), false)
		f.Add(uint8(file), uint32(8), uint8(1), false)
		f.Add(uint8(file), uint32(100), uint8(0), true)
	}
	// A stopped node's directory, built once per process, and the ids of
	// its committed entries.
	tplDir := f.TempDir()
	tplIDs := stoppedNode(f, tplDir, 60)
	f.Fuzz(func(t *testing.T, file uint8, off uint32, xor uint8, cut bool) {
		dir := t.TempDir()
		copyDir(t, tplDir, dir)
		path := filepath.Join(dir, derivedFiles[int(file)%len(derivedFiles)])
		b, err := os.ReadFile(path)
		if err != nil || len(b) == 0 {
			t.Skip("no such file in the template")
		}
		i := int(off) % len(b)
		if cut {
			b = b[:i]
		} else {
			b[i] ^= xor
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		ids, err := identity.LoadOrCreate(dir, identity.Options{})
		if err != nil {
			t.Fatal(err)
		}
		n, err := node.Open(node.Config{Dir: dir, Identities: ids, Logger: quietLogger()})
		if err != nil {
			return // refused: allowed
		}
		defer n.Close()
		for _, id := range tplIDs {
			r, err := n.Receipt(id)
			if err != nil {
				continue // not served: allowed
			}
			if err := r.Verify(ids.Service.Cert); err != nil {
				t.Fatalf("served a receipt of %s that does not verify: %v", id, err)
			}
		}
		if e, err := n.LatestEntry("c"); err == nil && e.Collection != "c" {
			t.Fatalf("current entry of c is %+v", e)
		}
	})
}
