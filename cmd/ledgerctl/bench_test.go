package main

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/testbin"
)

// TestBench builds ledgerd and runs the bench command in-process against a
// throwaway one (--start) for about a second per phase.
func TestBench(t *testing.T) {
	bin := testbin.Command(t, "LEDGERD_BIN", "github.com/ledgerd/ledgerd/cmd/ledgerd")
	var stdout, stderr bytes.Buffer
	code := run([]string{"bench", "--start", "--ledgerd", bin, "--connections", "4",
		"--warmup", "200ms", "--duration", "1s", "--size", "1024", "--json"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("bench exited %d\nstdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
	}
	var rep benchReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, &stdout)
	}
	t.Logf("appends %.0f/s p99 %.2fms, committed p99 %.2fms, status %.0f/s, ratio %.3f",
		rep.Appends.PerSecond, rep.Appends.Latency.P99, rep.Committed.Latency.P99, rep.Cheap.PerSecond, rep.Ratio)
	switch {
	case rep.Appends.Requests == 0 || rep.Appends.PerSecond <= 0:
		t.Errorf("no appends measured: %+v", rep.Appends)
	case rep.Appends.Latency.P50 <= 0 || rep.Appends.Latency.P99 < rep.Appends.Latency.P50:
		t.Errorf("bad append latencies: %+v", rep.Appends.Latency)
	}
	if n := rep.failures(); n != 0 {
		t.Errorf("%d failures: appends %v, cheap %v, polls %v, unresolved %d, invalid %d", n,
			rep.Appends.ErrorKinds, rep.Cheap.ErrorKinds, rep.Committed.PollErrorKinds, rep.Committed.Unresolved, rep.Committed.Invalid)
	}
	if rep.Committed.Measured != rep.Appends.Requests || rep.Committed.Latency.P50 <= 0 {
		t.Errorf("committed latencies: %d measured of %d appends, %+v", rep.Committed.Measured, rep.Appends.Requests, rep.Committed.Latency)
	}
	if rep.Committed.Latency.P50 < rep.Appends.Latency.P50 {
		t.Errorf("append-to-Committed p50 %.3fms below the append's own p50 %.3fms", rep.Committed.Latency.P50, rep.Appends.Latency.P50)
	}
	if rep.Cheap.Requests == 0 || rep.Ratio <= 0 {
		t.Errorf("cheap phase %d requests, ratio %v", rep.Cheap.Requests, rep.Ratio)
	}
	if rep.TLSConnections != 4 || rep.Reconnects != 0 {
		t.Errorf("%d TLS connections, %d reconnects; want exactly 4, reused", rep.TLSConnections, rep.Reconnects)
	}
}

func TestBenchUsage(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "--start", "--ledgerd", "x", "--endpoint", "https://example.com"},
		{"bench", "--ledgerd", "x"},
		{"bench", "--connections", "0"},
		{"bench", "--duration", "0s"},
		{"bench", "extra"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 2 {
			t.Errorf("%q: exit %d, want 2\n%s", args, code, &stderr)
		}
	}
	var stdout, stderr bytes.Buffer
	run([]string{"bench", "-h"}, &stdout, &stderr)
	if !strings.Contains(stderr.String(), "usage: ledgerctl bench") {
		t.Errorf("bench -h:\n%s", &stderr)
	}
}

func TestParseBenchTxID(t *testing.T) {
	for s, want := range map[string]benchTxID{"2.15": {2, 15}, "1.1": {1, 1}} {
		if got, ok := parseBenchTxID(s); !ok || got != want {
			t.Errorf("%q: %v %v", s, got, ok)
		}
	}
	for _, s := range []string{"", "2", "2.", ".2", "0.5", "2.0", "a.b", "2.-1"} {
		if _, ok := parseBenchTxID(s); ok {
			t.Errorf("%q parsed", s)
		}
	}
}

func TestCommitTracker(t *testing.T) {
	var tr commitTracker
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	tr.add(benchTxID{2, 10}, at(0), at(1))
	tr.add(benchTxID{2, 12}, at(1), at(2))
	tr.add(benchTxID{2, 11}, at(2), at(3))
	tr.observe(benchTxID{2, 11}, at(10))
	if got := tr.outstanding(); got != 1 {
		t.Fatalf("outstanding %d, want 1", got)
	}
	if want := []time.Duration{10 * time.Millisecond, 8 * time.Millisecond}; !slices.Equal(tr.lat, want) {
		t.Fatalf("latencies %v, want %v", tr.lat, want)
	}
	tr.observe(benchTxID{2, 9}, at(11)) // an older answer changes nothing
	// An append answered after its commit was observed resolves at once.
	tr.add(benchTxID{2, 5}, at(12), at(14))
	if tr.lat[len(tr.lat)-1] != 2*time.Millisecond {
		t.Fatalf("late append: %v", tr.lat)
	}
	// An append of an older view than the committed id is uncertain until
	// its own status is known.
	tr.add(benchTxID{2, 13}, at(15), at(16))
	tr.observe(benchTxID{3, 20}, at(20))
	u := tr.takeUncertain()
	if len(u) != 2 || tr.outstanding() != 0 {
		t.Fatalf("uncertain %v, outstanding %d", u, tr.outstanding())
	}
	tr.settle(u[0], "Invalid", at(21))
	tr.settle(u[1], "Pending", at(21))
	if tr.invalid != 1 || tr.outstanding() != 1 {
		t.Fatalf("invalid %d, outstanding %d", tr.invalid, tr.outstanding())
	}
}

func TestSummarize(t *testing.T) {
	var d []time.Duration
	for i := 1000; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	s := summarize(d)
	if s.P50 != 500 || s.P99 != 990 || s.P999 != 999 || s.Max != 1000 || s.Mean != 500.5 {
		t.Errorf("%+v", s)
	}
	if (summarize(nil) != latencySummary{}) {
		t.Error("empty summary")
	}
}
