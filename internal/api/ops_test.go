package api_test

import (
	"strings"
	"testing"
)

func TestHealthNodeStateAndMetrics(t *testing.T) {
	e := newEnv(t, envOptions{})
	if got := string(e.anonymous.get("/healthz").expect(200, "").body); got != `{"status":"ok"}` {
		t.Fatalf("healthz %s", got)
	}
	id := e.write(e.contributor, v2022, "", "x")
	e.commit(id)
	e.reader.get(q("/app/transactions/"+id.String(), v2022)).expect(200, "")
	e.reader.get(q("/app/transactions/"+id.String(), v2022, "collectionId", "nope")).expect(404, "")

	// /metrics: any user or member, no one else. /node/state: anyone, as
	// in CCF.
	e.anonymous.get("/metrics").expect(401, "InvalidAuthenticationInfo")
	e.stranger.get("/metrics").expect(403, "NotAllowed")
	for _, c := range []*client{e.reader, e.member} {
		c.get("/metrics").expect(200, "")
	}
	for _, c := range []*client{e.anonymous, e.stranger, e.reader, e.member} {
		c.get("/node/state").expect(200, "")
	}
	st := e.member.get("/node/state").object()
	if st["node_id"] != e.ids.Node.ID || st["state"] != "PartOfNetwork" || st["last_signed_seqno"].(float64) < float64(id.Seqno) {
		t.Fatalf("node state %v", st)
	}

	m := e.admin.get("/metrics").expect(200, "")
	if ct := m.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("metrics Content-Type %q", ct)
	}
	text := string(m.body)
	for _, want := range []string{
		`ledgerd_http_requests_total{route="POST /app/transactions",code="200"} 1`,
		`ledgerd_http_requests_total{route="GET /app/transactions/{transactionId}",code="404"} 1`,
		`ledgerd_http_request_duration_seconds_bucket{route="GET /app/transactions/{transactionId}",le="+Inf"} 2`,
		`ledgerd_http_request_duration_seconds_count{route="POST /app/transactions"} 1`,
		"# TYPE ledgerd_http_request_duration_seconds histogram",
		"ledgerd_appends_total ", "ledgerd_signatures_total ", "ledgerd_commit_lag_seqnos ",
		"ledgerd_committed_seqno ", "ledgerd_ledger_bytes ", "ledgerd_collections 1",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q:\n%s", want, text)
		}
	}
}

func TestUnknownPathsAndMethods(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, path := range []string{"/", "/app", "/app/transactions/", "/app/nope?api-version=2022-05-13", "/gov/members",
		"/app/userDefinedEndpoints/nope?api-version=2024-12-09-preview"} {
		e.admin.get(path).expect(404, "ResourceNotFound")
	}
	for _, tc := range []struct{ method, path, allow string }{
		{"DELETE", "/app/transactions?api-version=2022-05-13", "POST, GET"},
		{"PUT", "/app/transactions/2.1?api-version=2022-05-13", "GET"},
		{"POST", "/app/users/x?api-version=2022-05-13", "GET, PATCH, DELETE"},
		{"HEAD", "/healthz", "GET"},
	} {
		r := e.admin.do(tc.method, tc.path, nil)
		if tc.method == "HEAD" {
			if r.status != 405 {
				t.Errorf("HEAD: %d", r.status)
			}
			continue
		}
		r.expect(405, "UnsupportedHttpVerb")
		if got := r.header.Get("Allow"); got != tc.allow {
			t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.path, got, tc.allow)
		}
	}
}
