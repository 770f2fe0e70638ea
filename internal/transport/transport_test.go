package transport

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/ledgerd/ledgerd/internal/identity"
)

// TestDeliversInOrder: three endpoints send each other messages, each
// receiver gets every sender's messages in the order sent.
func TestDeliversInOrder(t *testing.T) {
	svc := newService(t)
	var eps []*endpoint
	for id := uint64(1); id <= 3; id++ {
		eps = append(eps, newEndpoint(t, svc.node(t), id, ""))
	}
	connect(t, eps...)
	const n = 500
	for i := range uint64(n) {
		for _, a := range eps {
			var batch []raftpb.Message
			for _, b := range eps {
				if a != b {
					batch = append(batch, msg(a.raftID, b.raftID, i, int(i%7)*100))
				}
			}
			a.t.Send(batch)
		}
	}
	for _, b := range eps {
		next := map[uint64]uint64{}
		for range 2 * n {
			m := b.recv(t)
			if m.To != b.raftID || m.Index != next[m.From] {
				t.Fatalf("endpoint %d: got message %d from %d, want %d", b.raftID, m.Index, m.From, next[m.From])
			}
			if want := int(m.Index%7) * 100; want > 0 && len(m.Entries[0].Data) != want {
				t.Fatalf("message %d from %d: %d bytes of data, want %d", m.Index, m.From, len(m.Entries[0].Data), want)
			}
			next[m.From]++
		}
	}
}

// post opens a Raft stream to e with client as the peer and writes frames.
func post(t *testing.T, client *http.Client, e *endpoint, frames []byte) (*http.Response, *io.PipeWriter, error) {
	t.Helper()
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, "https://"+e.addr+RaftStreamPath, pr)
	go pw.Write(frames)
	resp, err := client.Do(req)
	return resp, pw, err
}

// TestServerRefuses: the peer server refuses, at the handshake, a user
// certificate, a node of another service and a node that Allowed refuses,
// and logs why; a node of the service that is allowed gets through.
func TestServerRefuses(t *testing.T) {
	svc := newService(t)
	a := newEndpoint(t, svc.node(t), 1, "")
	good, refused := svc.node(t), svc.node(t)
	other := newService(t)
	a.setAllowed(good.Node.ID, true)
	a.setAllowed(refused.Node.ID, false)
	if err := a.t.AddPeer(2, good.Node.ID, "127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	if err := a.t.AddPeer(3, refused.Node.ID, "127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	userPEM, userKey, err := identity.NewClientIdentity("user0", nil)
	if err != nil {
		t.Fatal(err)
	}
	user, err := tls.X509KeyPair(userPEM, userKey)
	if err != nil {
		t.Fatal(err)
	}
	frame := encodeAll(t, 1<<20, msg(2, 1, 42, 10))
	cases := []struct {
		name   string
		cert   tls.Certificate
		reason string
	}{
		{"a user certificate", user, "subject CN"},
		{"a node of another service", other.ids.Node.TLSCertificate(other.ids.Service), "unknown authority"},
		{"a node Allowed refuses", refused.Node.TLSCertificate(refused.Service), "not allowed"},
	}
	for _, c := range cases {
		resp, pw, err := post(t, rawClient(c.cert), a, frame)
		pw.Close()
		if err == nil {
			resp.Body.Close()
			t.Fatalf("%s: the stream was accepted (%s)", c.name, resp.Status)
		}
		a.log.waitLog(t, "refused a node-to-node connection", c.reason)
	}
	// The control: the same request with an allowed node's certificate.
	resp, pw, err := post(t, rawClient(good.Node.TLSCertificate(good.Service)), a, frame)
	if err != nil {
		t.Fatalf("an allowed node: %v", err)
	}
	defer resp.Body.Close()
	defer pw.Close()
	if m := a.recv(t); m.Index != 42 || m.From != 2 {
		t.Fatalf("got %+v", m)
	}
	select {
	case m := <-a.got:
		t.Fatalf("a refused peer's message was delivered: %+v", m)
	default:
	}
}

// TestClientRefuses: the dialling side refuses a server that is not the node
// it meant to reach, a node of another service, or a node Allowed refuses;
// it reports the peer unreachable and says why.
func TestClientRefuses(t *testing.T) {
	svc := newService(t)
	other := newService(t)
	a := newEndpoint(t, svc.node(t), 1, "")
	b := newEndpoint(t, svc.node(t), 2, "")
	c := newEndpoint(t, svc.node(t), 3, "")
	x := newEndpoint(t, other.node(t), 4, "")
	connect(t, b, c)
	for _, e := range []*endpoint{b, c, x} {
		if err := e.t.AddPeer(1, a.ids.Node.ID, a.addr); err != nil {
			t.Fatal(err)
		}
	}

	// b's address, c's node id.
	if err := a.t.AddPeer(2, c.ids.Node.ID, b.addr); err != nil {
		t.Fatal(err)
	}
	a.t.Send([]raftpb.Message{msg(1, 2, 1, 0)})
	a.waitUnreachable(t, 2)
	a.log.waitLog(t, "refused a node-to-node server", "not the node "+c.ids.Node.ID+" dialled")

	// A node of another service.
	if err := a.t.AddPeer(4, x.ids.Node.ID, x.addr); err != nil {
		t.Fatal(err)
	}
	a.t.Send([]raftpb.Message{msg(1, 4, 1, 0)})
	a.waitUnreachable(t, 4)
	a.log.waitLog(t, "refused a node-to-node server", "unknown authority")

	// A node of the service that a no longer allows (c still allows a).
	a.setAllowed(c.ids.Node.ID, false)
	a.setAllowed(b.ids.Node.ID, true)
	if err := a.t.AddPeer(3, c.ids.Node.ID, c.addr); err != nil {
		t.Fatal(err)
	}
	a.t.Send([]raftpb.Message{msg(1, 3, 1, 0)})
	a.waitUnreachable(t, 3)
	a.log.waitLog(t, "refused a node-to-node server", "node "+c.ids.Node.ID+" is not allowed")

	// None of them received anything; the right mapping works.
	for _, e := range []*endpoint{b, c, x} {
		select {
		case m := <-e.got:
			t.Fatalf("endpoint %d received %+v from a refused stream", e.raftID, m)
		default:
		}
	}
	if err := a.t.AddPeer(2, b.ids.Node.ID, b.addr); err != nil {
		t.Fatal(err)
	}
	a.t.Send([]raftpb.Message{msg(1, 2, 7, 0)})
	if m := b.recv(t); m.Index != 7 {
		t.Fatalf("got %+v", m)
	}
}

// TestDeadAndSlowPeers: with one peer dead (nothing listens) and one slow
// (its Deliver blocks), Send never blocks, the healthy peer gets every
// message in order, and both others are reported unreachable.
func TestDeadAndSlowPeers(t *testing.T) {
	svc := newService(t)
	release := make(chan struct{})
	var once sync.Once
	releaseSlow := func() { once.Do(func() { close(release) }) }
	a := newEndpoint(t, svc.node(t), 1, "", func(c *Config) { c.QueueSize = 16 })
	slow := newEndpoint(t, svc.node(t), 2, "", func(c *Config) {
		deliver := c.Deliver
		c.Deliver = func(m raftpb.Message) {
			<-release
			deliver(m)
		}
	})
	defer releaseSlow() // before the endpoints' cleanup
	healthy := newEndpoint(t, svc.node(t), 4, "")
	connect(t, a, slow, healthy)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := ln.Addr().String()
	ln.Close()
	if err := a.t.AddPeer(3, svc.node(t).Node.ID, deadAddr); err != nil {
		t.Fatal(err)
	}

	const rounds = 300
	const size = 64 << 10 // 300 × 64 KiB: far beyond the slow peer's queue and HTTP/2 windows
	errc := make(chan error, 1)
	go func() {
		for i := range uint64(rounds) {
			start := time.Now()
			a.t.Send([]raftpb.Message{msg(1, 2, i, size), msg(1, 3, i, size), msg(1, 4, i, size)})
			if d := time.Since(start); d > time.Second {
				errc <- fmt.Errorf("Send took %v", d)
				return
			}
			select {
			case m := <-healthy.got:
				if m.Index != i || m.From != 1 {
					errc <- fmt.Errorf("healthy peer got message %d from %d, want %d from 1", m.Index, m.From, i)
					return
				}
			case <-time.After(10 * time.Second):
				errc <- fmt.Errorf("healthy peer did not get message %d", i)
				return
			}
		}
		errc <- nil
	}()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Send blocked")
	}
	a.waitUnreachable(t, 2)
	a.waitUnreachable(t, 3)
	if n := a.unreachableCount(4); n != 0 {
		t.Fatalf("the healthy peer was reported unreachable %d times", n)
	}
	if a.t.dropped(2) == 0 {
		t.Fatal("nothing to the slow peer was dropped: its queue never filled")
	}
	// Released, the slow peer gets what was not dropped, in order, and the
	// stream works again: a marker sent now arrives (resent while the
	// queue may still be full).
	releaseSlow()
	last, marker := int64(-1), uint64(rounds)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case m := <-slow.got:
			if int64(m.Index) <= last {
				t.Fatalf("slow peer: message %d after %d", m.Index, last)
			}
			if m.Index >= rounds {
				return
			}
			last = int64(m.Index)
		case <-time.After(50 * time.Millisecond): // idle: send a marker again
			a.t.Send([]raftpb.Message{msg(1, 2, marker, 0)})
			marker++
		}
	}
	t.Fatal("the slow peer never received a marker after it was released")
}
