package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultUnauthenticatedIdleTimeout is the default
// Config.UnauthenticatedIdleTimeout.
const DefaultUnauthenticatedIdleTimeout = 5 * time.Second

// connTracker bounds the connections open at once and closes idle
// connections that never authenticated a request sooner than the others.
//
// Every connection costs a file descriptor, and the node needs descriptors
// of its own (a ledger chunk at each rollover, chunk files for reads): a
// client that holds many idle connections must not be able to starve it.
// So connections are capped (Config.MaxConnections, which ledgerd sizes
// below RLIMIT_NOFILE), and at the cap a new connection takes the place of
// the idle connection that is least worth keeping (unauthenticated first,
// then the longest idle), or is closed at once if every connection is busy.
// A connection that is idle (between requests, or before its first request,
// TLS handshake included) and has not authenticated a request is closed
// after Config.UnauthenticatedIdleTimeout; an authenticated one after the
// server's IdleTimeout.
type connTracker struct {
	max         int // 0: unbounded
	unauthIdle  time.Duration
	log         *slog.Logger
	mu          sync.Mutex
	conns       map[*trackedConn]struct{}
	refused     atomic.Uint64
	evicted     atomic.Uint64
	idleClosed  atomic.Uint64
	accepted    atomic.Uint64
	openGauge   atomic.Int64
	trackerUsed atomic.Bool
}

func newConnTracker(max int, unauthIdle time.Duration, log *slog.Logger) *connTracker {
	return &connTracker{max: max, unauthIdle: unauthIdle, log: log, conns: map[*trackedConn]struct{}{}}
}

// trackedConn is an accepted connection. Its state follows http.ConnState.
type trackedConn struct {
	net.Conn
	t             *connTracker
	authenticated atomic.Bool
	closeOnce     sync.Once

	mu        sync.Mutex // guards the fields below
	idle      bool
	idleSince time.Time
	gen       uint64 // bumped at each state change, so a stale timer does nothing
	timer     *time.Timer
}

// Close closes the connection and frees its place.
func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() {
		c.mu.Lock()
		if c.timer != nil {
			c.timer.Stop()
		}
		c.mu.Unlock()
		c.t.mu.Lock()
		delete(c.t.conns, c)
		c.t.mu.Unlock()
		c.t.openGauge.Add(-1)
	})
	return err
}

// setIdle marks the connection idle (or busy), arming the close of an
// unauthenticated idle connection.
func (c *trackedConn) setIdle(idle bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.idle = idle
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	if !idle {
		return
	}
	c.idleSince = time.Now()
	if c.authenticated.Load() || c.t.unauthIdle <= 0 {
		return
	}
	gen := c.gen
	c.timer = time.AfterFunc(c.t.unauthIdle, func() {
		c.mu.Lock()
		stale := c.gen != gen || !c.idle
		c.mu.Unlock()
		if !stale {
			c.t.idleClosed.Add(1)
			c.Close()
		}
	})
}

// listener wraps ln so that its connections are tracked and capped.
type trackingListener struct {
	net.Listener
	t *connTracker
}

// Accept returns the next connection, making room for it at the cap.
func (l *trackingListener) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if c := l.t.admit(conn); c != nil {
			return c, nil
		}
		l.t.refused.Add(1)
		l.t.log.Debug("connection refused: at the connection limit and none idle", "remote", conn.RemoteAddr().String(), "max", l.t.max)
		conn.Close()
	}
}

// admit tracks conn if there is room, evicting an idle connection at the
// cap; it returns nil if every connection is busy.
func (t *connTracker) admit(conn net.Conn) *trackedConn {
	for {
		t.mu.Lock()
		if t.max <= 0 || len(t.conns) < t.max {
			c := &trackedConn{Conn: conn, t: t}
			t.conns[c] = struct{}{}
			t.mu.Unlock()
			t.accepted.Add(1)
			t.openGauge.Add(1)
			c.setIdle(true) // until its first request: the TLS handshake and the request line
			return c
		}
		victim := t.victimLocked()
		t.mu.Unlock()
		if victim == nil {
			return nil
		}
		t.evicted.Add(1)
		victim.Close() // frees its place; try again
	}
}

// victimLocked picks the idle connection least worth keeping: one that never
// authenticated before one that did, then the longest idle. The caller
// holds t.mu.
func (t *connTracker) victimLocked() *trackedConn {
	var best *trackedConn
	var bestAuth bool
	var bestSince time.Time
	for c := range t.conns {
		c.mu.Lock()
		idle, since := c.idle, c.idleSince
		c.mu.Unlock()
		if !idle {
			continue
		}
		auth := c.authenticated.Load()
		if best == nil || (bestAuth && !auth) || (bestAuth == auth && since.Before(bestSince)) {
			best, bestAuth, bestSince = c, auth, since
		}
	}
	return best
}

// connState is http.Server.ConnState.
func (t *connTracker) connState(conn net.Conn, state http.ConnState) {
	c := tracked(conn)
	if c == nil {
		return
	}
	switch state {
	case http.StateActive:
		c.setIdle(false)
	case http.StateIdle:
		c.setIdle(true)
	case http.StateHijacked, http.StateClosed:
		c.setIdle(false)
	}
}

type connKey struct{}

// connContext is http.Server.ConnContext: it lets a request mark its
// connection authenticated.
//
// It also gives the connection its session (forward.go).
func (t *connTracker) connContext(ctx context.Context, conn net.Conn) context.Context {
	ctx = context.WithValue(ctx, sessionKey{}, &session{})
	if c := tracked(conn); c != nil {
		return context.WithValue(ctx, connKey{}, c)
	}
	return ctx
}

// markAuthorized records that a request on the connection of ctx was
// authenticated as a known user or member: the connection then gets the
// server's full idle timeout. (A self-signed certificate authenticates as
// some id, so authentication alone proves nothing here.)
func markAuthorized(ctx context.Context) {
	if c, ok := ctx.Value(connKey{}).(*trackedConn); ok {
		c.authenticated.Store(true)
	}
}

// tracked returns the tracked connection under conn (a *tls.Conn over it).
func tracked(conn net.Conn) *trackedConn {
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn()
	}
	c, _ := conn.(*trackedConn)
	return c
}

// writeMetrics renders the connection metrics.
func (t *connTracker) writeMetrics(b *bytes.Buffer) {
	if !t.trackerUsed.Load() {
		return
	}
	sample(b, "ledgerd_connections", "gauge", "Client connections open.", uint64(max(t.openGauge.Load(), 0)))
	if t.max > 0 {
		sample(b, "ledgerd_connections_max", "gauge", "Most client connections open at once (--max-connections).", uint64(t.max))
	}
	sample(b, "ledgerd_connections_accepted_total", "counter", "Client connections accepted.", t.accepted.Load())
	sample(b, "ledgerd_connections_refused_total", "counter", "Connections closed at once: at the limit, with no idle connection to close.", t.refused.Load())
	sample(b, "ledgerd_connections_evicted_total", "counter", "Idle connections closed to make room for a new one at the limit.", t.evicted.Load())
	sample(b, "ledgerd_connections_idle_unauthenticated_closed_total", "counter", "Connections closed after idling without authenticating a request.", t.idleClosed.Load())
}

// Listener wraps ln (the listener HTTPServer's server serves) so that its
// connections are capped at Config.MaxConnections and idle unauthenticated
// ones are closed after Config.UnauthenticatedIdleTimeout. See connTracker.
func (s *Server) Listener(ln net.Listener) net.Listener {
	s.conns.trackerUsed.Store(true)
	return &trackingListener{Listener: ln, t: s.conns}
}
