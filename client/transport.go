package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"time"
)

// Wire names (acl-api.md §2).
const (
	apiVersionParam   = "api-version"
	txIDHeader        = "x-ms-ccf-transaction-id"
	requestIDHeader   = "x-ms-client-request-id"
	errorCodeHeader   = "x-ms-error-code"
	mediaJSON         = "application/json"
	mediaMergePatch   = "application/merge-patch+json"
	maxResponseBytes  = 64 << 20 // a full range page is under 10 MB
	maxErrorTextBytes = 512
)

var userAgent = "ledgerd-client-go (" + runtime.Version() + ")"

// request is one API call, sent by do with retries.
type request struct {
	method string
	// path is the escaped path below the endpoint, e.g.
	// "/app/transactions/2.15/receipt".
	path string
	// query holds the parameters besides api-version.
	query url.Values
	// body, if not nil, is sent with contentType.
	body        []byte
	contentType string
	// identity requests go to the identity endpoint without credentials.
	identity bool
	// public requests need no credentials: no bearer token is sent (nor
	// asked of the credential).
	public bool
	// hc, if not nil, overrides the client that sends the request.
	hc *http.Client
	// apiVersion, if not empty, overrides the client's api-version (the
	// governance API has versions of its own).
	apiVersion string
	// accept, if not empty, overrides the Accept header.
	accept string
}

// response is a successful answer, its body read.
type response struct {
	status int
	header http.Header
	body   []byte
	tls    *tls.ConnectionState
}

// txID returns the x-ms-ccf-transaction-id header.
func (r *response) txID() string { return r.header.Get(txIDHeader) }

// decode decodes the JSON body into v.
func (r *response) decode(v any) error {
	if err := json.Unmarshal(r.body, v); err != nil {
		return fmt.Errorf("couldn't decode the ledger's answer: %w", err)
	}
	return nil
}

// do sends rq until it succeeds, fails for good, or its retries run out
// (RetryPolicy), and returns the 2xx answer or the error: a *ResponseError
// for an error answer, the transport's error otherwise.
func (c *Client) do(ctx context.Context, rq *request) (*response, error) {
	reqID := newRequestID()
	for attempt := 1; ; attempt++ {
		resp, err := c.send(ctx, rq, reqID)
		if err == nil && resp.status >= 200 && resp.status < 300 {
			return resp, nil
		}
		if err == nil {
			re := c.responseError(rq, resp)
			if re.StatusCode == http.StatusUnauthorized && c.tokens != nil {
				c.tokens.invalidate()
			}
			err = re
		}
		delay, retry := c.retryDelay(ctx, rq, err, attempt)
		if !retry {
			return nil, err
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < delay {
			return nil, fmt.Errorf("%w (not retried: the context's deadline comes before the next attempt in %v)", err, delay)
		}
		c.log.Debug("retrying request", "method", rq.method, "path", rq.path, "attempt", attempt+1, "delay", delay, "err", err)
		if werr := c.sleep(ctx, delay); werr != nil {
			return nil, fmt.Errorf("%w, after: %w", werr, err)
		}
	}
}

// send makes one attempt.
func (c *Client) send(ctx context.Context, rq *request, reqID string) (*response, error) {
	req, err := c.newHTTPRequest(ctx, rq, reqID)
	if err != nil {
		return nil, err
	}
	hc := rq.hc
	if hc == nil {
		hc = c.hc
		if rq.identity {
			hc = c.identityHTTP
		}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: couldn't read the answer: %w", rq.method, rq.path, err)
	}
	if len(body) > maxResponseBytes {
		return nil, fmt.Errorf("%s %s: the answer is larger than %d bytes", rq.method, rq.path, maxResponseBytes)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: body, tls: resp.TLS}, nil
}

// newHTTPRequest builds the HTTP request of one attempt.
func (c *Client) newHTTPRequest(ctx context.Context, rq *request, reqID string) (*http.Request, error) {
	base := c.base
	if rq.identity {
		base = c.identityBase
	}
	q := url.Values{}
	maps.Copy(q, rq.query)
	version := c.apiVersion
	if rq.apiVersion != "" {
		version = rq.apiVersion
	}
	q.Set(apiVersionParam, version)
	u := base.Scheme + "://" + base.Host + base.EscapedPath() + rq.path + "?" + q.Encode()
	var body io.Reader
	if rq.body != nil {
		body = bytes.NewReader(rq.body) // sets GetBody, so the transport may resend it
	}
	req, err := http.NewRequestWithContext(ctx, rq.method, u, body)
	if err != nil {
		return nil, permanent{fmt.Errorf("couldn't build the request: %w", err)}
	}
	accept := mediaJSON
	if rq.accept != "" {
		accept = rq.accept
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(requestIDHeader, reqID)
	if rq.body != nil {
		req.Header.Set("Content-Type", rq.contentType)
	} else if rq.method == http.MethodDelete {
		req.ContentLength = 0 // sends Content-Length: 0, as Python does
	}
	if c.tokens != nil && !rq.identity && !rq.public {
		authz, err := c.tokens.authorization(ctx)
		if err != nil {
			return nil, permanent{err} // the credential's own policy decides on retries
		}
		req.Header.Set("Authorization", authz)
	}
	return req, nil
}

// responseError builds the error of a non-2xx answer from its ACL error
// body, or from its text if it has none.
func (c *Client) responseError(rq *request, resp *response) *ResponseError {
	e := &ResponseError{
		StatusCode:    resp.status,
		TransactionID: resp.txID(),
		RequestID:     resp.header.Get("x-ms-request-id"),
		Method:        rq.method,
		Path:          rq.path,
		RetryAfter:    parseRetryAfter(resp.header.Get("Retry-After"), c.now()),
	}
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(resp.body, &body) == nil && body.Error.Code != "" {
		e.Code, e.Message = body.Error.Code, body.Error.Message
		return e
	}
	// The governance API names the code in a header too.
	e.Code = resp.header.Get(errorCodeHeader)
	text := strings.TrimSpace(string(resp.body))
	if len(text) > maxErrorTextBytes {
		text = text[:maxErrorTextBytes] + "…"
	}
	e.Message = strings.ToValidUTF8(text, "\uFFFD")
	return e
}

// newRequestID returns a random UUID for x-ms-client-request-id, the same
// for every attempt of a request, so that server logs can tie them.
func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])         // never fails
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 9562 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// jsonBody encodes a request body.
func jsonBody(v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("client: couldn't encode a request body: %v", err)) // only strings are encoded
	}
	return data
}
