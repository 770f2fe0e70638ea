package loadgen

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// PhaseReport is one phase's figures.
type PhaseReport struct {
	Request      string         `json:"request"`
	Requests     int            `json:"requests"` // answered 2xx in the measured window
	PerSecond    float64        `json:"per_second"`
	Latency      LatencySummary `json:"latency"`
	Errors       int            `json:"errors"` // failed requests, warm-up included
	ErrorKinds   map[string]int `json:"error_kinds,omitempty"`
	ErrorSamples []string       `json:"error_samples,omitempty"`
	// CPU used in the measured window, where /proc tells: this process's,
	// and a --start server's.
	GeneratorCPU *CPUUse `json:"generator_cpu,omitempty"`
	ServerCPU    *CPUUse `json:"server_cpu,omitempty"`
}

// CPUUse is a process's CPU use in a phase's measured window.
type CPUUse struct {
	Cores        float64 `json:"cores"` // 1 = one core busy all the time
	PerRequestUS float64 `json:"us_per_request"`
}

func cpuUseOf(cores float64, requests int, window time.Duration) *CPUUse {
	if cores < 0 || requests == 0 {
		return nil
	}
	perReq := cores * window.Seconds() / float64(requests) * 1e6
	return &CPUUse{Cores: cores, PerRequestUS: math.Round(perReq*10) / 10}
}

func phaseReportOf(request string, r phaseResult) PhaseReport {
	p := PhaseReport{
		Request:      request,
		Requests:     len(r.lat),
		PerSecond:    round3(float64(len(r.lat)) / r.window.Seconds()),
		Latency:      summarize(r.lat),
		Errors:       sum(r.errors),
		ErrorKinds:   nonEmpty(r.errors),
		ErrorSamples: r.samples,
	}
	p.GeneratorCPU = cpuUseOf(r.cpuSelf, p.Requests, r.window)
	p.ServerCPU = cpuUseOf(r.cpuSrv, p.Requests, r.window)
	return p
}

// CommitReport is the append-to-Committed figures.
type CommitReport struct {
	// Measured is the number of measured appends seen Committed; their
	// latency runs from the append's start to the answer of the poll that
	// showed it committed.
	Measured int `json:"measured"`
	// Unresolved appends were not seen Committed within the timeout;
	// Invalid ones were rolled back. Both are failures.
	Unresolved     int            `json:"unresolved"`
	Invalid        int            `json:"invalid"`
	Latency        LatencySummary `json:"latency"`
	Polls          int            `json:"polls"`
	PollErrors     int            `json:"poll_errors"`
	PollErrorKinds map[string]int `json:"poll_error_kinds,omitempty"`
	PollLatency    LatencySummary `json:"poll_latency"`
}

// Report is the whole run's report, the --json output.
type Report struct {
	Endpoint    string  `json:"endpoint"`
	Server      string  `json:"server"` // "external", or "Throwaway BIN" with --start
	Connections int     `json:"connections"`
	DurationS   float64 `json:"duration_s"`
	WarmupS     float64 `json:"warmup_s"`
	Size        int     `json:"size"`
	Collection  string  `json:"collection"`
	// TLSConnections is the TLS handshakes of the load connections;
	// Reconnects those beyond one per connection.
	TLSConnections int          `json:"tls_connections"`
	Reconnects     int          `json:"reconnects"`
	Appends        PhaseReport  `json:"appends"`
	Committed      CommitReport `json:"committed"`
	Cheap          PhaseReport  `json:"cheap"`
	// Ratio is appends/s ÷ cheap-endpoint requests/s.
	Ratio float64 `json:"ratio"`
	// CPURatio is the CPU (server and generator) per cheap request ÷ the
	// CPU per append: the ratio a CPU-bound run would show on cores of its
	// own, a steadier figure than Ratio on a machine shared with other work.
	// Known only with --start, where /proc tells.
	CPURatio *float64 `json:"cpu_ratio,omitempty"`
	// Governance is what the governance load did (with GovEvery).
	Governance *GovReport `json:"governance,omitempty"`
}

// failures counts everything that makes a run fail.
func (r *Report) Failures() int {
	n := r.Appends.Errors + r.Cheap.Errors + r.Committed.PollErrors + r.Committed.Unresolved + r.Committed.Invalid
	if r.Governance != nil {
		n += r.Governance.Errors
	}
	return n
}

// readLabel names the read phase: "GET status", or "GET " and the start
// of the --get path.
func (r *Report) readLabel() string {
	path := strings.TrimPrefix(r.Cheap.Request, "GET ")
	if path == r.Cheap.Request || strings.Contains(path, "/status?") {
		return "GET status"
	}
	if len(path) > 18 {
		path = path[:17] + "…"
	}
	return "GET " + path
}

func (r *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "endpoint     %s (server: %s)\n", r.Endpoint, r.Server)
	fmt.Fprintf(w, "load         %d TLS connections, HTTP/1.1 keep-alive (%d reconnects), + 1 commit poller\n", r.Connections, r.Reconnects)
	fmt.Fprintf(w, "phases       %s warm-up + %s measured each; %d-byte entries to %q\n\n",
		secs(r.WarmupS), secs(r.DurationS), r.Size, r.Collection)
	fmt.Fprintf(w, "%-22s %9s %10s %9s %9s %9s %9s %9s %7s\n", "", "count", "per sec", "mean", "p50", "p99", "p99.9", "max", "errors")
	row := func(name string, count int, rate string, l LatencySummary, errs int) {
		fmt.Fprintf(w, "%-22s %9d %10s %9s %9s %9s %9s %9s %7d\n", name, count, rate,
			fmtMs(l.Mean), fmtMs(l.P50), fmtMs(l.P99), fmtMs(l.P999), fmtMs(l.Max), errs)
	}
	if r.Server == "etcd" { // RunEtcd: a put is answered once committed
		row("put (= Committed)", r.Appends.Requests, fmt.Sprintf("%.0f", r.Appends.PerSecond), r.Appends.Latency, r.Appends.Errors)
		for _, k := range sortedKeys(r.Appends.ErrorKinds) {
			fmt.Fprintf(w, "errors       put: %d × %s\n", r.Appends.ErrorKinds[k], k)
		}
		for _, s := range r.Appends.ErrorSamples {
			fmt.Fprintf(w, "             e.g. %s\n", s)
		}
		return
	}
	row("append", r.Appends.Requests, fmt.Sprintf("%.0f", r.Appends.PerSecond), r.Appends.Latency, r.Appends.Errors)
	c := r.Committed
	row("append → Committed", c.Measured, "-", c.Latency, c.Unresolved+c.Invalid)
	read := r.readLabel()
	if read == "GET status" {
		row("GET status (cheap)", r.Cheap.Requests, fmt.Sprintf("%.0f", r.Cheap.PerSecond), r.Cheap.Latency, r.Cheap.Errors)
	} else {
		row(read, r.Cheap.Requests, fmt.Sprintf("%.0f", r.Cheap.PerSecond), r.Cheap.Latency, r.Cheap.Errors)
	}
	row("commit poll", c.Polls, "-", c.PollLatency, c.PollErrors)
	if read != "GET status" {
		fmt.Fprintf(w, "\nread phase   %s (--get)", r.Cheap.Request)
	}
	fmt.Fprintf(w, "\nratio        appends/s ÷ %s/s = %.3f\n", read, r.Ratio)
	if a, g := r.Appends, r.Cheap; a.GeneratorCPU != nil || a.ServerCPU != nil {
		fmt.Fprintf(w, "cpu          %-18s %-26s %s\n", "", "ledgerd", "ledgerctl")
		fmt.Fprintf(w, "             %-18s %-26s %s\n", "append", fmtCPU(a.ServerCPU), fmtCPU(a.GeneratorCPU))
		fmt.Fprintf(w, "             %-18s %-26s %s\n", read, fmtCPU(g.ServerCPU), fmtCPU(g.GeneratorCPU))
	}
	if r.CPURatio != nil {
		fmt.Fprintf(w, "cpu ratio    CPU per %s ÷ CPU per append (both processes) = %.3f\n", read, *r.CPURatio)
	}
	if c.Unresolved+c.Invalid > 0 {
		fmt.Fprintf(w, "commit       %d appends not seen Committed within the timeout, %d rolled back\n", c.Unresolved, c.Invalid)
	}
	for _, p := range []struct {
		name string
		ph   PhaseReport
	}{{"append", r.Appends}, {read, r.Cheap}} {
		for _, k := range sortedKeys(p.ph.ErrorKinds) {
			fmt.Fprintf(w, "errors       %s: %d × %s\n", p.name, p.ph.ErrorKinds[k], k)
		}
		for _, s := range p.ph.ErrorSamples {
			fmt.Fprintf(w, "             e.g. %s\n", s)
		}
	}
	for _, k := range sortedKeys(c.PollErrorKinds) {
		fmt.Fprintf(w, "errors       commit poll: %d × %s\n", c.PollErrorKinds[k], k)
	}
	if g := r.Governance; g != nil {
		fmt.Fprintf(w, "governance   every %s: %d proposals created and Accepted by the member's ballot (p50 %s, p99 %s, max %s), %d errors, %d intervals missed\n",
			fmtMs(g.EveryMS), g.Proposals, fmtMs(g.Latency.P50), fmtMs(g.Latency.P99), fmtMs(g.Latency.Max), g.Errors, g.Missed)
		for _, s := range g.ErrorSamples {
			fmt.Fprintf(w, "             e.g. %s\n", s)
		}
	}
}

func fmtCPU(u *CPUUse) string {
	if u == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f cores, %.0fµs/request", u.Cores, u.PerRequestUS)
}

func fmtMs(x float64) string {
	switch {
	case x == 0:
		return "-"
	case x < 10:
		return fmt.Sprintf("%.2fms", x)
	case x < 1000:
		return fmt.Sprintf("%.1fms", x)
	}
	return fmt.Sprintf("%.2fs", x/1000)
}

func secs(s float64) string { return (time.Duration(s * float64(time.Second))).String() }

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func nonEmpty(m map[string]int) map[string]int {
	if len(m) == 0 {
		return nil
	}
	return m
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
