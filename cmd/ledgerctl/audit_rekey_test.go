package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/node"
)

// rekeyedLedger writes entries, a ledger rekey, and more entries; it
// returns the data directory, the rekey's seqno and the last entry's.
func rekeyedLedger(t *testing.T) (dir string, rekey, last uint64) {
	t.Helper()
	dir = t.TempDir()
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
	write := func() {
		f, err := n.SubmitEntry("c", bytes.Repeat([]byte("x"), 200))
		if err == nil {
			id, err = f.Wait(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for range 5 {
		write()
	}
	r, err := n.Exec(ctx, node.UntilCommitted, func(*node.State) ([]ledger.MapWrites, error) { return n.RekeyWrites() })
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		write()
	}
	if err := n.WaitCommitted(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, r.Seqno, id.Seqno
}

// TestAuditRekeyedLedger: ledgerctl audit finds the secrets of rekeys with
// DIR/service.key and authenticates every entry with the secret of its
// seqno (a modified entry after the rekey is named exactly); without the
// service key it authenticates up to the rekey and says so.
func TestAuditRekeyedLedger(t *testing.T) {
	dir, rekey, last := rekeyedLedger(t)
	var out, errb bytes.Buffer
	if code := run([]string{"audit", "-q", dir}, &out, &errb); code != 0 {
		t.Fatalf("audit of a rekeyed ledger: exit %d: %s%s", code, out.String(), errb.String())
	}
	for _, want := range []string{"rekeyed 1 times", "every entry was authenticated with the ledger secret of its seqno", "state.checkpoint at"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("audit output lacks %q:\n%s", want, out.String())
		}
	}

	// Without the service key: authenticated up to the rekey.
	key := filepath.Join(dir, identity.ServiceKeyFile)
	if err := os.Rename(key, key+".away"); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := run([]string{"audit", "-q", "--derived=false", dir}, &out, &errb); code != 0 {
		t.Fatalf("audit without the service key: exit %d: %s%s", code, out.String(), errb.String())
	}
	if want := fmt.Sprintf("entries up to %d were authenticated", rekey); !strings.Contains(out.String(), want) {
		t.Fatalf("audit output lacks %q:\n%s", want, out.String())
	}
	if err := os.Rename(key+".away", key); err != nil {
		t.Fatal(err)
	}

	// A byte of the last entry's public header flipped: named exactly.
	files, _ := filepath.Glob(filepath.Join(dir, "ledger", "ledger_*"))
	f := files[len(files)-1]
	b, _ := os.ReadFile(f)
	off, lastOff := int64(8), int64(0)
	for off+8 <= int64(len(b)) {
		var sz [8]byte
		copy(sz[:6], b[off+2:off+8])
		size := int64(binary.LittleEndian.Uint64(sz[:]))
		if size == 0 || off+8+size > int64(len(b)) {
			break
		}
		if seqno := binary.LittleEndian.Uint64(b[off+8+16:]); seqno == last {
			lastOff = off
		}
		off += 8 + size
	}
	if lastOff == 0 {
		t.Fatalf("entry %d not found in %s", last, f)
	}
	b[lastOff+8+60] ^= 1
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := run([]string{"audit", "-q", dir}, &out, &errb); code != 1 {
		t.Fatalf("audit of a modified rekeyed ledger: exit %d, want 1: %s", code, out.String())
	}
	if want := fmt.Sprintf("FAIL: seqno %d: entry fails authentication", last); !strings.HasPrefix(out.String(), want) {
		t.Fatalf("audit output %q, want %q", out.String(), want)
	}
}
