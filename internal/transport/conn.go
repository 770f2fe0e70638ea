package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// RaftProto is the ALPN protocol of a Raft stream on a TLS connection of its
// own (see the package doc, Raft streams).
const RaftProto = "ledgerd-raft/1"

// Bounds of a Raft stream on its own connection: the bytes of one batch
// (what one write carries), and how long one write may wait for the peer.
const (
	maxBatchBytes = 512 << 10
	writeTimeout  = 10 * time.Second
)

// errLegacyPeer: the peer does not offer RaftProto (an older node); its
// stream is an HTTP/2 POST (stream).
var errLegacyPeer = errors.New("transport: the peer has no " + RaftProto + " streams")

// streamConn opens p's Raft stream on a connection of its own (TLS, the
// same certificates and checks as every peer connection, ALPN RaftProto)
// and sends queued messages on it until it fails or p stops; worked says
// the peer accepted the stream (it answers one byte once it has checked
// this node). Each batch (everything queued, up to
// maxBatchBytes) is encrypted into TLS records gathered in memory and
// written with one system call. The peer writes nothing more: a read that
// ends is the end of the stream.
func (t *Transport) streamConn(p *peer) (worked bool, err error) {
	ctx, cancel := context.WithCancelCause(p.ctx)
	defer cancel(nil)
	raw, err := t.dial(ctx, "tcp", p.addr)
	if err != nil {
		return false, err
	}
	defer raw.Close()
	cc := &corkConn{Conn: raw}
	cfg := t.clientTLS(p.nodeID, p.addr)
	cfg.NextProtos = []string{RaftProto, "h2"}
	c := tls.Client(cc, cfg)
	hctx, hcancel := context.WithTimeout(ctx, 5*time.Second)
	err = c.HandshakeContext(hctx)
	hcancel()
	if err != nil {
		return false, err
	}
	if c.ConnectionState().NegotiatedProtocol != RaftProto {
		return false, errLegacyPeer
	}
	// The receiver accepts the stream with one byte once it has checked
	// this node (a refusal arrives as a TLS alert or the end of the
	// connection instead).
	raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return false, fmt.Errorf("transport: the peer refused the stream: %w", err)
	}
	raw.SetReadDeadline(time.Time{})
	// Closing the TCP connection ends a write blocked on the peer at once
	// (tls.Conn.Close would first try to send an alert).
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	go func() {
		var b [1]byte
		for {
			if _, err := c.Read(b[:]); err != nil {
				if errors.Is(err, io.EOF) {
					err = errStreamEnded
				}
				cancel(err)
				return
			}
		}
	}()
	enc := newEncoder(t.cfg.MaxMessageBytes)
	for {
		var m raftpb.Message
		select {
		case <-ctx.Done():
			return true, context.Cause(ctx)
		case m = <-p.queue:
		}
		enc.reset()
		t.encodeOrDrop(p, enc, &m)
		for enc.len() < maxBatchBytes {
			select {
			case m = <-p.queue:
				t.encodeOrDrop(p, enc, &m)
				continue
			default:
			}
			break
		}
		if enc.len() == 0 {
			continue
		}
		raw.SetWriteDeadline(time.Now().Add(writeTimeout))
		if err := cc.writeCorked(func() error { _, err := c.Write(enc.bytes()); return err }); err != nil {
			if ctx.Err() != nil {
				return true, context.Cause(ctx)
			}
			return true, err
		}
	}
}

// encodeOrDrop appends m's frame to enc, or drops m, logged and reported,
// if it is larger than MaxMessageBytes.
func (t *Transport) encodeOrDrop(p *peer, enc *encoder, m *raftpb.Message) {
	if err := enc.encode(m); err != nil {
		t.log.Error("dropped a Raft message larger than MaxMessageBytes", "peer", p.raftID, "type", m.Type.String(), "reason", err.Error())
		p.dropped.Add(1)
		t.cfg.Unreachable(p.raftID)
	}
}

// corkConn gathers the writes made during writeCorked (crypto/tls writes
// each record, of at most 16 KiB, on its own) and writes them to the
// connection at once.
type corkConn struct {
	net.Conn
	mu     sync.Mutex
	corked bool
	buf    []byte
}

func (c *corkConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked {
		c.buf = append(c.buf, b...)
		return len(b), nil
	}
	return c.Conn.Write(b)
}

// writeCorked runs write (writes to the TLS connection over c), gathering
// what it writes to c, then writes that with one call. A write by another
// goroutine meanwhile (crypto/tls answering a post-handshake message) is
// gathered or waits, so the records keep their order.
func (c *corkConn) writeCorked(write func() error) error {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
	err := write()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	if err == nil {
		_, err = c.Conn.Write(c.buf)
	}
	if cap(c.buf) > keepBuffer {
		c.buf = nil
	}
	c.buf = c.buf[:0]
	return err
}

// serveRaftConn serves a connection that negotiated RaftProto (the peer
// server's TLSNextProto): the peer passed the node certificate rule and
// Allowed at the handshake; its node id is taken from its certificate, and
// the stream is received as an HTTP/2 one is (receive).
func (t *Transport) serveRaftConn(_ *http.Server, c *tls.Conn, _ http.Handler) {
	t.mu.RLock()
	if t.closed {
		t.mu.RUnlock()
		return
	}
	t.handlers.Add(1)
	t.mu.RUnlock()
	defer t.handlers.Done()
	remote := c.RemoteAddr().String()
	var from string
	if cs := c.ConnectionState(); len(cs.PeerCertificates) > 0 {
		from, _ = nodeID(cs.PeerCertificates[0].PublicKey)
	}
	if from == "" || !t.cfg.Allowed(from) {
		t.log.Warn("refused a node-to-node request", "remote", remote, "node_id", from, "path", RaftProto)
		return
	}
	c.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := c.Write([]byte{0}); err != nil { // accepted (streamConn)
		return
	}
	c.SetWriteDeadline(time.Time{})
	t.receive(c, from, remote, t.isClosed)
}

// isClosed reports whether Close was called.
func (t *Transport) isClosed() bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.closed
}

// receive reads a peer's Raft stream from r: frames are decoded (bounded by
// MaxMessageBytes), checked and handed to Deliver in order. A message must
// be for this node and from the Raft id that AddPeer gave the
// authenticated node from; Allowed is asked again before each one, so a
// node retired mid-stream is cut off. quiet: whether a failed read is
// expected (the stream's end), not logged.
func (t *Transport) receive(r io.Reader, from, remote string, quiet func() bool) {
	dec := newDecoder(r, t.cfg.MaxMessageBytes)
	warned := false
	for {
		m, err := dec.next()
		if err != nil {
			if !errors.Is(err, io.EOF) && !quiet() {
				t.log.Warn("closed a Raft stream", "remote", remote, "node_id", from, "reason", err.Error())
			}
			return
		}
		if !t.cfg.Allowed(from) {
			t.log.Warn("closed a Raft stream: node no longer allowed", "remote", remote, "node_id", from)
			return
		}
		if m.To != t.cfg.RaftID || t.peerNodeID(m.From) != from {
			if !warned {
				t.log.Warn("dropped Raft messages not from the peer's Raft id or not for this node",
					"node_id", from, "from", m.From, "to", m.To)
				warned = true
			}
			continue
		}
		t.cfg.Deliver(m)
	}
}
