package transport

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// streamOpeners open a Raft stream to e, as the peer whose certificate is
// cert, and write frames on it: as an HTTP/2 POST (an older node's) and on
// a connection of its own (RaftProto). What they return is what the server
// sends back, which ends when it ends the stream.
var streamOpeners = map[string]func(t *testing.T, cert tls.Certificate, e *endpoint, frames []byte) io.Reader{
	"http2": func(t *testing.T, cert tls.Certificate, e *endpoint, frames []byte) io.Reader {
		resp, pw, err := post(t, rawClient(cert), e, frames)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pw.Close(); resp.Body.Close() })
		return resp.Body
	},
	RaftProto: func(t *testing.T, cert tls.Certificate, e *endpoint, frames []byte) io.Reader {
		c, err := tls.Dial("tcp", e.addr, &tls.Config{Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true, NextProtos: []string{RaftProto}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if p := c.ConnectionState().NegotiatedProtocol; p != RaftProto {
			t.Fatalf("negotiated %q, want %q", p, RaftProto)
		}
		go c.Write(frames)
		return c
	},
}

// TestOversizedFrameEndsStream: a peer that announces a frame above
// MaxMessageBytes has its stream closed; what it sent before was
// delivered, nothing after.
func TestOversizedFrameEndsStream(t *testing.T) {
	for name, open := range streamOpeners {
		t.Run(name, func(t *testing.T) {
			svc := newService(t)
			a := newEndpoint(t, svc.node(t), 1, "", func(c *Config) { c.MaxMessageBytes = 1 << 20 })
			b := svc.node(t)
			if err := a.t.AddPeer(2, b.Node.ID, "127.0.0.1:1"); err != nil {
				t.Fatal(err)
			}
			frames := encodeAll(t, 1<<20, msg(2, 1, 1, 10))
			frames = binary.BigEndian.AppendUint32(frames, 0xfffffff0)
			frames = append(frames, encodeAll(t, 1<<20, msg(2, 1, 2, 10))...)
			back := open(t, b.Node.TLSCertificate(b.Service), a, frames)
			if m := a.recv(t); m.Index != 1 {
				t.Fatalf("got %+v", m)
			}
			done := make(chan struct{})
			go func() {
				io.Copy(io.Discard, back) // ends when the server ends the stream
				close(done)
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("the stream stayed open after an oversized frame")
			}
			a.log.waitLog(t, "closed a Raft stream", "frame too large")
			select {
			case m := <-a.got:
				t.Fatalf("a message after the oversized frame was delivered: %+v", m)
			default:
			}
		})
	}
}

// TestMessagesMustBeFromThePeer: a node cannot send messages in another
// Raft id's name, nor for another node; the stream goes on.
func TestMessagesMustBeFromThePeer(t *testing.T) {
	for name, open := range streamOpeners {
		t.Run(name, func(t *testing.T) {
			svc := newService(t)
			a := newEndpoint(t, svc.node(t), 1, "")
			b, c := svc.node(t), svc.node(t)
			a.t.AddPeer(2, b.Node.ID, "127.0.0.1:1")
			a.t.AddPeer(3, c.Node.ID, "127.0.0.1:1")
			frames := encodeAll(t, 1<<20, msg(3, 1, 1, 0), msg(2, 5, 2, 0), msg(9, 1, 3, 0), msg(2, 1, 4, 0))
			open(t, b.Node.TLSCertificate(b.Service), a, frames)
			if m := a.recv(t); m.Index != 4 || m.From != 2 {
				t.Fatalf("first message delivered: %+v, want the only one from 2 to 1", m)
			}
			a.log.waitLog(t, "dropped Raft messages not from the peer's Raft id")
		})
	}
}

// TestReconnectAfterRestart: a peer that goes away is reported unreachable;
// once it is back on its address, the stream is made again.
func TestReconnectAfterRestart(t *testing.T) {
	svc := newService(t)
	a := newEndpoint(t, svc.node(t), 1, "")
	bIDs := svc.node(t)
	b := newEndpoint(t, bIDs, 2, "")
	connect(t, a, b)
	a.t.Send([]raftpb.Message{msg(1, 2, 0, 0)})
	if m := b.recv(t); m.Index != 0 {
		t.Fatalf("got %+v", m)
	}
	b.close()
	a.t.Send([]raftpb.Message{msg(1, 2, 1, 0)})
	a.waitUnreachable(t, 2)

	b2 := newEndpoint(t, bIDs, 2, b.addr)
	connect(t, a, b2)
	i := uint64(2)
	deadline := time.Now().Add(10 * time.Second)
	for {
		a.t.Send([]raftpb.Message{msg(1, 2, i, 0)})
		select {
		case <-b2.got:
			// The stream is up: what is sent now arrives in order, after
			// any probe still in flight.
			const base = 1000
			for j := uint64(base); j < base+50; j++ {
				a.t.Send([]raftpb.Message{msg(1, 2, j, 0)})
			}
			m := b2.recv(t)
			for m.Index < base {
				m = b2.recv(t)
			}
			for j := uint64(base); j < base+50; j++ {
				if m.Index != j {
					t.Fatalf("after reconnecting: message %d, want %d", m.Index, j)
				}
				if j+1 < base+50 {
					m = b2.recv(t)
				}
			}
			return
		case <-time.After(20 * time.Millisecond): // retrying while the sender backs off
		}
		if time.Now().After(deadline) {
			t.Fatal("no message reached the restarted peer")
		}
		i++
	}
}

// TestRPCRoutes: a route added with Handle runs for an allowed node of the
// service, with its verified node id; Do reaches a peer by Raft id; a node
// revoked since its connection was made is refused at its next request,
// and its Raft stream is cut at its next message.
func TestRPCRoutes(t *testing.T) {
	svc := newService(t)
	a := newEndpoint(t, svc.node(t), 1, "")
	b := newEndpoint(t, svc.node(t), 2, "")
	connect(t, a, b)
	var calls atomic.Int32
	a.t.Handle("POST /echo", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		id, _ := PeerNodeID(r.Context())
		io.WriteString(w, id)
	}))
	do := func() (*http.Response, error) {
		req, _ := http.NewRequest(http.MethodPost, "/echo", strings.NewReader("x"))
		return b.t.Do(context.Background(), 1, req)
	}
	resp, err := do()
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != b.ids.Node.ID {
		t.Fatalf("echo: %s %q, want 200 and %s", resp.Status, body, b.ids.Node.ID)
	}
	if _, err := b.t.Do(context.Background(), 7, &http.Request{}); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("Do to an unknown peer: %v", err)
	}

	// b's stream to a works, then a revokes b.
	b.t.Send([]raftpb.Message{msg(2, 1, 1, 0)})
	if m := a.recv(t); m.Index != 1 {
		t.Fatalf("got %+v", m)
	}
	a.setAllowed(b.ids.Node.ID, false)
	a.setAllowed(a.ids.Node.ID, true)
	resp, err = do()
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("a revoked node's request: %s", resp.Status)
		}
	}
	if calls.Load() != 1 {
		t.Fatalf("the handler ran %d times, want once", calls.Load())
	}
	b.t.Send([]raftpb.Message{msg(2, 1, 2, 0)})
	a.log.waitLog(t, "node no longer allowed")
	b.waitUnreachable(t, 1)
	// The refused request closed its connection: its next stream is
	// refused at the handshake.
	a.log.waitLog(t, "refused a node-to-node connection", "node "+b.ids.Node.ID+" is not allowed")
	select {
	case m := <-a.got:
		t.Fatalf("a revoked node's message was delivered: %+v", m)
	default:
	}
}

// TestSnapshotDescriptorsSent: a MsgSnap (a descriptor: the peer fetches
// the file over an RPC route) is delivered with its metadata, in order with
// the other messages; one to an unknown peer is reported failed.
func TestSnapshotDescriptorsSent(t *testing.T) {
	svc := newService(t)
	a := newEndpoint(t, svc.node(t), 1, "")
	b := newEndpoint(t, svc.node(t), 2, "")
	connect(t, a, b)
	snap := &raftpb.Snapshot{Data: []byte(`{"seqno":9}`), Metadata: raftpb.SnapshotMetadata{Index: 9, Term: 2, ConfState: raftpb.ConfState{Voters: []uint64{1, 2}}}}
	a.t.Send([]raftpb.Message{{Type: raftpb.MsgSnap, From: 1, To: 2, Snapshot: snap}, msg(1, 2, 5, 0)})
	if m := b.recv(t); m.Type != raftpb.MsgSnap || m.Snapshot == nil || m.Snapshot.Metadata.Index != 9 || string(m.Snapshot.Data) != `{"seqno":9}` {
		t.Fatalf("got %+v, want the MsgSnap with its descriptor", m)
	}
	if m := b.recv(t); m.Type != raftpb.MsgApp || m.Index != 5 {
		t.Fatalf("got %+v, want the MsgApp", m)
	}
	a.t.Send([]raftpb.Message{{Type: raftpb.MsgSnap, From: 1, To: 7, Snapshot: snap}})
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.snaps) != 1 || a.snaps[0] != 7 {
		t.Fatalf("ReportSnapshot(failed) calls: %v, want [7] (the unknown peer)", a.snaps)
	}
}

// TestCloseStopsEverything: closed transports leave no goroutine behind
// (senders, streams, connections, handlers), and Send and AddPeer after
// Close do nothing.
func TestCloseStopsEverything(t *testing.T) {
	svc := newService(t)
	before := runtime.NumGoroutine()
	a := newEndpoint(t, svc.node(t), 1, "")
	b := newEndpoint(t, svc.node(t), 2, "")
	connect(t, a, b)
	a.t.Send([]raftpb.Message{msg(1, 2, 1, 100)})
	b.t.Send([]raftpb.Message{msg(2, 1, 1, 100)})
	b.recv(t)
	a.recv(t)
	a.close()
	b.close()
	a.t.Send([]raftpb.Message{msg(1, 2, 2, 0)})
	if err := a.t.AddPeer(2, b.ids.Node.ID, b.addr); !errors.Is(err, ErrClosed) {
		t.Fatalf("AddPeer after Close: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after Close:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond) // polling for goroutines to end, bounded by the deadline
	}
}

// TestClientInterface: a node's connections to its peers (its Raft stream
// and its RPCs) are made from ClientInterface, so a peer (or a firewall,
// or a test's partition proxy) sees it at that address; without it, from
// the system's choice.
func TestClientInterface(t *testing.T) {
	from := net.ParseIP("127.0.0.2") // Linux routes all of 127.0.0.0/8 to lo
	if ln, err := net.Listen("tcp", "127.0.0.2:0"); err != nil {
		t.Skipf("no second loopback address here: %v", err)
	} else {
		ln.Close()
	}
	svc := newService(t)
	a := newEndpoint(t, svc.node(t), 1, "")
	b := newEndpoint(t, svc.node(t), 2, "", func(c *Config) { c.ClientInterface = from })
	c := newEndpoint(t, svc.node(t), 3, "")
	connect(t, a, b, c)
	a.t.Handle("GET /remote", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.RemoteAddr)
	}))
	remote := func(e *endpoint) string {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "/remote", nil)
		resp, err := e.t.Do(context.Background(), 1, req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		host, _, err := net.SplitHostPort(string(body))
		if err != nil {
			t.Fatalf("remote address %q: %v", body, err)
		}
		return host
	}
	if got := remote(b); got != "127.0.0.2" {
		t.Fatalf("b's connection comes from %s, want its client interface 127.0.0.2", got)
	}
	if got := remote(c); got != "127.0.0.1" {
		t.Fatalf("c's connection comes from %s, want the system's choice 127.0.0.1", got)
	}
	// b's Raft stream works from there too.
	b.t.Send([]raftpb.Message{msg(2, 1, 1, 0)})
	if m := a.recv(t); m.From != 2 || m.Index != 1 {
		t.Fatalf("got %+v", m)
	}
}

// writeCounter counts the writes made on a connection (each a system call
// on a TCP connection).
type writeCounter struct {
	net.Conn
	n *atomic.Int64
}

func (c writeCounter) Write(p []byte) (int, error) {
	c.n.Add(1)
	return c.Conn.Write(p)
}

// sentWrites sends n messages of size bytes from a to b, one at a time,
// each received before the next, and returns the writes a made to its
// connection per message (after 10 unmeasured ones: crypto/tls grows its
// records over the first 128 KiB).
func sentWrites(t *testing.T, a, b *endpoint, size, n int) float64 {
	t.Helper()
	var writes atomic.Int64
	a.t.wrapConn = func(c net.Conn) net.Conn { return writeCounter{c, &writes} }
	connect(t, a, b)
	send := func(i uint64) {
		a.t.Send([]raftpb.Message{msg(1, 2, i, size)})
		if m := b.recv(t); m.Index != i {
			t.Fatalf("got message %d, want %d", m.Index, i)
		}
	}
	for i := range uint64(10) {
		send(i)
	}
	before := writes.Load()
	for i := range uint64(n) {
		send(10 + i)
	}
	return float64(writes.Load()-before) / float64(n)
}

// TestBatchIsOneWrite: a 45 KiB message (a Raft round's MsgApp under load)
// goes out on its stream's connection with one write, though crypto/tls
// makes three records of it (corkConn; three writes without it).
func TestBatchIsOneWrite(t *testing.T) {
	svc := newService(t)
	a := newEndpoint(t, svc.node(t), 1, "")
	b := newEndpoint(t, svc.node(t), 2, "")
	if got := sentWrites(t, a, b, 45<<10, 20); got != 1 {
		t.Fatalf("%.1f writes per 45 KiB message, want 1", got)
	}
}

// TestLegacyStream: to a peer that does not offer RaftProto (an older
// node), the stream is an HTTP/2 POST, and a 45 KiB message goes out in one
// DATA frame, so three writes (three TLS records). That fails if the
// stream is opened before the server's settings are known
// (settingsSeen): the body is then written in frames of 16 KiB, each
// flushed and split into two records, five writes per message.
func TestLegacyStream(t *testing.T) {
	svc := newService(t)
	a := newEndpoint(t, svc.node(t), 1, "")
	b := newEndpoint(t, svc.node(t), 2, "")
	b.t.noRaftProto.Store(true)
	if got := sentWrites(t, a, b, 45<<10, 20); got > 3.5 {
		t.Fatalf("%.1f writes per 45 KiB message, want 3 (one DATA frame in three TLS records)", got)
	}
}
