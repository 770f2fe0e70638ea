package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// codeServerBusy is ledgerd's 503 for a write refused before it was
// submitted: safe to retry even for POST.
const codeServerBusy = "ServerBusy"

// retryDelay decides whether attempt number attempt of rq, which failed
// with err, is retried, and after how long (see RetryPolicy).
func (c *Client) retryDelay(ctx context.Context, rq *request, err error, attempt int) (time.Duration, bool) {
	if attempt >= c.retry.MaxAttempts || ctx.Err() != nil {
		return 0, false
	}
	post := rq.method == http.MethodPost
	var re *ResponseError
	if errors.As(err, &re) {
		switch {
		case re.StatusCode != http.StatusTooManyRequests && re.StatusCode != http.StatusServiceUnavailable:
			return 0, false
		case post && re.StatusCode == http.StatusServiceUnavailable && re.Code != codeServerBusy:
			return 0, false // the write may have happened
		case re.RetryAfter > 0:
			return re.RetryAfter, true
		}
		return c.backoff(attempt), true
	}
	if !transient(err) || (post && !notSent(err)) {
		return 0, false
	}
	return c.backoff(attempt), true
}

// backoff is the full-jitter exponential backoff before retry number
// attempt: a random delay in [0, min(MaxDelay, BaseDelay·2^(attempt-1))).
func (c *Client) backoff(attempt int) time.Duration {
	d := c.retry.BaseDelay
	for i := 1; i < attempt && d < c.retry.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, c.retry.MaxDelay)
	if d <= 0 {
		return 0
	}
	return c.jitter(d)
}

// permanent marks an error of the client's own that no retry can cure,
// such as a credential that yields no token.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// transient reports whether a transport error may go away on retry: not a
// cancelled context, not a certificate or TLS protocol failure, which the
// same connection attempt would meet again, and not a permanent error.
func transient(err error) bool {
	var (
		perm             permanent
		unknownAuthority x509.UnknownAuthorityError
		hostname         x509.HostnameError
		invalid          x509.CertificateInvalidError
		verification     *tls.CertificateVerificationError
		alert            tls.AlertError
		record           tls.RecordHeaderError
	)
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &unknownAuthority), errors.As(err, &hostname), errors.As(err, &invalid),
		errors.As(err, &verification), errors.As(err, &alert), errors.As(err, &record), errors.As(err, &perm):
		return false
	}
	return true
}

// notSent reports whether a transport error happened before the request
// could be sent: the connection could not be made at all.
func notSent(err error) bool {
	var op *net.OpError
	var dns *net.DNSError
	return (errors.As(err, &op) && op.Op == "dial") || errors.As(err, &dns)
}

// parseRetryAfter parses a Retry-After header (RFC 9110 §10.2.3): a number
// of seconds or an HTTP date. It returns 0 if there is none, it is
// malformed, or the date has passed.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, int64(24*time.Hour/time.Second))) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	return max(t.Sub(now), 0)
}
