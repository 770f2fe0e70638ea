package transport

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/ledgerd/ledgerd/internal/identity"
)

// service is a test service: its first node's directory holds the service
// key and certificate that issue the other nodes' certificates.
type service struct {
	dir string
	ids *identity.Identities
}

func newService(t testing.TB) *service {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "svc")
	ids, err := identity.LoadOrCreate(dir, identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &service{dir: dir, ids: ids}
}

// node returns a new node identity of the service.
func (s *service) node(t testing.TB) *identity.Identities {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{identity.ServiceCertFile, identity.ServiceKeyFile, identity.LedgerSecretFile} {
		b, err := os.ReadFile(filepath.Join(s.dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ids, err := identity.LoadOrCreate(dir, identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// logBuf is a concurrency-safe log sink the tests read.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// waitLog waits until the log holds all the substrings.
func (l *logBuf) waitLog(t testing.TB, subs ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		s := l.String()
		ok := true
		for _, sub := range subs {
			ok = ok && strings.Contains(s, sub)
		}
		if ok {
			return
		}
		time.Sleep(5 * time.Millisecond) // polling the log, bounded by the deadline
	}
	t.Fatalf("log lacks %q:\n%s", subs, l.String())
}

// endpoint is a Transport serving on a loopback listener, recording what it
// receives and what it reports.
type endpoint struct {
	t      *Transport
	ids    *identity.Identities
	raftID uint64
	addr   string
	ln     net.Listener
	got    chan raftpb.Message
	log    *logBuf

	mu          sync.Mutex
	allowed     map[string]bool
	unreachable map[uint64]int
	unreachc    chan uint64
	snaps       []uint64
	served      chan struct{}
}

type opt func(*Config)

// newEndpoint starts a Transport for ids as raftID on addr ("" for a new
// port), allowing every node of its service unless told otherwise.
func newEndpoint(t testing.TB, ids *identity.Identities, raftID uint64, addr string, opts ...opt) *endpoint {
	t.Helper()
	e := &endpoint{ids: ids, raftID: raftID, got: make(chan raftpb.Message, 1<<16), log: &logBuf{},
		allowed: map[string]bool{}, unreachable: map[uint64]int{}, unreachc: make(chan uint64, 1<<16)}
	cfg := Config{
		RaftID:      raftID,
		Cert:        ids.Node.TLSCertificate(ids.Service),
		ServiceCert: ids.Service.Cert,
		Allowed: func(id string) bool {
			e.mu.Lock()
			defer e.mu.Unlock()
			return e.allowed[id] || e.allowed["*"]
		},
		Deliver: func(m raftpb.Message) { e.got <- m },
		Unreachable: func(id uint64) {
			e.mu.Lock()
			e.unreachable[id]++
			e.mu.Unlock()
			select {
			case e.unreachc <- id:
			default:
			}
		},
		ReportSnapshot: func(id uint64, failed bool) {
			e.mu.Lock()
			defer e.mu.Unlock()
			if failed {
				e.snaps = append(e.snaps, id)
			}
		},
		Logger: slog.New(slog.NewTextHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	e.allowed["*"] = true
	for _, o := range opts {
		o(&cfg)
	}
	tr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.t = tr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	deadline := time.Now().Add(10 * time.Second)
	for { // a restarted endpoint takes its port again; it may linger briefly
		ln, err = net.Listen("tcp", addr)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond) // waiting for the port, bounded by the deadline
	}
	if err != nil {
		t.Fatal(err)
	}
	e.ln, e.addr = ln, ln.Addr().String()
	e.served = make(chan struct{})
	go func() {
		defer close(e.served)
		if err := tr.Serve(ln); err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	t.Cleanup(e.close)
	return e
}

func (e *endpoint) close() {
	e.t.Close()
	<-e.served
}

func (e *endpoint) setAllowed(id string, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.allowed, "*")
	e.allowed[id] = ok
}

func (e *endpoint) unreachableCount(id uint64) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.unreachable[id]
}

// waitUnreachable waits until Unreachable(id) has been reported.
func (e *endpoint) waitUnreachable(t testing.TB, id uint64) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for e.unreachableCount(id) == 0 {
		select {
		case <-e.unreachc:
		case <-timeout:
			t.Fatalf("Unreachable(%d) was never reported", id)
		}
	}
}

// connect makes every endpoint a peer of every other.
func connect(t testing.TB, eps ...*endpoint) {
	t.Helper()
	for _, a := range eps {
		for _, b := range eps {
			if a != b {
				if err := a.t.AddPeer(b.raftID, b.ids.Node.ID, b.addr); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

func msg(from, to, index uint64, size int) raftpb.Message {
	m := raftpb.Message{Type: raftpb.MsgApp, From: from, To: to, Index: index, Term: 1}
	if size > 0 {
		m.Entries = []raftpb.Entry{{Index: index + 1, Term: 1, Data: bytes.Repeat([]byte{byte(index)}, size)}}
	}
	return m
}

// recv waits for the next message delivered to e.
func (e *endpoint) recv(t testing.TB) raftpb.Message {
	t.Helper()
	select {
	case m := <-e.got:
		return m
	case <-time.After(10 * time.Second):
		t.Fatalf("endpoint %d received nothing", e.raftID)
		return raftpb.Message{}
	}
}

// rawClient is an HTTP/2 client presenting cert, trusting any server.
func rawClient(cert tls.Certificate) *http2Client {
	return newHTTP2Client(&tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert},
		InsecureSkipVerify: true, NextProtos: []string{"h2"}})
}

var _ = context.Background

type http2Client = http.Client

func newHTTP2Client(c *tls.Config) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: c, Protocols: h2Only()}, Timeout: 10 * time.Second}
}
