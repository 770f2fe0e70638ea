package api_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// uuidV4 is the form of x-ms-request-id.
var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// checkRequestID checks that an answer carries an x-ms-request-id.
func checkRequestID(t testing.TB, method, path string, h http.Header) {
	t.Helper()
	if id := h.Get("x-ms-request-id"); !uuidV4.MatchString(id) {
		t.Errorf("%s %s: x-ms-request-id %q is not a UUID", method, path, id)
	}
}

// TestRequestIDs checks Azure's request-id headers: every answer, errors
// included, carries a fresh x-ms-request-id and echoes the request's
// x-ms-client-request-id; a client request id that cannot be echoed is a
// 400.
func TestRequestIDs(t *testing.T) {
	e := newEnv(t, envOptions{})
	const clientID = "51d3a055-902b-4ace-bf8d-94fe10659a88"
	seen := map[string]bool{}
	for _, tc := range []struct {
		c            *client
		method, path string
		status       int
	}{
		{e.reader, "GET", q("/app/collections", v2022), 200},
		{e.reader, "GET", q("/app/collections", v2022), 200},
		{e.contributor, "POST", q("/app/transactions", v2022), 200},
		{e.reader, "GET", q("/app/transactions/2.999999/status", v2022), 404},
		{e.reader, "GET", q("/app/nowhere", v2022), 404},
		{e.reader, "PUT", q("/app/collections", v2022), 405},
		{e.reader, "GET", q("/app/collections", "1999-01-01"), 400},
		{e.anonymous, "GET", q("/app/collections", v2022), 401},
		{e.stranger, "GET", q("/app/collections", v2022), 403},
		{e.reader, "POST", q("/app/transactions", v2022), 403},
	} {
		var body any
		if tc.method == "POST" {
			body = map[string]string{"contents": "request ids"}
		}
		r := tc.c.do(tc.method, tc.path, body, "x-ms-client-request-id", clientID).expect(tc.status, "")
		if got := r.header.Get("x-ms-client-request-id"); got != clientID {
			t.Errorf("%s %s: x-ms-client-request-id %q, want the request's %q", tc.method, tc.path, got, clientID)
		}
		id := r.header.Get("x-ms-request-id")
		if seen[id] {
			t.Errorf("%s %s: x-ms-request-id %s was already used", tc.method, tc.path, id)
		}
		seen[id] = true
	}

	// Without a client request id, nothing is echoed.
	r := e.reader.get(q("/app/collections", v2022)).expect(200, "")
	if vs := r.header.Values("x-ms-client-request-id"); len(vs) != 0 {
		t.Errorf("x-ms-client-request-id %q echoed without one in the request", vs)
	}

	// A client request id longer than 1 KiB, or with a byte that is not
	// printable ASCII, is refused, not echoed.
	for _, bad := range []string{strings.Repeat("a", 1025), "caf\xc3\xa9"} {
		r := e.reader.do("GET", q("/app/collections", v2022), nil, "x-ms-client-request-id", bad).expect(400, "InvalidHeaderValue")
		if vs := r.header.Values("x-ms-client-request-id"); len(vs) != 0 {
			t.Errorf("bad x-ms-client-request-id echoed: %.40q", vs)
		}
	}
	e.reader.do("GET", q("/app/collections", v2022), nil, "x-ms-client-request-id", strings.Repeat("a", 1024)).expect(200, "")

	// Given twice, it is refused.
	req, err := http.NewRequest("GET", e.base+q("/app/collections", v2022), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Add("x-ms-client-request-id", "one")
	req.Header.Add("x-ms-client-request-id", "two")
	resp, err := e.reader.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 || !uuidV4.MatchString(resp.Header.Get("x-ms-request-id")) {
		t.Errorf("two client request ids: %d, x-ms-request-id %q", resp.StatusCode, resp.Header.Get("x-ms-request-id"))
	}
}
