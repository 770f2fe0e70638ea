package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/node"
)

// ledgerctl audit verifies the committed snapshot files of a data
// directory: an intact one passes; a flipped byte, or a file renamed to
// claim another seqno, fails the audit and names the file.
func TestAuditSnapshots(t *testing.T) {
	dir := t.TempDir()
	ids, err := identity.LoadOrCreate(dir, identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.Open(node.Config{Dir: dir, Identities: ids, SnapshotTxInterval: 10, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var names []string
	for len(names) == 0 {
		f, err := n.SubmitEntry("c", []byte("x"))
		if err == nil {
			var id node.TxID
			if id, err = f.Wait(ctx); err == nil {
				err = n.WaitCommitted(ctx, id)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		ents, _ := os.ReadDir(filepath.Join(dir, "snapshots"))
		for _, e := range ents {
			if _, _, ok := node.ParseSnapshotName(e.Name()); ok {
				names = append(names, e.Name())
			}
		}
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"audit", "-q", dir}, &out, &errb); code != 0 || !strings.Contains(out.String(), "snapshots verified: ") {
		t.Fatalf("audit: exit %d: %s%s", code, out.String(), errb.String())
	}
	path := filepath.Join(dir, "snapshots", names[0])
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(good)
	bad[len(bad)/3] ^= 1
	os.WriteFile(path, bad, 0o600)
	out.Reset()
	if code := run([]string{"audit", "-q", dir}, &out, &errb); code != 1 || !strings.Contains(out.String(), "FAIL: snapshot "+names[0]) {
		t.Fatalf("audit of a tampered snapshot: exit %d: %s", code, out.String())
	}
	os.Remove(path)
	s, e, _ := node.ParseSnapshotName(names[0])
	// Both numbers moved: a name whose evidence is not after its seqno
	// (e == s+1 here) is not a snapshot name at all, and is ignored.
	os.WriteFile(filepath.Join(dir, "snapshots", node.SnapshotName(s+1, e+1)), good, 0o600)
	out.Reset()
	if code := run([]string{"audit", "-q", dir}, &out, &errb); code != 1 || !strings.Contains(out.String(), "FAIL: snapshot") {
		t.Fatalf("audit of a renamed snapshot: exit %d: %s", code, out.String())
	}
}
