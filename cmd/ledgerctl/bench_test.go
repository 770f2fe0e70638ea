package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/cmd/ledgerctl/internal/loadgen"
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
	var rep loadgen.Report
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
	if n := rep.Failures(); n != 0 {
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
		{"bench", "--gov-every", "100ms"},
		{"bench", "--member-cert", "m.pem"},
		{"bench", "--gov-every", "-1s", "--member-cert", "m.pem"},
		{"bench", "--start", "--ledgerd", "x", "--gov-every", "100ms", "--member-cert", "m.pem"},
		{"bench", "--get", "app/hello"},
		{"bench", "--get", "/app/a b"},
		{"bench", "--get", "/app/hello", "--etcd", "https://127.0.0.1:2379"},
		{"bench", "--pre-hook", "check", "--etcd", "https://127.0.0.1:2379"},
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

// TestBenchGovernance runs the bench with governance alongside: the member
// proposes and votes every 100ms, and the report counts the proposals.
func TestBenchGovernance(t *testing.T) {
	bin := testbin.Command(t, "LEDGERD_BIN", "github.com/ledgerd/ledgerd/cmd/ledgerd")
	var stdout, stderr bytes.Buffer
	code := run([]string{"bench", "--start", "--ledgerd", bin, "--connections", "2",
		"--warmup", "100ms", "--duration", "700ms", "--gov-every", "100ms", "--json"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("bench exited %d\nstdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
	}
	var rep loadgen.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, &stdout)
	}
	g := rep.Governance
	switch {
	case g == nil:
		t.Fatalf("no governance report:\n%s", &stdout)
	case g.EveryMS != 100 || g.Errors != 0:
		t.Errorf("governance report %+v", g)
	case g.Proposals < 3 || g.Latency.P50 <= 0:
		// 1.6 s of phases at one proposal per 100 ms: at least a few even on a busy machine.
		t.Errorf("only %d proposals (missed %d), latency %+v", g.Proposals, g.Missed, g.Latency)
	}
	if rep.Appends.Requests == 0 || rep.Failures() != 0 {
		t.Errorf("appends %d, failures %d", rep.Appends.Requests, rep.Failures())
	}
	// Without --gov-every there is no governance report.
	stdout.Reset()
	if code := run([]string{"bench", "--start", "--ledgerd", bin, "--connections", "1",
		"--warmup", "0s", "--duration", "200ms", "--json"}, &stdout, &stderr); code != 0 {
		t.Fatalf("bench exited %d\n%s", code, &stderr)
	}
	if strings.Contains(stdout.String(), `"governance"`) {
		t.Errorf("a report without --gov-every has a governance section:\n%s", &stdout)
	}
}
