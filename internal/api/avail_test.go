package api_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/testfs"
)

// TestDiskFullRefusesWritesServesReads: on a full disk writes answer 507
// InsufficientStorage with Retry-After, while reads, /node/state, /healthz
// and /metrics are served and say so; once space returns writes succeed
// again, without a restart.
func TestDiskFullRefusesWritesServesReads(t *testing.T) {
	e := newEnv(t, envOptions{dir: testfs.Tmpfs(t, 8<<20)})
	id := e.write(e.contributor, v2022, "", "before")
	e.commit(id)
	free := testfs.Fill(t, e.dir)
	big := strings.Repeat("x", 7000)
	var r *response
	for i := 0; ; i++ {
		r = e.contributor.post(q("/app/transactions", v2022), map[string]string{"contents": big})
		if r.status != 200 {
			break
		}
		if i > 2000 {
			t.Fatal("2000 writes accepted on a full disk")
		}
	}
	r.expect(507, "InsufficientStorage")
	if r.header.Get("Retry-After") == "" {
		t.Error("507 without Retry-After")
	}
	e.contributor.post(q("/app/transactions", v2022), map[string]string{"contents": "x"}).expect(507, "InsufficientStorage")
	got := e.reader.get(q("/app/transactions/"+id.String(), v2022)).expect(200, "").object()
	if entry, _ := got["entry"].(map[string]any); entry["contents"] != "before" {
		t.Fatalf("read on a full disk: %v", got)
	}
	e.reader.get(q("/app/transactions/"+id.String()+"/receipt", v2022)).expect(200, "")
	st := e.member.get("/node/state").object()
	if st["writable"] != false || st["write_stall"] != "disk_full" || st["write_stall_since"] == nil {
		t.Fatalf("node state on a full disk: %v", st)
	}
	if h := e.anonymous.get("/healthz").expect(200, "").object(); h["status"] != "degraded" || h["reason"] != "disk_full" {
		t.Fatalf("healthz on a full disk: %v", h)
	}
	m := string(e.admin.get("/metrics").expect(200, "").body)
	for _, want := range []string{"ledgerd_writable 0\n", "ledgerd_disk_full 1\n", "ledgerd_write_stalls_total 1\n"} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics on a full disk lack %q", want)
		}
	}

	free()
	waitFor(t, "writes to resume", func() bool { return e.node.Stalled() == nil })
	after := e.write(e.contributor, v2022, "", "after")
	e.commit(after)
	if st := e.member.get("/node/state").object(); st["writable"] != true || st["write_stall"] != nil {
		t.Fatalf("node state once space returned: %v", st)
	}
}

// dialIdle opens a TLS connection without a client certificate, makes one
// GET /healthz on it and leaves it open.
func dialIdle(t *testing.T, e *env) *tls.Conn { t.Helper(); return dialIdleAs(t, e, nil, "/healthz") }

// dialIdleAs opens a TLS connection with cred (or none), makes one GET of
// path on it and leaves it open.
func dialIdleAs(t *testing.T, e *env, cred *credential, path string) *tls.Conn {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(e.ids.Service.Cert)
	tc := &tls.Config{RootCAs: pool, NextProtos: []string{"http/1.1"}}
	if cred != nil {
		tc.Certificates = []tls.Certificate{cred.cert}
	}
	c, err := tls.Dial("tcp", strings.TrimPrefix(e.base, "https://"), tc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %v %v", path, resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return c
}

// closedByServer waits up to d for the server to close c.
func closedByServer(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 1))
	return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
}

// TestConnectionLimit: idle unauthenticated connections cannot hold every
// connection slot: at the limit, a user's new connection takes the place of
// the longest idle unauthenticated one, and they are closed after the short
// unauthenticated idle timeout anyway.
func TestConnectionLimit(t *testing.T) {
	e := newEnv(t, envOptions{maxConnections: 6, unauthIdle: time.Hour})
	var idle []*tls.Conn
	for range 6 {
		idle = append(idle, dialIdle(t, e))
	}
	id := e.write(e.contributor, v2022, "", "through the limit")
	e.commit(id)
	e.reader.get(q("/app/transactions/"+id.String(), v2022)).expect(200, "")
	if !closedByServer(idle[0], 5*time.Second) {
		t.Fatal("the longest idle unauthenticated connection was not closed to make room")
	}
	m := string(e.admin.get("/metrics").expect(200, "").body)
	for _, want := range []string{"ledgerd_connections_max 6\n", "ledgerd_connections_evicted_total "} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q:\n%s", want, m)
		}
	}
	if strings.Contains(m, "ledgerd_connections_evicted_total 0\n") {
		t.Error("no eviction counted")
	}
}

func TestIdleUnauthenticatedConnectionsClosedSooner(t *testing.T) {
	e := newEnv(t, envOptions{unauthIdle: time.Second})
	c := dialIdle(t, e)
	if !closedByServer(c, 5*time.Second) {
		t.Fatal("an idle unauthenticated connection stayed open")
	}
	// A connection that sent nothing at all, not even a TLS handshake.
	raw, err := net.Dial("tcp", strings.TrimPrefix(e.base, "https://"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if !closedByServer(raw, 5*time.Second) {
		t.Fatal("a connection that never handshook stayed open")
	}
	// Over HTTP/2 too: the anonymous client's connection is closed once idle.
	if r := e.anonymous.get("/healthz").expect(200, ""); r.proto != 2 {
		t.Fatalf("anonymous client spoke HTTP/%d, want 2", r.proto)
	}
	waitFor(t, "the idle HTTP/2 connection to close", func() bool {
		return metric(t, e, "ledgerd_connections_idle_unauthenticated_closed_total") >= 3
	})
	// A user's connection keeps the server's idle timeout.
	user := dialIdleAs(t, e, e.admin.cred, "/metrics")
	if closedByServer(user, 2500*time.Millisecond) {
		t.Fatal("an idle connection of a user was closed after the unauthenticated idle timeout")
	}
}

// metric returns the value of an unlabelled metric.
func metric(t *testing.T, e *env, name string) int {
	t.Helper()
	for _, line := range strings.Split(string(e.admin.get("/metrics").expect(200, "").body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("metric %s: %q", name, line)
			}
			return n
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
