package main

import (
	"bytes"
	"context"
	"encoding/binary"
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

func smallLedger(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	ids, err := identity.LoadOrCreate(dir, identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.Open(node.Config{Dir: dir, Identities: ids, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var id node.TxID
	for range 20 {
		f, err := n.SubmitEntry("c", bytes.Repeat([]byte("x"), 200))
		if err == nil {
			id, err = f.Wait(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := n.WaitCommitted(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestAuditCommand(t *testing.T) {
	dir := smallLedger(t)
	var out, errb bytes.Buffer
	if code := run([]string{"audit", dir}, &out, &errb); code != 0 {
		t.Fatalf("audit of an intact ledger: exit %d: %s%s", code, out.String(), errb.String())
	}
	if !strings.HasPrefix(out.String(), "OK: ") || !strings.Contains(out.String(), "authenticated with the ledger secret") ||
		!strings.Contains(out.String(), "application claims not recomputed (ask with --claims)") {
		t.Fatalf("summary %q", out.String())
	}
	out.Reset()
	if code := run([]string{"audit", "--claims", dir}, &out, &errb); code != 0 {
		t.Fatalf("audit --claims of an intact ledger: exit %d: %s%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "application claims: 20 ledger entries carry the LedgerEntryV1 claims digest") {
		t.Fatalf("summary with --claims %q", out.String())
	}
	// The ledger/ folder works too.
	out.Reset()
	if code := run([]string{"audit", filepath.Join(dir, "ledger")}, &out, &errb); code != 0 {
		t.Fatalf("audit of DIR/ledger: exit %d: %s", code, errb.String())
	}

	// Flip a byte in the ciphertext of the last entry of the first chunk.
	files, _ := filepath.Glob(filepath.Join(dir, "ledger", "ledger_*"))
	b, _ := os.ReadFile(files[0])
	off := int64(8)
	var lastOff int64
	for off+8 <= int64(len(b)) && (binary.LittleEndian.Uint64(b) == 0 || off < int64(binary.LittleEndian.Uint64(b))) {
		var sz [8]byte
		copy(sz[:6], b[off+2:off+8])
		size := int64(binary.LittleEndian.Uint64(sz[:]))
		if size == 0 {
			break
		}
		if size > 150 { // a user entry
			lastOff = off
		}
		off += 8 + size
	}
	b[lastOff+8+60] ^= 1
	os.WriteFile(files[0], b, 0o600)
	out.Reset()
	errb.Reset()
	if code := run([]string{"audit", dir}, &out, &errb); code != 1 {
		t.Fatalf("audit of a modified ledger: exit %d, want 1: %s", code, out.String())
	}
	if !strings.HasPrefix(out.String(), "FAIL: seqno ") {
		t.Fatalf("audit output %q, want FAIL: seqno N", out.String())
	}
	if code := run([]string{"audit"}, &out, &errb); code != 2 {
		t.Fatalf("audit without a directory: exit %d, want 2", code)
	}
}
