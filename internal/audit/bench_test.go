package audit_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/audit"
	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/node"
)

// benchLedger builds (once per machine, under the OS temp dir) a data
// directory of size 1 KiB entries.
func benchLedger(b *testing.B, size int) string {
	b.Helper()
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("ledgerd-audit-bench-%d", size))
	if _, err := os.Stat(filepath.Join(dir, "done")); err == nil {
		return dir
	}
	os.RemoveAll(dir)
	ids, err := identity.LoadOrCreate(dir, identity.Options{})
	if err != nil {
		b.Fatal(err)
	}
	n, err := node.Open(node.Config{Dir: dir, Identities: ids, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	body := make([]byte, 1024)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for next.Add(1) <= int64(size) {
				f, err := n.SubmitEntry("bench", body)
				if err == nil {
					_, err = f.Wait(context.Background())
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := n.WaitCommitted(ctx, n.LastTxID()); err != nil {
		b.Fatal(err)
	}
	if err := n.Close(); err != nil {
		b.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "done"), nil, 0o600)
	return dir
}

// BenchmarkAudit measures a full audit (parse, authenticate, hash every
// entry, verify every signature) against the raw SHA-256 throughput of the
// same machine, measured in the same run; it reports both and their ratio.
func BenchmarkAudit(b *testing.B) {
	dir := benchLedger(b, 200_000)
	ids, err := identity.LoadOrCreate(dir, identity.Options{})
	if err != nil {
		b.Fatal(err)
	}
	var bytes int64
	var auditTime time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		rep, err := audit.Dir(filepath.Join(dir, "ledger"), audit.Options{ServiceCert: ids.Service.Cert, LedgerSecret: ids.LedgerSecret})
		if err != nil {
			b.Fatal(err)
		}
		auditTime += time.Since(start)
		bytes += rep.Bytes
	}
	b.StopTimer()
	auditRate := float64(bytes) / auditTime.Seconds()
	raw := rawSHA256(1 << 30)
	b.ReportMetric(auditRate/1e6, "audit-MB/s")
	b.ReportMetric(raw/1e6, "sha256-MB/s")
	b.ReportMetric(auditRate/raw, "ratio")
}

// rawSHA256 is single-core SHA-256 throughput over 1 KiB inputs, the
// size of the entries audited.
func rawSHA256(total int) float64 {
	buf := make([]byte, 1024)
	start := time.Now()
	for done := 0; done < total; done += len(buf) {
		sha256.Sum256(buf)
	}
	return float64(total) / time.Since(start).Seconds()
}
