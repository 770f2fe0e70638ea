package api_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// badRequest is a request that must be refused without writing anything.
type badRequest struct {
	name        string
	method      string
	path        string
	contentType string
	body        string
	status      int
	code        string
}

func badRequests(e *env) []badRequest {
	post := q("/app/transactions", v2022)
	user := userPath(v2022, newCredential(e.t, "bob").userID())
	json := "application/json"
	return []badRequest{
		{"contents too long", "POST", post, json, `{"contents":"` + strings.Repeat("a", 8193) + `"}`, 400, "InvalidInput"},
		{"multibyte contents too long", "POST", post, json, `{"contents":"` + strings.Repeat("é", 4097) + `"}`, 400, "InvalidInput"},
		{"escaped contents too long", "POST", post, json, `{"contents":"` + strings.Repeat(`\u0041`, 8193) + `"}`, 400, "InvalidInput"},
		{"invalid UTF-8", "POST", post, json, "{\"contents\":\"\xff\xfe\"}", 400, "InvalidInput"},
		{"lone high surrogate", "POST", post, json, `{"contents":"\ud800x"}`, 400, "InvalidInput"},
		{"lone low surrogate", "POST", post, json, `{"contents":"\udc00"}`, 400, "InvalidInput"},
		{"reversed surrogates", "POST", post, json, `{"contents":"\ude00\ud83d"}`, 400, "InvalidInput"},
		{"contents number", "POST", post, json, `{"contents":42}`, 400, "InvalidInput"},
		{"contents null", "POST", post, json, `{"contents":null}`, 400, "InvalidInput"},
		{"contents object", "POST", post, json, `{"contents":{"a":1}}`, 400, "InvalidInput"},
		{"contents array", "POST", post, json, `{"contents":["a"]}`, 400, "InvalidInput"},
		{"contents bool", "POST", post, json, `{"contents":true}`, 400, "InvalidInput"},
		{"no contents", "POST", post, json, `{}`, 400, "InvalidInput"},
		{"unknown field", "POST", post, json, `{"contents":"x","tags":"a"}`, 400, "InvalidInput"},
		{"collection in body", "POST", post, json, `{"contents":"x","collectionId":"c"}`, 400, "InvalidInput"},
		{"duplicate field", "POST", post, json, `{"contents":"a","contents":"b"}`, 400, "InvalidInput"},
		{"truncated JSON", "POST", post, json, `{"contents":`, 400, "InvalidInput"},
		{"not JSON", "POST", post, json, `contents=x`, 400, "InvalidInput"},
		{"array body", "POST", post, json, `[{"contents":"x"}]`, 400, "InvalidInput"},
		{"string body", "POST", post, json, `"x"`, 400, "InvalidInput"},
		{"empty body", "POST", post, json, ``, 400, "InvalidInput"},
		{"trailing data", "POST", post, json, `{"contents":"x"} {}`, 400, "InvalidInput"},
		{"text/plain", "POST", post, "text/plain", `{"contents":"x"}`, 415, "UnsupportedContentType"},
		{"form", "POST", post, "application/x-www-form-urlencoded", `contents=x`, 415, "UnsupportedContentType"},
		{"latin-1", "POST", post, "application/json; charset=iso-8859-1", `{"contents":"x"}`, 415, "UnsupportedContentType"},
		{"merge-patch on POST", "POST", post, "application/merge-patch+json", `{"contents":"x"}`, 415, "UnsupportedContentType"},
		{"body over 1 MiB", "POST", post, json, `{"contents":"` + strings.Repeat("a", 1<<20) + `"}`, 413, "RequestBodyTooLarge"},
		{"collection too long", "POST", q("/app/transactions", v2022, "collectionId", strings.Repeat("c", 257)), json, `{"contents":"x"}`, 400, "InvalidQueryParameterValue"},
		{"empty collection", "POST", post + "&collectionId=", json, `{"contents":"x"}`, 400, "InvalidQueryParameterValue"},
		{"invalid UTF-8 collection", "POST", post + "&collectionId=%C3%28", json, `{"contents":"x"}`, 400, "InvalidQueryParameterValue"},
		{"two collections", "POST", post + "&collectionId=a&collectionId=b", json, `{"contents":"x"}`, 400, "InvalidQueryParameterValue"},
		{"tags", "POST", post + "&tags=a,b", json, `{"contents":"x"}`, 400, "InvalidQueryParameterValue"},
		{"no api-version", "POST", "/app/transactions", json, `{"contents":"x"}`, 400, "MissingApiVersionParameter"},
		{"unknown role", "PATCH", user, json, `{"assignedRole":"Owner"}`, 400, "InvalidInput"},
		{"unknown role", "PATCH", user, json, `{"assignedRole":"Readers"}`, 400, "InvalidInput"},
		{"too long role", "PATCH", user, json, `{"assignedRole":"` + strings.Repeat("r", 65) + `"}`, 400, "InvalidInput"},
		{"role None", "PATCH", user, json, `{"assignedRole":"None"}`, 400, "InvalidInput"},
		{"role number", "PATCH", user, json, `{"assignedRole":1}`, 400, "InvalidInput"},
		{"role array", "PATCH", user, json, `{"assignedRole":["Reader"]}`, 400, "InvalidInput"},
		{"no role", "PATCH", user, json, `{}`, 400, "InvalidInput"},
		{"null role", "PATCH", user, "application/merge-patch+json", `{"assignedRole":null}`, 400, "InvalidInput"},
		{"role and more", "PATCH", user, json, `{"assignedRole":"Reader","userId":"x"}`, 400, "InvalidInput"},
		{"user text/plain", "PATCH", user, "text/plain", `{"assignedRole":"Reader"}`, 415, "UnsupportedContentType"},
		{"user id too long", "PATCH", userPath(v2022, strings.Repeat("u", 257)), json, `{"assignedRole":"Reader"}`, 400, "InvalidInput"},
		{"user id with control", "PATCH", userPath(v2022, "a%07b"), json, `{"assignedRole":"Reader"}`, 400, "InvalidInput"},
		{"malformed transaction id", "GET", q("/app/transactions/2-5", v2022), "", "", 400, "InvalidTransactionId"},
		{"zero view", "GET", q("/app/transactions/0.5/status", v2022), "", "", 400, "InvalidTransactionId"},
		{"leading zero", "GET", q("/app/transactions/2.05/receipt", v2022), "", "", 400, "InvalidTransactionId"},
		{"huge seqno", "GET", q("/app/transactions/2.99999999999999999999999", v2022), "", "", 400, "InvalidTransactionId"},
	}
}

func TestBadInputWritesNothing(t *testing.T) {
	e := newEnv(t, envOptions{})
	reqs := badRequests(e)
	last := e.quiesce()
	for _, br := range reqs {
		t.Run(br.name, func(t *testing.T) {
			e.t = t
			var body any
			if br.body != "" || br.method != "GET" {
				body = br.body
			}
			r := e.admin.do(br.method, br.path, body, "Content-Type", br.contentType)
			r.expect(br.status, br.code)
			if len(r.errorMessage()) > 1024 {
				t.Errorf("message %q", r.errorMessage())
			}
		})
	}
	e.t = t
	if got := e.quiesce(); got != last {
		t.Fatalf("bad requests appended transactions: last seqno %d, was %d", got, last)
	}
	// The next good writes work, at the limits.
	for _, contents := range []string{strings.Repeat("a", 8192), strings.Repeat("é", 4096), strings.Repeat(`\u0041`, 8192), `\ud83d\ude00`, ""} {
		r := e.contributor.do("POST", q("/app/transactions", v2022, "collectionId", strings.Repeat("c", 256)),
			`{"contents":"`+contents+`"}`, "Content-Type", "application/json; charset=utf-8").expect(200, "")
		e.commit(r.txid())
		got := e.reader.get(q("/app/transactions/"+r.txid().String(), v2022, "collectionId", strings.Repeat("c", 256))).expect(200, "").object()
		if n := len(got["entry"].(map[string]any)["contents"].(string)); n > 8192 {
			t.Fatalf("stored %d bytes", n)
		}
	}
	if e.quiesce() <= last {
		t.Fatal("good writes appended nothing")
	}
}

func TestChunkedBodyOverLimit(t *testing.T) {
	e := newEnv(t, envOptions{})
	last := e.quiesce()
	body := io.MultiReader(strings.NewReader(`{"contents":"`), bytes.NewReader(bytes.Repeat([]byte("a"), 2<<20)), strings.NewReader(`"}`))
	req, _ := http.NewRequest("POST", e.base+q("/app/transactions", v2022), body) // no length: chunked
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.contributor.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
	if e.quiesce() != last {
		t.Fatal("an oversized chunked body appended a transaction")
	}
}

func TestCollectionLimit(t *testing.T) {
	e := newEnv(t, envOptions{maxCollections: 3})
	for _, c := range []string{"a", "b", "c"} {
		e.write(e.contributor, v2022, c, "x")
	}
	last := e.quiesce()
	e.contributor.post(q("/app/transactions", v2022, "collectionId", "d"), map[string]string{"contents": "x"}).expect(400, "CollectionLimitExceeded")
	if e.quiesce() != last {
		t.Fatal("a refused write appended a transaction")
	}
	e.write(e.contributor, v2022, "a", "existing collections stay writable")
}

func TestCollectionLimitUnderConcurrency(t *testing.T) {
	const limit, writers = 5, 16
	e := newEnv(t, envOptions{maxCollections: limit})
	e.commit(e.write(e.contributor, v2022, "existing", "x"))
	statuses := make([]int, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			r := e.contributor.do("POST", q("/app/transactions", v2022, "collectionId", fmt.Sprintf("new-%d", i)), map[string]string{"contents": "x"})
			statuses[i] = r.status
		})
	}
	wg.Wait()
	ok := 0
	for _, s := range statuses {
		switch s {
		case 200:
			ok++
		case 400:
		default:
			t.Errorf("status %d", s)
		}
	}
	if ok != limit-1 {
		t.Fatalf("%d new collections admitted, want %d", ok, limit-1)
	}
	e.quiesce()
	if n := e.node.State().NumCollections(); n != limit {
		t.Fatalf("%d collections, want %d", n, limit)
	}
}
