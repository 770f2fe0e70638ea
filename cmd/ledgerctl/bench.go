package main

import (
	"bufio"
	"bytes"
	"container/heap"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// bench is a load generator: it appends entries over N keep-alive mTLS
// connections, tracks every measured append until it is Committed, then
// measures the same server's cheapest authenticated endpoint over the same
// connections, and reports both rates and their ratio.
//
// The client is a minimal HTTP/1.1 client over one tls.Conn per worker,
// not net/http's Transport: each worker owns exactly one connection, so
// there are exactly N TLS connections, reused for every request (a broken
// connection is redialled and reported as a reconnect), and the generator,
// which shares the CPU with the server on small machines, spends as little
// of it as it can. Requests are precomputed bytes; responses are parsed by
// http.ReadResponse.

// benchAPIVersion is the api-version of every ACL request the bench makes.
const benchAPIVersion = "2022-05-13"

// Bounds of the bench's own waits.
const (
	// benchStartTimeout bounds a throwaway ledgerd's start: its
	// announcement, then /healthz answering 200.
	benchStartTimeout = 30 * time.Second
	// benchStopTimeout bounds a throwaway ledgerd's graceful stop before
	// it is killed.
	benchStopTimeout = 15 * time.Second
	// benchPollInterval is the shortest time between the starts of two
	// commit polls: the resolution of append-to-Committed latencies is
	// this or one poll round trip, whichever is longer.
	benchPollInterval = time.Millisecond
	// benchErrorBackoff keeps a worker whose connection failed from
	// spinning on a dead server.
	benchErrorBackoff = 10 * time.Millisecond
	// benchTxIDHeader is the header that carries a write's transaction id,
	// or the committed transaction id a read was served at.
	benchTxIDHeader = "X-Ms-Ccf-Transaction-Id"
)

const benchUsage = `usage: ledgerctl bench [flags]

Appends entries of --size bytes to --collection over --connections concurrent
keep-alive mTLS connections (HTTP/1.1, one TLS connection per worker) for
--warmup, then for --duration (measured); then measures the same server's
cheapest authenticated endpoint, GET /app/transactions/{id}/status of a
committed id, the same way over the same connections. It reports each
phase's throughput and latency percentiles, the latency from append to
Committed of every measured append, and appends/s ÷ status-GETs/s.

Commit is tracked by one extra connection that polls the status endpoint:
every answer carries, in x-ms-ccf-transaction-id, the committed transaction
id it was read at, which resolves every outstanding append with that view
and a seqno at or below it. The latency is measured to the poll's answer, so
it is an upper bound, within one poll round trip of the true figure.

Every request times out after --timeout. Failed requests (non-2xx or
connection errors), failed polls and appends never seen Committed are
counted and shown; any of them makes the exit code 1.

--start runs the bench against a throwaway ledgerd (--ledgerd BIN) started on
a free 127.0.0.1 port with its data in a new directory under $TMPDIR (which
therefore decides the disk that fsyncs), and stops and removes it afterwards.
--endpoint, --cert and --service-cert are then the throwaway's own.

Flags:`

// benchOptions are the bench's flags.
type benchOptions struct {
	endpoint    string
	certFile    string
	serviceCert string
	connections int
	duration    time.Duration
	warmup      time.Duration
	timeout     time.Duration
	size        int
	collection  string
	json        bool
	start       bool
	ledgerd     string
}

func runBench(args []string, stdout, stderr io.Writer) error {
	stderr = &lockedWriter{w: stderr} // a throwaway ledgerd writes to it too
	o, err := parseBenchFlags(args, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop) // a second interrupt kills at once

	serverPID, serverDesc := 0, "external"
	if o.start {
		srv, err := startThrowaway(ctx, o.ledgerd, o.timeout, stderr)
		if err != nil {
			return err
		}
		defer func() {
			if err := srv.stop(); err != nil {
				fmt.Fprintln(stderr, "ledgerctl bench:", err)
			}
		}()
		o.endpoint = "https://" + srv.addr
		o.certFile = filepath.Join(srv.data, "admin.pem")
		o.serviceCert = filepath.Join(srv.data, "service.pem")
		serverPID, serverDesc = srv.cmd.Process.Pid, "throwaway "+o.ledgerd
	}
	rep, err := runBenchPhases(ctx, o, serverPID, stderr)
	if err != nil {
		if ctx.Err() != nil {
			return errors.New("bench interrupted")
		}
		return err
	}
	rep.Server = serverDesc
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		rep.writeText(stdout)
	}
	if n := rep.failures(); n > 0 {
		return fmt.Errorf("bench: %d failures (see the report)", n)
	}
	return nil
}

func parseBenchFlags(args []string, stderr io.Writer) (benchOptions, error) {
	var o benchOptions
	fs := newFlags("bench", stderr)
	fs.StringVar(&o.endpoint, "endpoint", "https://127.0.0.1:8443", "ledger URL (https)")
	fs.StringVar(&o.certFile, "cert", "admin.pem", "PEM file with the certificate and key of a Contributor or Administrator")
	fs.StringVar(&o.serviceCert, "service-cert", envOr("LEDGER_SERVICE_CERT", "service.pem"), "service certificate (PEM) to pin (env LEDGER_SERVICE_CERT)")
	fs.IntVar(&o.connections, "connections", 64, "concurrent connections, one worker each")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured time of each phase")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured time before each phase's measurement")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "timeout of every request, and of waiting for commits after the append phase")
	fs.IntVar(&o.size, "size", 1024, "entry contents, in bytes")
	fs.StringVar(&o.collection, "collection", "bench", "collection to append to")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON")
	fs.BoolVar(&o.start, "start", false, "start a throwaway ledgerd on a free loopback port, bench it, stop it")
	fs.StringVar(&o.ledgerd, "ledgerd", "", "ledgerd binary for --start (default: ledgerd next to ledgerctl, else on PATH)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, benchUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, flagError(err)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case fs.NArg() != 0:
		return o, usagef("bench takes no arguments, got %q", fs.Arg(0))
	case o.connections < 1 || o.connections > 10000:
		return o, usagef("--connections must be between 1 and 10000")
	case o.duration <= 0:
		return o, usagef("--duration must be positive")
	case o.warmup < 0:
		return o, usagef("--warmup must not be negative")
	case o.timeout <= 0:
		return o, usagef("--timeout must be positive")
	case o.size < 0 || o.size > maxBenchSize:
		return o, usagef("--size must be between 0 and %d", maxBenchSize)
	case o.collection == "":
		return o, usagef("--collection must not be empty")
	case o.start && (set["endpoint"] || set["cert"] || set["service-cert"]):
		return o, usagef("--start benches its own ledgerd: drop --endpoint, --cert and --service-cert")
	case !o.start && set["ledgerd"]:
		return o, usagef("--ledgerd needs --start")
	}
	if o.start && o.ledgerd == "" {
		if o.ledgerd = defaultLedgerd(); o.ledgerd == "" {
			return o, usagef("--start: no ledgerd next to ledgerctl or on PATH; name it with --ledgerd")
		}
	}
	return o, nil
}

// maxBenchSize bounds --size: the body is built in memory, and the server
// refuses contents over 8 KiB anyway (which the bench reports as errors).
const maxBenchSize = 1 << 20

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// defaultLedgerd is the ledgerd next to this executable, else on PATH.
func defaultLedgerd() string {
	name := "ledgerd"
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p
		}
	}
	if p, err := exec.LookPath("ledgerd"); err == nil {
		return p
	}
	return ""
}

// ---- the run ----

// benchTarget is the server under test and how to reach it.
type benchTarget struct {
	addr    string // host:port to dial
	host    string // Host header
	prefix  string // path prefix of the endpoint URL, without a trailing slash
	tls     *tls.Config
	timeout time.Duration
}

func newBenchTarget(o benchOptions) (*benchTarget, error) {
	u, err := url.Parse(o.endpoint)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" {
		return nil, usagef("--endpoint %q: want https://HOST[:PORT]", o.endpoint)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "443")
	}
	servicePEM, err := os.ReadFile(o.serviceCert)
	if err != nil {
		return nil, fmt.Errorf("service certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(servicePEM) {
		return nil, fmt.Errorf("service certificate %s: no PEM certificate in it", o.serviceCert)
	}
	cert, err := tls.LoadX509KeyPair(o.certFile, o.certFile)
	if err != nil {
		return nil, fmt.Errorf("client certificate and key %s: %w", o.certFile, err)
	}
	return &benchTarget{
		addr:   addr,
		host:   u.Host,
		prefix: strings.TrimSuffix(u.EscapedPath(), "/"),
		tls: &tls.Config{
			RootCAs:      pool,
			ServerName:   u.Hostname(),
			Certificates: []tls.Certificate{cert},
			MinVersion:   tls.VersionTLS12,
			NextProtos:   []string{"http/1.1"}, // never HTTP/2
		},
		timeout: o.timeout,
	}, nil
}

// request returns the bytes of one HTTP/1.1 request to path (with query).
func (t *benchTarget) request(method, path string, body []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: ledgerctl-bench\r\n", method, t.prefix, path, t.host)
	if body != nil {
		fmt.Fprintf(&b, "Content-Type: application/json\r\nContent-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}

// benchConn is one worker's keep-alive connection. It is not safe for
// concurrent use.
type benchConn struct {
	t     *benchTarget
	dials *atomic.Int64
	c     *tls.Conn
	br    *bufio.Reader
	// live is c, for interrupt, which may run concurrently.
	live atomic.Pointer[tls.Conn]
}

// benchReply is a response: its status, transaction id header, and the
// start of its body if it is an error or was asked for.
type benchReply struct {
	status int
	txID   string
	body   []byte
}

func (c *benchConn) dial(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.t.timeout)
	defer cancel()
	d := tls.Dialer{NetDialer: &net.Dialer{}, Config: c.t.tls}
	nc, err := d.DialContext(ctx, "tcp", c.t.addr)
	if err != nil {
		return err
	}
	c.dials.Add(1)
	tc := nc.(*tls.Conn)
	if p := tc.ConnectionState().NegotiatedProtocol; p != "" && p != "http/1.1" {
		tc.Close()
		return fmt.Errorf("server negotiated %q, not HTTP/1.1", p)
	}
	c.c, c.br = tc, bufio.NewReaderSize(tc, 16<<10)
	c.live.Store(tc)
	return nil
}

func (c *benchConn) close() {
	if c.c != nil {
		c.live.Store(nil)
		c.c.Close()
		c.c, c.br = nil, nil
	}
}

// interrupt makes the request in flight, if any, fail now. It may be
// called concurrently with roundTrip.
func (c *benchConn) interrupt() {
	if tc := c.live.Load(); tc != nil {
		tc.SetDeadline(time.Now())
	}
}

// roundTrip sends one precomputed request and reads the whole response,
// within the timeout, keeping the body of an error answer, or of any answer
// if keepBody. On an error the connection is closed; the next call redials
// it.
func (c *benchConn) roundTrip(ctx context.Context, req []byte, keepBody bool) (benchReply, error) {
	if c.c == nil {
		if err := c.dial(ctx); err != nil {
			return benchReply{}, err
		}
	}
	c.c.SetDeadline(time.Now().Add(c.t.timeout))
	if _, err := c.c.Write(req); err != nil {
		c.close()
		return benchReply{}, err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.close()
		return benchReply{}, err
	}
	rep := benchReply{status: resp.StatusCode, txID: resp.Header.Get(benchTxIDHeader)}
	if keepBody || resp.StatusCode/100 != 2 {
		rep.body, _ = io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		c.close()
		return benchReply{}, err
	}
	if resp.Close {
		c.close()
	}
	return rep, nil
}

// benchTxID is a transaction id, <view>.<seqno>.
type benchTxID struct{ view, seqno uint64 }

func (id benchTxID) String() string { return fmt.Sprintf("%d.%d", id.view, id.seqno) }

func parseBenchTxID(s string) (benchTxID, bool) {
	v, q, ok := strings.Cut(s, ".")
	if !ok {
		return benchTxID{}, false
	}
	view, err1 := strconv.ParseUint(v, 10, 64)
	seqno, err2 := strconv.ParseUint(q, 10, 64)
	if err1 != nil || err2 != nil || view == 0 || seqno == 0 {
		return benchTxID{}, false
	}
	return benchTxID{view, seqno}, true
}

// errorKind names a failed request for the error counts: the status and
// ACL error code, or the kind of connection failure.
func errorKind(rep benchReply, err error) string {
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return "timeout"
		}
		return "connection error"
	}
	var body struct {
		Error struct{ Code string } `json:"error"`
	}
	if json.Unmarshal(rep.body, &body) == nil && body.Error.Code != "" {
		return fmt.Sprintf("%d %s", rep.status, body.Error.Code)
	}
	return strconv.Itoa(rep.status)
}

// ---- commit tracking ----

// pendingAppend is a measured append not yet seen Committed.
type pendingAppend struct {
	id    benchTxID
	start time.Time
}

// pendingHeap orders pending appends by seqno.
type pendingHeap []pendingAppend

func (h pendingHeap) Len() int           { return len(h) }
func (h pendingHeap) Less(i, j int) bool { return h[i].id.seqno < h[j].id.seqno }
func (h pendingHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *pendingHeap) Push(x any)        { *h = append(*h, x.(pendingAppend)) }
func (h *pendingHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	*h = old[:len(old)-1]
	return p
}

// commitTracker resolves appends as the committed transaction id, observed
// by the poller, passes them. An append whose seqno is committed in its own
// view is Committed; one whose view differs from the committed id's is
// uncertain (Committed or rolled back) until its own status is asked.
type commitTracker struct {
	mu        sync.Mutex
	pending   pendingHeap
	known     benchTxID // highest committed id observed
	lat       []time.Duration
	uncertain []pendingAppend
	invalid   int
}

// add registers an append that answered at now.
func (t *commitTracker) add(id benchTxID, start, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := pendingAppend{id, start}
	if id.seqno <= t.known.seqno {
		t.resolveLocked(p, now)
		return
	}
	heap.Push(&t.pending, p)
}

// observe records that committed was the committed id at or before at.
func (t *commitTracker) observe(committed benchTxID, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if committed.seqno <= t.known.seqno {
		return
	}
	t.known = committed
	for len(t.pending) > 0 && t.pending[0].id.seqno <= committed.seqno {
		t.resolveLocked(heap.Pop(&t.pending).(pendingAppend), at)
	}
}

func (t *commitTracker) resolveLocked(p pendingAppend, at time.Time) {
	if p.id.view == t.known.view {
		t.lat = append(t.lat, at.Sub(p.start))
	} else {
		t.uncertain = append(t.uncertain, p)
	}
}

// takeUncertain returns the appends whose status must be asked.
func (t *commitTracker) takeUncertain() []pendingAppend {
	t.mu.Lock()
	defer t.mu.Unlock()
	u := t.uncertain
	t.uncertain = nil
	return u
}

// settle records the status of an uncertain append.
func (t *commitTracker) settle(p pendingAppend, state string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch state {
	case "Committed":
		t.lat = append(t.lat, at.Sub(p.start))
	case "Invalid":
		t.invalid++
	default: // not decided yet: ask again
		t.uncertain = append(t.uncertain, p)
	}
}

// outstanding is the number of appends not yet resolved.
func (t *commitTracker) outstanding() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending) + len(t.uncertain)
}

// poller polls the committed transaction id over its own connection.
type poller struct {
	conn    *benchConn
	req     []byte // a cheap authenticated GET
	target  *benchTarget
	tracker *commitTracker
	polls   int
	errors  map[string]int
	lat     []time.Duration
}

// run polls until ctx ends.
func (p *poller) run(ctx context.Context) {
	for ctx.Err() == nil {
		sent := time.Now()
		rep, err := p.conn.roundTrip(ctx, p.req, false)
		recv := time.Now()
		if ctx.Err() != nil {
			return
		}
		id, ok := parseBenchTxID(rep.txID)
		switch {
		case err != nil || rep.status != http.StatusOK:
			p.errors[errorKind(rep, err)]++
			sleepCtx(ctx, benchErrorBackoff)
			continue
		case !ok:
			p.errors["no transaction id"]++
		default:
			p.polls++
			p.lat = append(p.lat, recv.Sub(sent))
			p.tracker.observe(id, recv)
		}
		for _, u := range p.tracker.takeUncertain() {
			state, err := p.status(ctx, u.id)
			if err != nil {
				p.errors[err.Error()]++
			}
			p.tracker.settle(u, state, time.Now())
		}
		sleepCtx(ctx, time.Until(sent.Add(benchPollInterval)))
	}
}

// status asks the state of one transaction (rare: only after a view change).
func (p *poller) status(ctx context.Context, id benchTxID) (string, error) {
	rep, err := p.conn.roundTrip(ctx, p.target.request("GET", statusPath(id), nil), true)
	if err != nil || rep.status != http.StatusOK {
		return "", errors.New(errorKind(rep, err))
	}
	var body struct{ State string }
	if err := json.Unmarshal(rep.body, &body); err != nil {
		return "", errors.New("status: not JSON")
	}
	return body.State, nil
}

func statusPath(id benchTxID) string {
	return "/app/transactions/" + id.String() + "/status?api-version=" + benchAPIVersion
}

func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// ---- phases ----

// workerResult is what one worker measured in one phase.
type workerResult struct {
	lat    []time.Duration
	errors map[string]int
	sample string // the first error's details
}

// phaseResult is one phase's measurement.
type phaseResult struct {
	lat     []time.Duration
	errors  map[string]int
	samples []string
	window  time.Duration
	cpuSelf float64 // cores used by this process in the window, -1 unknown
	cpuSrv  float64 // cores used by the server in the window, -1 unknown
}

// runPhase has every connection's worker send req back to back for warmup,
// then for measure. A request is measured if it completes in the measured
// window. ok, if set, checks a 2xx answer (returning an error kind) and
// learns from it.
func runPhase(ctx context.Context, conns []*benchConn, warmup, measure time.Duration, req []byte,
	ok func(rep benchReply, start, end time.Time, measured bool) string, serverPID int) phaseResult {
	begin := time.Now()
	t0 := begin.Add(warmup)
	t1 := t0.Add(measure)
	results := make([]workerResult, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			r := &results[i]
			r.errors = map[string]int{}
			for ctx.Err() == nil {
				start := time.Now()
				if !start.Before(t1) {
					return
				}
				rep, err := c.roundTrip(ctx, req, false)
				end := time.Now()
				measured := !end.Before(t0) && !end.After(t1)
				kind := ""
				switch {
				case ctx.Err() != nil:
					return
				case err != nil || rep.status/100 != 2:
					kind = errorKind(rep, err)
				case ok != nil:
					kind = ok(rep, start, end, measured)
				}
				if kind != "" {
					r.errors[kind]++
					if r.sample == "" {
						r.sample = errorSample(kind, rep, err)
					}
					if err != nil {
						sleepCtx(ctx, benchErrorBackoff)
					}
					continue
				}
				if measured {
					r.lat = append(r.lat, end.Sub(start))
				}
			}
		})
	}
	sleepCtx(ctx, time.Until(t0))
	srvPID := serverPID
	if srvPID == 0 {
		srvPID = -1 // unknown
	}
	self0, srv0 := procCPU(0), procCPU(srvPID)
	sleepCtx(ctx, time.Until(t1))
	self1, srv1 := procCPU(0), procCPU(srvPID)
	wg.Wait()

	res := phaseResult{errors: map[string]int{}, window: measure, cpuSelf: cores(self0, self1, measure), cpuSrv: cores(srv0, srv1, measure)}
	for _, r := range results {
		res.lat = append(res.lat, r.lat...)
		for k, n := range r.errors {
			res.errors[k] += n
		}
		if r.sample != "" && len(res.samples) < 3 {
			res.samples = append(res.samples, r.sample)
		}
	}
	return res
}

func errorSample(kind string, rep benchReply, err error) string {
	if err != nil {
		return err.Error()
	}
	if len(rep.body) > 0 {
		return fmt.Sprintf("HTTP %d: %.300s", rep.status, bytes.TrimSpace(rep.body))
	}
	return kind
}

// runBenchPhases connects, runs the append phase and the cheap-endpoint
// phase, and returns the report.
func runBenchPhases(ctx context.Context, o benchOptions, serverPID int, stderr io.Writer) (*benchReport, error) {
	t, err := newBenchTarget(o)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(map[string]string{"contents": strings.Repeat("x", o.size)})
	if err != nil {
		return nil, err
	}
	appendPath := "/app/transactions?api-version=" + benchAPIVersion + "&collectionId=" + url.QueryEscape(o.collection)
	appendReq := t.request("POST", appendPath, body)

	// Preflight, on the poller's connection: one append, so that a wrong
	// credential or role fails once and clearly, and a transaction id the
	// status requests can name.
	var pollDials, loadDials atomic.Int64
	pc := &benchConn{t: t, dials: &pollDials}
	defer pc.close()
	rep, err := pc.roundTrip(ctx, appendReq, false)
	if err != nil {
		return nil, fmt.Errorf("first append to %s: %w", o.endpoint, err)
	}
	if rep.status/100 != 2 {
		return nil, fmt.Errorf("first append: %s", errorSample(errorKind(rep, nil), rep, nil))
	}
	seed, ok := parseBenchTxID(rep.txID)
	if !ok {
		return nil, fmt.Errorf("first append: no transaction id in %s (got %q)", benchTxIDHeader, rep.txID)
	}
	statusReq := t.request("GET", statusPath(seed), nil)

	// Exactly one TLS connection per worker, opened before any phase.
	conns := make([]*benchConn, o.connections)
	dialErrs := make([]error, o.connections)
	var wg sync.WaitGroup
	for i := range conns {
		conns[i] = &benchConn{t: t, dials: &loadDials}
		wg.Go(func() { dialErrs[i] = conns[i].dial(ctx) })
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			c.close()
		}
	}()
	if err := errors.Join(dialErrs...); err != nil {
		return nil, fmt.Errorf("couldn't open %d connections: %w", o.connections, err)
	}
	stopInterrupting := context.AfterFunc(ctx, func() { // unblock workers on an interrupt
		for _, c := range conns {
			c.interrupt()
		}
	})
	defer stopInterrupting()

	tracker := &commitTracker{}
	pl := &poller{conn: pc, req: statusReq, target: t, tracker: tracker, errors: map[string]int{}}
	pollCtx, stopPolling := context.WithCancel(ctx)
	pollDone := make(chan struct{})
	go func() { defer close(pollDone); pl.run(pollCtx) }()
	defer context.AfterFunc(pollCtx, pc.interrupt)()
	defer func() { stopPolling(); <-pollDone }()

	fmt.Fprintf(stderr, "bench: appends: %s warm-up, %s measured, %d connections...\n", o.warmup, o.duration, o.connections)
	appends := runPhase(ctx, conns, o.warmup, o.duration, appendReq, func(rep benchReply, start, end time.Time, measured bool) string {
		id, ok := parseBenchTxID(rep.txID)
		if !ok {
			return "no transaction id"
		}
		if measured {
			tracker.add(id, start, end)
		}
		return ""
	}, serverPID)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	// Let the poller resolve the last appends, for at most the timeout.
	for deadline := time.Now().Add(o.timeout); tracker.outstanding() > 0 && time.Now().Before(deadline) && ctx.Err() == nil; {
		sleepCtx(ctx, 5*time.Millisecond)
	}

	fmt.Fprintf(stderr, "bench: GET status: %s warm-up, %s measured, same connections...\n", o.warmup, o.duration)
	cheap := runPhase(ctx, conns, o.warmup, o.duration, statusReq, nil, serverPID)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	stopPolling()
	<-pollDone

	tracker.mu.Lock()
	committed := commitReport{
		Measured:   len(tracker.lat),
		Unresolved: len(tracker.pending) + len(tracker.uncertain),
		Invalid:    tracker.invalid,
		Latency:    summarize(tracker.lat),
	}
	tracker.mu.Unlock()
	committed.Polls = pl.polls
	committed.PollErrors = sum(pl.errors)
	committed.PollErrorKinds = nonEmpty(pl.errors)
	committed.PollLatency = summarize(pl.lat)

	rp := &benchReport{
		Endpoint:       o.endpoint,
		Connections:    o.connections,
		DurationS:      o.duration.Seconds(),
		WarmupS:        o.warmup.Seconds(),
		Size:           o.size,
		Collection:     o.collection,
		Appends:        phaseReportOf("POST "+appendPath, appends),
		Committed:      committed,
		Cheap:          phaseReportOf("GET "+statusPath(seed), cheap),
		TLSConnections: int(loadDials.Load()),
	}
	rp.Reconnects = rp.TLSConnections - o.connections
	if rp.Cheap.PerSecond > 0 {
		rp.Ratio = round3(rp.Appends.PerSecond / rp.Cheap.PerSecond)
	}
	a, c := rp.Appends, rp.Cheap
	if a.ServerCPU != nil && a.GeneratorCPU != nil && c.ServerCPU != nil && c.GeneratorCPU != nil {
		perAppend := a.ServerCPU.PerRequestUS + a.GeneratorCPU.PerRequestUS
		perCheap := c.ServerCPU.PerRequestUS + c.GeneratorCPU.PerRequestUS
		if perAppend > 0 {
			x := round3(perCheap / perAppend)
			rp.CPURatio = &x
		}
	}
	return rp, nil
}

// ---- the report ----

// latencySummary is a latency distribution, in milliseconds.
type latencySummary struct {
	Mean float64 `json:"mean_ms"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	P999 float64 `json:"p999_ms"`
	Max  float64 `json:"max_ms"`
}

// summarize sorts d and returns its nearest-rank percentiles.
func summarize(d []time.Duration) latencySummary {
	if len(d) == 0 {
		return latencySummary{}
	}
	slices.Sort(d)
	q := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(d)))) - 1
		return ms(d[max(0, min(i, len(d)-1))])
	}
	var total time.Duration
	for _, x := range d {
		total += x
	}
	return latencySummary{
		Mean: ms(total / time.Duration(len(d))),
		P50:  q(0.50), P90: q(0.90), P99: q(0.99), P999: q(0.999),
		Max: ms(d[len(d)-1]),
	}
}

func ms(d time.Duration) float64 { return round3(float64(d) / float64(time.Millisecond)) }
func round3(x float64) float64   { return math.Round(x*1000) / 1000 }

// phaseReport is one phase's figures.
type phaseReport struct {
	Request      string         `json:"request"`
	Requests     int            `json:"requests"` // answered 2xx in the measured window
	PerSecond    float64        `json:"per_second"`
	Latency      latencySummary `json:"latency"`
	Errors       int            `json:"errors"` // failed requests, warm-up included
	ErrorKinds   map[string]int `json:"error_kinds,omitempty"`
	ErrorSamples []string       `json:"error_samples,omitempty"`
	// CPU used in the measured window, where /proc tells: this process's,
	// and a --start server's.
	GeneratorCPU *cpuUse `json:"generator_cpu,omitempty"`
	ServerCPU    *cpuUse `json:"server_cpu,omitempty"`
}

// cpuUse is a process's CPU use in a phase's measured window.
type cpuUse struct {
	Cores        float64 `json:"cores"` // 1 = one core busy all the time
	PerRequestUS float64 `json:"us_per_request"`
}

func cpuUseOf(cores float64, requests int, window time.Duration) *cpuUse {
	if cores < 0 || requests == 0 {
		return nil
	}
	perReq := cores * window.Seconds() / float64(requests) * 1e6
	return &cpuUse{Cores: cores, PerRequestUS: math.Round(perReq*10) / 10}
}

func phaseReportOf(request string, r phaseResult) phaseReport {
	p := phaseReport{
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

// commitReport is the append-to-Committed figures.
type commitReport struct {
	// Measured is the number of measured appends seen Committed; their
	// latency runs from the append's start to the answer of the poll that
	// showed it committed.
	Measured int `json:"measured"`
	// Unresolved appends were not seen Committed within the timeout;
	// Invalid ones were rolled back. Both are failures.
	Unresolved     int            `json:"unresolved"`
	Invalid        int            `json:"invalid"`
	Latency        latencySummary `json:"latency"`
	Polls          int            `json:"polls"`
	PollErrors     int            `json:"poll_errors"`
	PollErrorKinds map[string]int `json:"poll_error_kinds,omitempty"`
	PollLatency    latencySummary `json:"poll_latency"`
}

// benchReport is the whole run's report, the --json output.
type benchReport struct {
	Endpoint    string  `json:"endpoint"`
	Server      string  `json:"server"` // "external", or "throwaway BIN" with --start
	Connections int     `json:"connections"`
	DurationS   float64 `json:"duration_s"`
	WarmupS     float64 `json:"warmup_s"`
	Size        int     `json:"size"`
	Collection  string  `json:"collection"`
	// TLSConnections is the TLS handshakes of the load connections;
	// Reconnects those beyond one per connection.
	TLSConnections int          `json:"tls_connections"`
	Reconnects     int          `json:"reconnects"`
	Appends        phaseReport  `json:"appends"`
	Committed      commitReport `json:"committed"`
	Cheap          phaseReport  `json:"cheap"`
	// Ratio is appends/s ÷ cheap-endpoint requests/s.
	Ratio float64 `json:"ratio"`
	// CPURatio is the CPU (server and generator) per cheap request ÷ the
	// CPU per append: the ratio a CPU-bound run would show on cores of its
	// own, a steadier figure than Ratio on a machine shared with other work.
	// Known only with --start, where /proc tells.
	CPURatio *float64 `json:"cpu_ratio,omitempty"`
}

// failures counts everything that makes a run fail.
func (r *benchReport) failures() int {
	return r.Appends.Errors + r.Cheap.Errors + r.Committed.PollErrors + r.Committed.Unresolved + r.Committed.Invalid
}

func (r *benchReport) writeText(w io.Writer) {
	fmt.Fprintf(w, "endpoint     %s (server: %s)\n", r.Endpoint, r.Server)
	fmt.Fprintf(w, "load         %d TLS connections, HTTP/1.1 keep-alive (%d reconnects), + 1 commit poller\n", r.Connections, r.Reconnects)
	fmt.Fprintf(w, "phases       %s warm-up + %s measured each; %d-byte entries to %q\n\n",
		secs(r.WarmupS), secs(r.DurationS), r.Size, r.Collection)
	fmt.Fprintf(w, "%-22s %9s %10s %9s %9s %9s %9s %9s %7s\n", "", "count", "per sec", "mean", "p50", "p99", "p99.9", "max", "errors")
	row := func(name string, count int, rate string, l latencySummary, errs int) {
		fmt.Fprintf(w, "%-22s %9d %10s %9s %9s %9s %9s %9s %7d\n", name, count, rate,
			fmtMs(l.Mean), fmtMs(l.P50), fmtMs(l.P99), fmtMs(l.P999), fmtMs(l.Max), errs)
	}
	row("append", r.Appends.Requests, fmt.Sprintf("%.0f", r.Appends.PerSecond), r.Appends.Latency, r.Appends.Errors)
	c := r.Committed
	row("append → Committed", c.Measured, "-", c.Latency, c.Unresolved+c.Invalid)
	row("GET status (cheap)", r.Cheap.Requests, fmt.Sprintf("%.0f", r.Cheap.PerSecond), r.Cheap.Latency, r.Cheap.Errors)
	row("commit poll", c.Polls, "-", c.PollLatency, c.PollErrors)
	fmt.Fprintf(w, "\nratio        appends/s ÷ GET status/s = %.3f\n", r.Ratio)
	if a, g := r.Appends, r.Cheap; a.GeneratorCPU != nil || a.ServerCPU != nil {
		fmt.Fprintf(w, "cpu          %-18s %-26s %s\n", "", "ledgerd", "ledgerctl")
		fmt.Fprintf(w, "             %-18s %-26s %s\n", "append", fmtCPU(a.ServerCPU), fmtCPU(a.GeneratorCPU))
		fmt.Fprintf(w, "             %-18s %-26s %s\n", "GET status", fmtCPU(g.ServerCPU), fmtCPU(g.GeneratorCPU))
	}
	if r.CPURatio != nil {
		fmt.Fprintf(w, "cpu ratio    CPU per GET status ÷ CPU per append (both processes) = %.3f\n", *r.CPURatio)
	}
	if c.Unresolved+c.Invalid > 0 {
		fmt.Fprintf(w, "commit       %d appends not seen Committed within the timeout, %d rolled back\n", c.Unresolved, c.Invalid)
	}
	for _, p := range []struct {
		name string
		ph   phaseReport
	}{{"append", r.Appends}, {"GET status", r.Cheap}} {
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
}

func fmtCPU(u *cpuUse) string {
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

// procCPU is the CPU time (user and system) of a process (0: this one) as
// /proc reports it, or -1 where there is no /proc. It assumes the usual
// USER_HZ of 100.
func procCPU(pid int) time.Duration {
	path := "/proc/self/stat"
	if pid > 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/stat"
	} else if pid < 0 {
		return -1
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	// Fields after the command name (which may hold spaces) in
	// parentheses: state is field 3, utime 14, stime 15.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return -1
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return time.Duration(utime+stime) * (time.Second / 100)
}

// cores is the CPU used between two procCPU readings over d, or -1.
func cores(a, b, d time.Duration) float64 {
	if a < 0 || b < 0 || d <= 0 {
		return -1
	}
	return math.Round(float64(b-a)/float64(d)*100) / 100
}

// ---- --start ----

// throwaway is a ledgerd started for one bench.
type throwaway struct {
	cmd  *exec.Cmd
	dir  string // removed by stop
	data string
	addr string
	done chan error
}

// startThrowaway starts bin on a free loopback port with a new data
// directory and waits until it serves /healthz.
func startThrowaway(ctx context.Context, bin string, timeout time.Duration, stderr io.Writer) (*throwaway, error) {
	dir, err := os.MkdirTemp("", "ledgerctl-bench-")
	if err != nil {
		return nil, err
	}
	s := &throwaway{dir: dir, data: filepath.Join(dir, "data"), done: make(chan error, 1)}
	s.cmd = exec.Command(bin, "--data", s.data, "--listen", "127.0.0.1:0", "--log-level", "warn")
	s.cmd.Stderr = &prefixWriter{w: stderr, prefix: "ledgerd: "}
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("--start: %w", err)
	}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() { // read it all, so that ledgerd never blocks on stdout
			if a, ok := strings.CutPrefix(sc.Text(), "listening on https://"); ok {
				select {
				case addrc <- a:
				default:
				}
			}
		}
		io.Copy(io.Discard, out)
		s.done <- s.cmd.Wait()
	}()
	fail := func(err error) (*throwaway, error) {
		s.stop()
		return nil, fmt.Errorf("--start %s: %w", bin, err)
	}
	ctx, cancel := context.WithTimeout(ctx, benchStartTimeout)
	defer cancel()
	select {
	case s.addr = <-addrc:
	case err := <-s.done:
		s.done <- err // for stop
		return fail(fmt.Errorf("ledgerd exited before listening: %v", err))
	case <-ctx.Done():
		return fail(errors.New("ledgerd did not announce its address in time"))
	}
	host, _, err := net.SplitHostPort(s.addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return fail(fmt.Errorf("ledgerd listens on %q, not on loopback", s.addr))
	}
	if err := s.waitHealthy(ctx, timeout); err != nil {
		return fail(err)
	}
	return s, nil
}

// waitHealthy polls /healthz, pinning the service certificate, until it
// answers 200 or ctx ends.
func (s *throwaway) waitHealthy(ctx context.Context, timeout time.Duration) error {
	servicePEM, err := os.ReadFile(filepath.Join(s.data, "service.pem"))
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(servicePEM)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: timeout}
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", "https://"+s.addr+"/healthz", nil)
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("/healthz answered %s", resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("ledgerd not healthy in time: %v", last)
		case err := <-s.done:
			s.done <- err
			return fmt.Errorf("ledgerd exited: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop stops ledgerd gracefully (SIGTERM; killed after benchStopTimeout)
// and removes its directory.
func (s *throwaway) stop() error {
	defer os.RemoveAll(s.dir)
	var err error
	select {
	case err = <-s.done: // already exited
	default:
		if s.cmd.Process.Signal(syscall.SIGTERM) != nil {
			s.cmd.Process.Kill()
		}
		select {
		case err = <-s.done:
		case <-time.After(benchStopTimeout):
			s.cmd.Process.Kill()
			<-s.done
			return errors.New("throwaway ledgerd did not stop on SIGTERM; killed it")
		}
	}
	if err != nil {
		return fmt.Errorf("throwaway ledgerd: %w", err)
	}
	return nil
}

// lockedWriter serialises writes to a writer shared with a child's output.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// prefixWriter prefixes every line written to it.
type prefixWriter struct {
	w       io.Writer
	prefix  string
	midLine bool
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	var out []byte
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if !p.midLine {
			out = append(out, p.prefix...)
		}
		out = append(out, line...)
		p.midLine = line[len(line)-1] != '\n'
	}
	if _, err := p.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}
