package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// Reconnection backoff of a peer's stream: doubling from minBackoff to
// maxBackoff, with ±25% jitter, back to minBackoff after a stream that
// worked.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = time.Second
)

// peer is one outgoing Raft stream and the RPC client of one peer.
type peer struct {
	raftID       uint64
	nodeID, addr string
	queue        chan raftpb.Message
	tr           *http.Transport
	client       *http.Client
	ctx          context.Context
	cancel       context.CancelFunc
	done         chan struct{}
	dropped      atomic.Uint64
	lastErr      string // the sender's last logged failure
}

func (t *Transport) newPeer(raftID uint64, nodeID, addr string) *peer {
	tr := &http.Transport{
		TLSClientConfig:        t.clientTLS(nodeID, addr),
		Protocols:              h2Only(),
		HTTP2:                  h2Config(),
		DialContext:            t.dialer().DialContext,
		TLSHandshakeTimeout:    5 * time.Second,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &peer{
		raftID: raftID, nodeID: nodeID, addr: addr,
		queue:  make(chan raftpb.Message, t.cfg.QueueSize),
		tr:     tr,
		client: &http.Client{Transport: tr},
		ctx:    ctx, cancel: cancel,
		done: make(chan struct{}),
	}
}

// dialer makes the peers' connections, from ClientInterface if set.
func (t *Transport) dialer() *net.Dialer {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	if t.cfg.ClientInterface != nil {
		d.LocalAddr = &net.TCPAddr{IP: t.cfg.ClientInterface}
	}
	return d
}

// stop ends the peer's sender and closes its connections.
func (p *peer) stop() {
	p.cancel()
	<-p.done
	p.tr.CloseIdleConnections()
}

// runPeer is the peer's sender: it keeps one stream open, reconnecting with
// backoff, and between streams drops what is queued (stale by the time a
// stream is back; Raft resends) and reports the peer unreachable.
func (t *Transport) runPeer(p *peer) {
	defer close(p.done)
	backoff := minBackoff
	for p.ctx.Err() == nil {
		worked, err := t.stream(p)
		if p.ctx.Err() != nil {
			return
		}
		if worked {
			backoff = minBackoff
		}
		t.logFailure(p, err)
		t.cfg.Unreachable(p.raftID)
		if !t.waitDropping(p, backoff/4*3+rand.N(backoff/2)) {
			return
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// logFailure logs a stream failure at Warn when it differs from the last
// one, at Debug when it repeats.
func (t *Transport) logFailure(p *peer, err error) {
	msg := err.Error()
	level := slog.LevelWarn
	if msg == p.lastErr {
		level = slog.LevelDebug
	}
	p.lastErr = msg
	t.log.Log(context.Background(), level, "node-to-node stream down", "peer", p.raftID, "node_id", p.nodeID,
		"addr", p.addr, "reason", msg)
}

// waitDropping waits d, dropping queued messages and reporting the peer
// unreachable for them. It returns false if the peer is stopped.
func (t *Transport) waitDropping(p *peer, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return false
		case <-timer.C:
			return true
		case <-p.queue:
			p.dropped.Add(1)
			t.cfg.Unreachable(p.raftID)
		}
	}
}

var errStreamEnded = errors.New("transport: the peer ended the stream")

// stream opens one Raft stream to p and sends queued messages on it until
// it fails or p stops; worked says the peer accepted the stream.
func (t *Transport) stream(p *peer) (worked bool, err error) {
	ctx, cancel := context.WithCancel(p.ctx)
	defer cancel()
	pr, pw := io.Pipe()
	defer pw.CloseWithError(errStreamEnded)
	// A write blocked on the peer's flow control ends when the peer is
	// stopped.
	stopWriting := context.AfterFunc(ctx, func() { pw.CloseWithError(ctx.Err()) })
	defer stopWriting()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+p.addr+RaftStreamPath, pr)
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := p.client.Do(req)
	if err != nil {
		pw.CloseWithError(err)
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		pw.CloseWithError(errStreamEnded)
		return false, fmt.Errorf("transport: the peer refused the stream: %s %s", resp.Status, body)
	}
	// The peer answers nothing more: the end of its response is the end of
	// the stream.
	go func() {
		io.Copy(io.Discard, resp.Body)
		pw.CloseWithError(errStreamEnded)
		cancel()
	}()
	enc := newEncoder(pw, t.cfg.MaxMessageBytes)
	for {
		var m raftpb.Message
		select {
		case <-ctx.Done():
			return true, context.Cause(ctx)
		case m = <-p.queue:
		}
		for {
			if err := enc.encode(&m); err != nil {
				if !errors.Is(err, ErrFrameTooLarge) {
					return true, err
				}
				t.log.Error("dropped a Raft message larger than MaxMessageBytes", "peer", p.raftID, "type", m.Type.String(), "reason", err.Error())
				p.dropped.Add(1)
				t.cfg.Unreachable(p.raftID)
			}
			select {
			case m = <-p.queue:
				continue
			default:
			}
			break
		}
		if err := enc.flush(); err != nil {
			return true, err
		}
	}
}

// serveRaft receives a peer's Raft stream: frames are decoded (bounded by
// MaxMessageBytes), checked and handed to Deliver in order. A message must
// be for this node and from the Raft id that AddPeer gave the
// authenticated node; Allowed is asked again before each one, so a node
// retired mid-stream is cut off.
func (t *Transport) serveRaft(w http.ResponseWriter, r *http.Request) {
	t.mu.RLock()
	if t.closed {
		t.mu.RUnlock()
		writeError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "closing")
		return
	}
	t.handlers.Add(1)
	t.mu.RUnlock()
	defer t.handlers.Done()

	from, _ := PeerNodeID(r.Context())
	if r.ProtoMajor != 2 {
		writeError(w, http.StatusHTTPVersionNotSupported, "HTTPVersionNotSupported", "the Raft stream needs HTTP/2")
		return
	}
	w.WriteHeader(http.StatusOK)
	if err := http.NewResponseController(w).Flush(); err != nil {
		return
	}
	dec := newDecoder(r.Body, t.cfg.MaxMessageBytes)
	warned := false
	for {
		m, err := dec.next()
		if err != nil {
			if !errors.Is(err, io.EOF) && r.Context().Err() == nil {
				t.log.Warn("closed a Raft stream", "remote", r.RemoteAddr, "node_id", from, "reason", err.Error())
			}
			return
		}
		if !t.cfg.Allowed(from) {
			t.log.Warn("closed a Raft stream: node no longer allowed", "remote", r.RemoteAddr, "node_id", from)
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

// peerNodeID is the node id AddPeer gave raftID ("" if none).
func (t *Transport) peerNodeID(raftID uint64) string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if p := t.peers[raftID]; p != nil {
		return p.nodeID
	}
	return ""
}
