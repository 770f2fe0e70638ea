package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// UsageError is an error in the Options, not in the run.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// target is the server under test and how to reach it.
type target struct {
	addr    string // host:port to dial
	host    string // Host header
	prefix  string // path prefix of the endpoint URL, without a trailing slash
	tls     *tls.Config
	timeout time.Duration
}

func newTarget(o Options) (*target, error) {
	u, err := url.Parse(o.Endpoint)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" {
		return nil, &UsageError{fmt.Sprintf("--endpoint %q: want https://HOST[:PORT]", o.Endpoint)}
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "443")
	}
	servicePEM, err := os.ReadFile(o.ServiceCert)
	if err != nil {
		return nil, fmt.Errorf("service certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(servicePEM) {
		return nil, fmt.Errorf("service certificate %s: no PEM certificate in it", o.ServiceCert)
	}
	cert, err := tls.LoadX509KeyPair(o.CertFile, o.CertFile)
	if err != nil {
		return nil, fmt.Errorf("client certificate and key %s: %w", o.CertFile, err)
	}
	return &target{
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
		timeout: o.Timeout,
	}, nil
}

// request returns the bytes of one HTTP/1.1 request to path (with query).
func (t *target) request(method, path string, body []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: ledgerctl-bench\r\n", method, t.prefix, path, t.host)
	if body != nil {
		fmt.Fprintf(&b, "Content-Type: application/json\r\nContent-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}

// conn is one worker's keep-alive connection. It is not safe for
// concurrent use.
type conn struct {
	t     *target
	dials *atomic.Int64
	c     *tls.Conn
	br    *bufio.Reader
	// live is c, for interrupt, which may run concurrently.
	live atomic.Pointer[tls.Conn]
}

// reply is a response: its status, transaction id header, and the
// start of its body if it is an error or was asked for.
type reply struct {
	status int
	txID   string
	body   []byte
}

func (c *conn) dial(ctx context.Context) error {
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

func (c *conn) close() {
	if c.c != nil {
		c.live.Store(nil)
		c.c.Close()
		c.c, c.br = nil, nil
	}
}

// interrupt makes the request in flight, if any, fail now. It may be
// called concurrently with roundTrip.
func (c *conn) interrupt() {
	if tc := c.live.Load(); tc != nil {
		tc.SetDeadline(time.Now())
	}
}

// roundTrip sends one precomputed request and reads the whole response,
// within the timeout, keeping the body of an error answer, or of any answer
// if keepBody. On an error the connection is closed; the next call redials
// it.
func (c *conn) roundTrip(ctx context.Context, req []byte, keepBody bool) (reply, error) {
	if c.c == nil {
		if err := c.dial(ctx); err != nil {
			return reply{}, err
		}
	}
	c.c.SetDeadline(time.Now().Add(c.t.timeout))
	if _, err := c.c.Write(req); err != nil {
		c.close()
		return reply{}, err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.close()
		return reply{}, err
	}
	rep := reply{status: resp.StatusCode, txID: resp.Header.Get(txIDHeader)}
	if keepBody || resp.StatusCode/100 != 2 {
		rep.body, _ = io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		c.close()
		return reply{}, err
	}
	if resp.Close {
		c.close()
	}
	return rep, nil
}

// errorKind names a failed request for the error counts: the status and
// ACL error code, or the kind of connection failure.
func errorKind(rep reply, err error) string {
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

// errorSample is the details of a failed request, for the report.
func errorSample(kind string, rep reply, err error) string {
	if err != nil {
		return err.Error()
	}
	if len(rep.body) > 0 {
		return fmt.Sprintf("HTTP %d: %.300s", rep.status, bytes.TrimSpace(rep.body))
	}
	return kind
}

// Run connects, runs the append phase and the cheap-endpoint

// openConns opens n connections to t at once, exactly one per worker,
// before any phase. The returned stop function interrupts their blocked
// reads when ctx ends (unblocking the workers) and, called at the end,
// closes them.
func openConns(ctx context.Context, t *target, n int, dials *atomic.Int64) ([]*conn, func(), error) {
	conns := make([]*conn, n)
	dialErrs := make([]error, n)
	var wg sync.WaitGroup
	for i := range conns {
		conns[i] = &conn{t: t, dials: dials}
		wg.Go(func() { dialErrs[i] = conns[i].dial(ctx) })
	}
	wg.Wait()
	closeAll := func() {
		for _, c := range conns {
			c.close()
		}
	}
	if err := errors.Join(dialErrs...); err != nil {
		closeAll()
		return nil, nil, fmt.Errorf("couldn't open %d connections: %w", n, err)
	}
	stopInterrupting := context.AfterFunc(ctx, func() {
		for _, c := range conns {
			c.interrupt()
		}
	})
	return conns, func() { stopInterrupting(); closeAll() }, nil
}
