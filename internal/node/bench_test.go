package node_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"io/fs"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/node"
)

// BenchmarkAppend measures durable appends of 1 KiB entries through the node
// core with 64 concurrent submitters: each op is one entry, submitted and
// waited for until it is answered (sequenced, Pending); the run ends when
// the last entry is Committed, so every entry counted is durable.
func BenchmarkAppend(b *testing.B) { benchAppend(b, 1) }

// BenchmarkAppendPipelined is BenchmarkAppend with each of the 64
// submitters keeping up to 16 submissions in flight (submit, then wait for
// the oldest future), as a client library or an HTTP/2 front end does.
func BenchmarkAppendPipelined(b *testing.B) { benchAppend(b, 16) }

func benchAppend(b *testing.B, window int) {
	n := openNode(b, b.TempDir(), nil)
	defer n.Close()
	body := make([]byte, 1024)
	rand.Read(body)
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	submitAll(b, n, b.N, window, body, func(int64) string { return "bench" })
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
	st := n.Stats()
	b.ReportMetric(float64(st.Appends.Load())/float64(st.Batches.Load()), "entries/fsync")
}

// submitAll appends count entries of body from 64 submitters, each keeping
// up to window submissions in flight (answered, not yet durable), and
// returns once all are Committed. Entry i goes to collection(i).
func submitAll(tb testing.TB, n *node.Node, count, window int, body []byte, collection func(i int64) string) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var last node.TxID
	answered := func(f *node.Future) bool {
		id, err := f.Wait(context.Background())
		if err != nil {
			tb.Error(err)
			return false
		}
		mu.Lock()
		if id.Seqno > last.Seqno {
			last = id
		}
		mu.Unlock()
		return true
	}
	for range 64 {
		wg.Go(func() {
			var inflight []*node.Future
			for i := next.Add(1); i <= int64(count); i = next.Add(1) {
				f, err := n.SubmitEntry(collection(i), body)
				if err != nil {
					tb.Error(err)
					return
				}
				if inflight = append(inflight, f); len(inflight) < window {
					continue
				}
				if !answered(inflight[0]) {
					return
				}
				inflight = inflight[1:]
			}
			for _, f := range inflight {
				answered(f)
			}
		})
	}
	wg.Wait()
	if err := n.WaitCommitted(context.Background(), last); err != nil {
		tb.Fatalf("waiting for %s to commit: %v", last, err)
	}
}

// BenchmarkAppendToCommitted measures the latency from submission to
// Committed for single entries with 64 concurrent submitters.
func BenchmarkAppendToCommitted(b *testing.B) {
	n := openNode(b, b.TempDir(), nil)
	defer n.Close()
	body := make([]byte, 1024)
	var next atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	b.ResetTimer()
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				start := time.Now()
				f, err := n.SubmitEntry("bench", body)
				if err != nil {
					b.Error(err)
					return
				}
				id, err := f.Wait(context.Background())
				if err == nil {
					err = n.WaitCommitted(context.Background(), id)
				}
				if err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				lat = append(lat, time.Since(start))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	p50, p99 := percentiles(lat)
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
}

func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	if len(d) == 0 {
		return 0, 0
	}
	slices.Sort(d)
	return d[len(d)/2], d[len(d)*99/100]
}

// bigLedger returns a data directory holding about size 1 KiB entries,
// building it once per machine (under the OS temp dir) and reusing it.
func bigLedger(b *testing.B, size int) string {
	b.Helper()
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("ledgerd-bench-%d", size))
	if _, err := os.Stat(filepath.Join(dir, "done")); err == nil {
		return dir
	}
	os.RemoveAll(dir)
	n := openNode(b, dir, nil)
	submitAll(b, n, size, 16, make([]byte, 1024), func(i int64) string { return fmt.Sprintf("c%d", i%16) })
	waitCommitted(b, n, n.LastTxID())
	if err := n.Close(); err != nil {
		b.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "done"), nil, 0o600)
	return dir
}

// BenchmarkReceipt1M measures receipt construction on a ledger of a million
// entries, for uniformly random committed transactions: each op draws its
// transaction from 65,536 ids drawn uniformly (with replacement) from
// [2, committed) before the timer starts, each goroutine from its own random
// point of that list, so no cache sees more locality than random ids give.
func BenchmarkReceipt1M(b *testing.B) {
	dir := bigLedger(b, 1_000_000)
	n := openNode(b, dir, nil)
	defer n.Close()
	ids := randomCommitted(b, n, 1<<16)
	cpu0 := processCPU(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := mrand.IntN(len(ids))
		for pb.Next() {
			if _, err := n.Receipt(ids[i]); err != nil {
				b.Error(err)
				return
			}
			i = (i + 1) % len(ids)
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "receipts/s")
	b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/receipt")
}

// processCPU returns the CPU time (user and system) the process has used: on
// a shared machine, the CPU per op says more than ops per second of wall time.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// randomCommitted draws count ids uniformly from the committed transactions
// [2, committed) of n (1 is the genesis).
func randomCommitted(b *testing.B, n *node.Node, count int) []node.TxID {
	b.Helper()
	last, top := n.CommittedSeqno(), n.LastTxID().View
	ids := make([]node.TxID, count)
	for i := range ids {
		s := 2 + mrand.Uint64N(last-2)
		ids[i] = node.TxID{Seqno: s}
		for v := uint64(1); v <= top; v++ {
			if n.Status(node.TxID{View: v, Seqno: s}) == node.StatusCommitted {
				ids[i].View = v
			}
		}
		if ids[i].View == 0 {
			b.Fatalf("no committed view for seqno %d", s)
		}
	}
	return ids
}

// BenchmarkOpen1M measures opening (recovering) a data directory of a
// million entries.
func BenchmarkOpen1M(b *testing.B) {
	dir := bigLedger(b, 1_000_000)
	ids, err := identity.LoadOrCreate(dir, identity.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var heap uint64
	for range b.N {
		n, err := node.Open(node.Config{Dir: dir, Identities: ids, Logger: quietLogger()})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		heap = ms.HeapInuse
		n.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(heap)/(1<<20), "heap-MiB")
}

// The crash-open benchmark's scenario: a node on a copy of the 1M-entry
// fixture appends 1 KiB entries under load (64 submitters, 16 in flight
// each) with the default configuration, and is SIGKILLed once it has
// committed crashLag transactions past its last checkpoint (default
// SnapshotTxs is 100,000: close to the longest committed suffix a crash can
// leave unsnapshotted at this load). What it leaves is what a crash leaves: a
// checkpoint from an earlier point, a Merkle tree and signature index
// missing their unflushed tail, an open ledger chunk possibly torn, Raft's
// hard state behind the ledger.
const (
	benchCrashDirEnv = "LEDGERD_BENCH_CRASH_DIR"
	crashLag         = 90_000
)

// TestBenchCrashChild is the child of crashedLedger: it appends under load
// until it is killed, printing "S <committed> <checkpoint applied>" every
// 10 ms.
func TestBenchCrashChild(t *testing.T) {
	dir := os.Getenv(benchCrashDirEnv)
	if dir == "" {
		t.Skip("child process of BenchmarkOpenCrashed1M only")
	}
	n := openNode(t, dir, nil)
	go func() {
		for {
			b, _ := os.ReadFile(filepath.Join(dir, "state.checkpoint"))
			fmt.Printf("S %d %d\n", n.CommittedSeqno(), checkpointApplied(b))
			time.Sleep(10 * time.Millisecond) // reporting period, not synchronisation
		}
	}()
	submitAll(t, n, 1<<40, 16, make([]byte, 1024), func(i int64) string { return fmt.Sprintf("c%d", i%16) })
}

// crashedLedger returns a data directory left by a node SIGKILLed under load
// (see crashLag), building it once per machine from the 1M-entry fixture.
func crashedLedger(b *testing.B) string {
	b.Helper()
	base := bigLedger(b, 1_000_000)
	dir := filepath.Join(os.TempDir(), "ledgerd-bench-crashed-1000000")
	if _, err := os.Stat(filepath.Join(dir, "done")); err == nil {
		return dir
	}
	os.RemoveAll(dir)
	cloneDir(b, base, dir)
	os.Remove(filepath.Join(dir, "done"))
	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchCrashChild$")
	cmd.Env = append(os.Environ(), benchCrashDirEnv+"="+dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	killed := false
	for sc.Scan() {
		var committed, applied uint64
		if _, err := fmt.Sscanf(sc.Text(), "S %d %d", &committed, &applied); err != nil {
			continue
		}
		if applied > 1_000_000 && committed >= applied+crashLag {
			cmd.Process.Signal(syscall.SIGKILL)
			killed = true
			b.Logf("killed the child at committed %d, checkpoint at %d", committed, applied)
			break
		}
	}
	cmd.Wait()
	if !killed {
		b.Fatalf("child exited: %s", stderr.String())
	}
	os.WriteFile(filepath.Join(dir, "done"), nil, 0o600)
	return dir
}

// cloneDir copies a data directory: committed chunks, which no one writes
// again, as hard links; everything else as copies.
func cloneDir(b *testing.B, from, to string) {
	b.Helper()
	err := filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		dst := filepath.Join(to, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(dst, 0o700)
		case strings.HasSuffix(d.Name(), ".committed"):
			return os.Link(path, dst)
		}
		src, err := os.Open(path)
		if err != nil {
			return err
		}
		defer src.Close()
		info, err := src.Stat()
		if err != nil {
			return err
		}
		w, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, info.Mode().Perm())
		if err != nil {
			return err
		}
		if _, err := io.Copy(w, src); err != nil {
			w.Close()
			return err
		}
		return w.Close()
	})
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkOpenCrashed1M measures opening the directory a crash leaves (see
// crashedLedger), on a fresh clone each time: "crash" as the node left it;
// "no-checkpoint" and "no-tree" with state.checkpoint, or merkle.tree and
// signatures.idx, also deleted (operator damage, not a crash).
func BenchmarkOpenCrashed1M(b *testing.B) {
	crashed := crashedLedger(b)
	for _, c := range []struct {
		name   string
		remove []string
	}{
		{"crash", nil},
		{"no-checkpoint", []string{"state.checkpoint"}},
		{"no-tree", []string{"merkle.tree", "signatures.idx"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			var worst time.Duration
			for range b.N {
				b.StopTimer()
				dir := filepath.Join(b.TempDir(), "data")
				cloneDir(b, crashed, dir)
				for _, f := range c.remove {
					if err := os.Remove(filepath.Join(dir, f)); err != nil {
						b.Fatal(err)
					}
				}
				ids, err := identity.LoadOrCreate(dir, identity.Options{})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start := time.Now()
				n, err := node.Open(node.Config{Dir: dir, Identities: ids, Logger: quietLogger()})
				if err != nil {
					b.Fatal(err)
				}
				worst = max(worst, time.Since(start))
				b.StopTimer()
				n.Close()
				os.RemoveAll(dir)
			}
			b.ReportMetric(worst.Seconds(), "worst-s")
		})
	}
}
