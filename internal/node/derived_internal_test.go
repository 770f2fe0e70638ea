package node

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/identity"
)

// CheckDerived replays the ledger to compare the checkpoint's contents: a
// checkpoint whose MAC verifies (sealed by a holder of the ledger secret)
// but whose contents the ledger does not produce fails the audit.
func TestCheckDerivedComparesCheckpointWithReplay(t *testing.T) {
	dir := t.TempDir()
	ids, err := identity.LoadOrCreate(dir, identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := Open(Config{Dir: dir, Identities: ids, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var last TxID
	for _, c := range []string{"t00", "t01", "t01"} {
		f, err := n.SubmitEntry(c, []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		if last, err = f.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.WaitCommitted(ctx, last); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := CheckDerived(dir, ids.LedgerSecret, false); err != nil {
		t.Fatalf("intact directory: %v", err)
	}

	path := filepath.Join(dir, "state.checkpoint")
	b, _ := os.ReadFile(path)
	cp, err := openCheckpoint(ids.LedgerSecret, b)
	if err != nil {
		t.Fatal(err)
	}
	cp.Collections["t00"] = cp.Collections["t01"]
	resealed, err := sealCheckpoint(ids.LedgerSecret, cp)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, resealed, 0o600)
	_, err = CheckDerived(dir, ids.LedgerSecret, false)
	var df *DerivedFailure
	if !errors.As(err, &df) || df.File != "state.checkpoint" || !strings.Contains(df.Reason, `collection "t00"`) {
		t.Fatalf("CheckDerived of a resealed, edited checkpoint: %v", err)
	}
	// Sealed with another secret: the MAC fails.
	other := make([]byte, 32)
	foreign, _ := sealCheckpoint(other, cp)
	os.WriteFile(path, foreign, 0o600)
	if _, err := CheckDerived(dir, ids.LedgerSecret, false); !errors.As(err, &df) || !strings.Contains(df.Reason, "MAC") {
		t.Fatalf("CheckDerived of a checkpoint sealed with another secret: %v", err)
	}
}
