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
	"sync"
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
		DialContext:            t.dial,
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

// dial makes a connection to a peer (wrapped by wrapConn, in tests).
func (t *Transport) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := t.dialer().DialContext(ctx, network, addr)
	if err == nil && t.wrapConn != nil {
		c = t.wrapConn(c)
	}
	return c, err
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
	legacy := false // the peer has no RaftProto streams: HTTP/2 (stream)
	for p.ctx.Err() == nil {
		var worked bool
		var err error
		if legacy {
			worked, err = t.stream(p)
		} else {
			worked, err = t.streamConn(p)
		}
		if p.ctx.Err() != nil {
			return
		}
		if errors.Is(err, errLegacyPeer) {
			legacy = true
			continue
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

// stream opens one Raft stream to p as an HTTP/2 POST, for a peer that
// does not offer RaftProto (an older node), and sends queued messages on
// it until it fails or p stops; worked says the peer accepted the stream.
//
// The stream's request body is the peer's queue itself (streamBody): the
// HTTP/2 transport's goroutine that writes the body takes what is queued,
// as frames, with no goroutine or pipe between the queue and the
// connection. Before it, one request is answered on the connection
// (settingsSeen): the transport sizes a request body's DATA frames by the
// peer's SETTINGS_MAX_FRAME_SIZE as known when the body starts, the 16 KiB
// default until the peer's settings arrive, and a stream opened first on a
// new connection would be written 16 KiB at a time for its whole life.
func (t *Transport) stream(p *peer) (worked bool, err error) {
	ctx, cancel := context.WithCancel(p.ctx)
	defer cancel()
	if err := t.settingsSeen(ctx, p); err != nil {
		return false, err
	}
	body := &streamBody{t: t, p: p, ctx: ctx, enc: newEncoder(t.cfg.MaxMessageBytes), closed: make(chan struct{})}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+p.addr+RaftStreamPath, body)
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := p.client.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return false, fmt.Errorf("transport: the peer refused the stream: %s %s", resp.Status, body)
	}
	// The peer answers nothing more: the end of its response (or an error
	// reading it: the connection failed, a write to it failed, p stopped)
	// is the end of the stream.
	_, err = io.Copy(io.Discard, resp.Body)
	if ctx.Err() != nil {
		return true, context.Cause(ctx)
	}
	if werr := body.err(); werr != nil {
		return true, werr
	}
	if err == nil {
		err = errStreamEnded
	}
	return true, err
}

// settingsSeen has one request answered on p's connection before its Raft
// stream starts (see stream): GET RaftStreamPath, answered 204 (an older
// peer answers 405, which serves as well). Its answer follows the peer's
// settings on the connection.
func (t *Transport) settingsSeen(ctx context.Context, p *peer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+p.addr+RaftStreamPath, nil)
	if err != nil {
		return err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	return resp.Body.Close()
}

// streamBody is a Raft stream's request body. Each Read waits for a
// message in the peer's queue, then encodes it and every message queued
// behind it, up to the size of the caller's buffer (the HTTP/2 transport's,
// up to 512 KiB): one batch, one DATA frame, one flush. A frame that does
// not fit is returned by the next Reads. A message larger than
// MaxMessageBytes is dropped and reported.
type streamBody struct {
	t       *Transport
	p       *peer
	ctx     context.Context
	enc     *encoder
	pending []byte // encoded, not yet read: a suffix of enc's buffer

	closeOnce sync.Once
	closed    chan struct{} // Close: the transport stopped reading

	mu      sync.Mutex
	lastErr error // why a Read failed (err)
}

func (b *streamBody) Read(dst []byte) (int, error) {
	if len(b.pending) == 0 {
		b.enc.reset()
		select {
		case <-b.ctx.Done():
			return 0, b.fail(context.Cause(b.ctx))
		case <-b.closed:
			return 0, b.fail(errStreamEnded)
		case m := <-b.p.queue:
			b.encode(&m)
		}
		for b.enc.len() < len(dst) {
			select {
			case m := <-b.p.queue:
				b.encode(&m)
				continue
			default:
			}
			break
		}
		b.pending = b.enc.bytes()
		if len(b.pending) == 0 { // every message was dropped
			return 0, nil
		}
	}
	n := copy(dst, b.pending)
	b.pending = b.pending[n:]
	return n, nil
}

// encode appends m's frame, or drops m if it is too large.
func (b *streamBody) encode(m *raftpb.Message) { b.t.encodeOrDrop(b.p, b.enc, m) }

// Close is called by the HTTP/2 transport, possibly during a Read, when it
// stops writing the body (the response ended, the stream was reset).
func (b *streamBody) Close() error {
	b.closeOnce.Do(func() { close(b.closed) })
	return nil
}

func (b *streamBody) fail(err error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lastErr == nil {
		b.lastErr = err
	}
	return err
}

func (b *streamBody) err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lastErr
}

// serveRaft receives a peer's Raft stream sent as an HTTP/2 POST (by a
// node that does not dial RaftProto streams; receive).
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
	t.receive(r.Body, from, r.RemoteAddr, func() bool { return r.Context().Err() != nil })
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
