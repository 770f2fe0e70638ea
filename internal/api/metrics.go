package api

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ledgerd/ledgerd/internal/node"
)

// metrics counts requests by route and status, and their latencies by
// route. Routes are endpoint patterns (bounded), never raw paths.
type metrics struct {
	buckets []float64 // upper bounds of the latency histogram, seconds

	mu       sync.Mutex
	requests map[routeCode]uint64
	latency  map[string]*histogram
}

type routeCode struct {
	route string
	code  int
}

// histogram is a Prometheus histogram; counts[i] counts observations in
// (buckets[i-1], buckets[i]], and the last one those above every bound.
type histogram struct {
	counts []uint64
	sum    float64
	count  uint64
}

func newMetrics() *metrics {
	return &metrics{
		buckets:  []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		requests: map[routeCode]uint64{},
		latency:  map[string]*histogram{},
	}
}

// observe records one request.
func (m *metrics) observe(route string, code int, d time.Duration) {
	if code == 0 {
		code = http.StatusOK
	}
	sec := d.Seconds()
	i, _ := slices.BinarySearch(m.buckets, sec)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[routeCode{route, code}]++
	h := m.latency[route]
	if h == nil {
		h = &histogram{counts: make([]uint64, len(m.buckets)+1)}
		m.latency[route] = h
	}
	h.counts[i]++
	h.sum += sec
	h.count++
}

// writeTo renders the request metrics in the Prometheus text format.
func (m *metrics) writeTo(b *bytes.Buffer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	keys := make([]routeCode, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b routeCode) int {
		return cmpOr(strings.Compare(a.route, b.route), a.code-b.code)
	})
	header(b, "ledgerd_http_requests_total", "counter", "HTTP requests by route and status code.")
	for _, k := range keys {
		fmt.Fprintf(b, "ledgerd_http_requests_total{route=%s,code=\"%d\"} %d\n", label(k.route), k.code, m.requests[k])
	}
	routes := make([]string, 0, len(m.latency))
	for r := range m.latency {
		routes = append(routes, r)
	}
	slices.Sort(routes)
	header(b, "ledgerd_http_request_duration_seconds", "histogram", "HTTP request latency by route.")
	for _, r := range routes {
		h := m.latency[r]
		var cum uint64
		for i, le := range m.buckets {
			cum += h.counts[i]
			fmt.Fprintf(b, "ledgerd_http_request_duration_seconds_bucket{route=%s,le=\"%s\"} %d\n", label(r), formatFloat(le), cum)
		}
		fmt.Fprintf(b, "ledgerd_http_request_duration_seconds_bucket{route=%s,le=\"+Inf\"} %d\n", label(r), h.count)
		fmt.Fprintf(b, "ledgerd_http_request_duration_seconds_sum{route=%s} %s\n", label(r), formatFloat(h.sum))
		fmt.Fprintf(b, "ledgerd_http_request_duration_seconds_count{route=%s} %d\n", label(r), h.count)
	}
}

func cmpOr(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

func header(b *bytes.Buffer, name, typ, help string) {
	fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
}

func sample(b *bytes.Buffer, name, typ, help string, v uint64) {
	header(b, name, typ, help)
	fmt.Fprintf(b, "%s %d\n", name, v)
}

// label quotes a label value as the text format requires.
func label(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// getMetrics serves GET /metrics (any ledger user or member) in the
// Prometheus text exposition format.
func (s *Server) getMetrics(c *call) error {
	var b bytes.Buffer
	s.metrics.writeTo(&b)
	st := s.node.Stats()
	committed, last := s.reads.CommittedSeqno(), s.reads.LastSeqno()
	sample(&b, "ledgerd_appends_total", "counter", "Transactions persisted by this node.", st.Appends.Load())
	sample(&b, "ledgerd_signatures_total", "counter", "Signature transactions persisted by this node.", st.Signatures.Load())
	sample(&b, "ledgerd_batches_total", "counter", "Batches persisted (one fsync each).", st.Batches.Load())
	sample(&b, "ledgerd_committed_seqno", "gauge", "Seqno of the last committed transaction.", committed)
	sample(&b, "ledgerd_last_seqno", "gauge", "Seqno of the last transaction in the local ledger.", last)
	sample(&b, "ledgerd_commit_lag_seqnos", "gauge", "Transactions in the local ledger that are not committed yet.", last-min(committed, last))
	sample(&b, "ledgerd_collections", "gauge", "Collections with entries in the latest state (committed or Pending).", uint64(s.reads.State().NumCollections()))
	writable, diskFull := uint64(1), uint64(0)
	if stall := s.node.Stalled(); stall != nil {
		writable = 0
		if errors.Is(stall.Err, node.ErrNoSpace) {
			diskFull = 1
		}
	}
	sample(&b, "ledgerd_writable", "gauge", "1 while the node accepts writes, 0 while persisting is stalled (disk full or no file descriptor).", writable)
	sample(&b, "ledgerd_disk_full", "gauge", "1 while writes are refused because the disk is full.", diskFull)
	sample(&b, "ledgerd_write_stalls_total", "counter", "Times persisting stalled for lack of disk space or file descriptors.", st.Stalls.Load())
	s.conns.writeMetrics(&b)
	if n, ok := s.ledgerBytes(); ok {
		sample(&b, "ledgerd_ledger_bytes", "gauge", "Size of the ledger files.", n)
	}
	h := c.w.Header()
	h.Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	h.Set(txIDHeader, c.served.String())
	c.w.WriteHeader(http.StatusOK)
	c.w.Write(b.Bytes())
	return nil
}

// ledgerBytes sums the sizes of the files in the ledger directory.
func (s *Server) ledgerBytes() (uint64, bool) {
	if s.cfg.LedgerDir == "" {
		return 0, false
	}
	ents, err := os.ReadDir(s.cfg.LedgerDir)
	if err != nil {
		s.log.Debug("couldn't list the ledger directory", "err", err)
		return 0, false
	}
	var n uint64
	for _, e := range ents {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() {
			n += uint64(info.Size())
		}
	}
	return n, true
}
