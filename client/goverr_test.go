package client

import (
	"net/http"
	"testing"
	"time"
)

// TestErrorCodeHeader: a governance error without an ACL error body still
// has its code, from x-ms-error-code.
func TestErrorCodeHeader(t *testing.T) {
	c := &Client{now: time.Now}
	h := http.Header{}
	h.Set("x-ms-error-code", "ProposalNotOpen")
	e := c.responseError(&request{method: http.MethodPost, path: "/gov/x"}, &response{status: 400, header: h, body: []byte("not open")})
	if e.Code != "ProposalNotOpen" || e.Message != "not open" {
		t.Fatalf("%+v", e)
	}
	// The body's code wins.
	e = c.responseError(&request{}, &response{status: 400, header: h, body: []byte(`{"error":{"code":"A","message":"m"}}`)})
	if e.Code != "A" || e.Message != "m" {
		t.Fatalf("%+v", e)
	}
}
