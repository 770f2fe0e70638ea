package api_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/internal/api"
	"github.com/ledgerd/ledgerd/internal/node"
	"github.com/ledgerd/ledgerd/receipt"
)

const v2024 = "2024-12-09-preview"

// TestTags: POST ?tags= stores tags with the entry (in its write set, so its
// receipt covers them); entries answer them; GET /app/transactions?tag=
// lists a collection's entries with that tag, paged; GET
// /app/collections/tags lists each collection's tags.
func TestTags(t *testing.T) {
	e := newEnv(t, envOptions{})
	post := func(coll, contents, tags string) string {
		r := e.contributor.post(q("/app/transactions", v2024, "collectionId", coll, "tags", tags),
			map[string]string{"contents": contents}).expect(200, "")
		return r.txid().String()
	}
	alice := post("messages", "Hello from Alice!", "alice,greeting")
	bob := post("messages", "Hi from Bob!", "bob,greeting")
	bye := post("messages", "Bye from Alice!", "alice,goodbye")
	plain := e.write(e.contributor, v2024, "messages", "untagged")
	other := post("other", "elsewhere", "greeting")
	otherID, err := node.ParseTxID(other)
	if err != nil {
		t.Fatal(err)
	}
	e.commit(otherID)

	// The entry answers its tags (in the order given), from 2024-12-09-preview only.
	got := e.reader.get(q("/app/transactions/"+alice, v2024, "collectionId", "messages")).object()["entry"].(map[string]any)
	if !reflect.DeepEqual(got["tags"], []any{"alice", "greeting"}) {
		t.Fatalf("entry %v", got)
	}
	old := e.reader.get(q("/app/transactions/"+alice, v2022, "collectionId", "messages")).object()["entry"].(map[string]any)
	if _, ok := old["tags"]; ok {
		t.Fatalf("2022-05-13 entry has tags: %v", old)
	}
	if got := e.reader.get(q("/app/transactions/"+plain.String(), v2024, "collectionId", "messages")).object()["entry"].(map[string]any); got["tags"] != nil {
		t.Fatalf("untagged entry %v", got)
	}

	list := func(kv ...string) []string {
		var ids []string
		path := q("/app/transactions", v2024, kv...)
		for path != "" {
			var page struct {
				Entries []struct {
					TransactionID string   `json:"transactionId"`
					Tags          []string `json:"tags"`
				} `json:"entries"`
				NextLink string `json:"nextLink"`
			}
			e.reader.get(path).expect(200, "").decode(&page)
			for _, en := range page.Entries {
				ids = append(ids, en.TransactionID)
			}
			path = page.NextLink
		}
		return ids
	}
	if got := list("collectionId", "messages", "tag", "greeting"); !reflect.DeepEqual(got, []string{alice, bob}) {
		t.Fatalf("tag=greeting: %v, want %v", got, []string{alice, bob})
	}
	if got := list("collectionId", "messages", "tag", "alice"); !reflect.DeepEqual(got, []string{alice, bye}) {
		t.Fatalf("tag=alice: %v", got)
	}
	if got := list("collectionId", "messages", "tags", "alice,goodbye"); !reflect.DeepEqual(got, []string{bye}) {
		t.Fatalf("tags=alice,goodbye: %v", got)
	}
	if got := list("collectionId", "messages", "tag", "nobody"); len(got) != 0 {
		t.Fatalf("tag=nobody: %v", got)
	}
	if got := list("collectionId", "messages"); len(got) != 4 {
		t.Fatalf("no tag: %v", got)
	}

	// GET /app/collections/tags, all and one.
	var all struct {
		Collections []struct {
			CollectionID string   `json:"collectionId"`
			Tags         []string `json:"tags"`
		} `json:"collections"`
	}
	e.reader.get(q("/app/collections/tags", v2024)).expect(200, "").decode(&all)
	want := map[string][]string{"messages": {"alice", "bob", "goodbye", "greeting"}, "other": {"greeting"}}
	if len(all.Collections) != 2 {
		t.Fatalf("collections/tags %+v", all)
	}
	for _, c := range all.Collections {
		if !reflect.DeepEqual(c.Tags, want[c.CollectionID]) {
			t.Fatalf("collections/tags %+v", all)
		}
	}
	one := e.reader.get(q("/app/collections/tags", v2024, "collectionId", "other")).expect(200, "")
	if string(one.body) != `{"collections":[{"collectionId":"other","tags":["greeting"]}]}` {
		t.Fatalf("collections/tags?collectionId=other: %s", one.body)
	}
	none := e.reader.get(q("/app/collections/tags", v2024, "collectionId", "nothing")).expect(200, "")
	if string(none.body) != `{"collections":[{"collectionId":"nothing","tags":[]}]}` {
		t.Fatalf("collections/tags of an unknown collection: %s", none.body)
	}
	// Older versions do not have the route.
	e.reader.get(q("/app/collections/tags", v2022)).expect(400, "UnsupportedApiVersionValue")

	// The tags are in the entry's write set: the receipt verifies, and it
	// commits to a write set digest that differs from an untagged entry's
	// of the same contents (the tags are covered).
	body := e.reader.get(q("/app/transactions/"+alice+"/receipt", v2024)).expect(200, "").body
	if _, err := receipt.VerifyResponsePEM(body, e.ids.Service.CertPEM); err != nil {
		t.Fatal(err)
	}
}

// TestTagErrors: bad tags get 400 with an ACL error body and write nothing;
// versions without tags refuse the parameters rather than drop them.
func TestTagErrors(t *testing.T) {
	e := newEnv(t, envOptions{})
	before := e.quiesce()
	path := func(version, tags string) string {
		return q("/app/transactions", version, "collectionId", "c", "tags", tags)
	}
	body := map[string]string{"contents": "x"}
	long := strings.Repeat("t", api.MaxTagBytes+1)
	many := make([]string, api.MaxEntryTags+1)
	for i := range many {
		many[i] = fmt.Sprint("t", i)
	}
	cases := []struct{ name, path, code, msg string }{
		{"empty tag", path(v2024, "a,,b"), "InvalidQueryParameterValue", "empty tag"},
		{"empty list", path(v2024, ""), "InvalidQueryParameterValue", "empty tag"},
		{"too long", path(v2024, long), "InvalidQueryParameterValue", "at most 64 bytes"},
		{"too many", path(v2024, strings.Join(many, ",")), "InvalidQueryParameterValue", "at most 10"},
		{"control", path(v2024, "a\nb"), "InvalidQueryParameterValue", "control"},
		{"bidi", path(v2024, "a\u202eb"), "InvalidQueryParameterValue", "bidirectional"},
		{"old version", path(v2022, "a"), "InvalidQueryParameterValue", "not supported"},
		{"tag on POST", q("/app/transactions", v2024, "tag", "a"), "InvalidQueryParameterValue", "not supported"},
	}
	for _, c := range cases {
		r := e.contributor.post(c.path, body).expect(400, c.code)
		if !strings.Contains(r.errorMessage(), c.msg) {
			t.Errorf("%s: message %q lacks %q", c.name, r.errorMessage(), c.msg)
		}
	}
	e.reader.get(q("/app/transactions", v2022, "tag", "a")).expect(400, "InvalidQueryParameterValue")
	e.reader.get(q("/app/transactions", v2024, "tag", "")).expect(400, "InvalidQueryParameterValue")
	if after := e.quiesce(); after != before {
		// quiesce waits for the signature of anything written; nothing was.
		t.Fatalf("bad requests wrote: %d -> %d", before, after)
	}
	// Duplicates count once.
	r := e.contributor.post(path(v2024, "a,b,a"), body).expect(200, "")
	e.commit(r.txid())
	got := e.reader.get(q("/app/transactions/"+r.txid().String(), v2024, "collectionId", "c")).object()["entry"].(map[string]any)
	if b, _ := json.Marshal(got["tags"]); string(b) != `["a","b"]` {
		t.Fatalf("tags %s", b)
	}
}

// TestCollectionTagLimit: a collection's entries carry at most
// MaxCollectionTags distinct tags; the write that would exceed it is
// refused with 400 TagLimitExceeded, and tags already carried stay usable.
func TestCollectionTagLimit(t *testing.T) {
	e := newEnv(t, envOptions{})
	for i := 0; i < api.MaxCollectionTags; i += api.MaxEntryTags {
		var tags []string
		for j := i; j < min(i+api.MaxEntryTags, api.MaxCollectionTags); j++ {
			tags = append(tags, fmt.Sprint("t", j))
		}
		e.contributor.post(q("/app/transactions", v2024, "collectionId", "full", "tags", strings.Join(tags, ",")),
			map[string]string{"contents": "x"}).expect(200, "")
	}
	e.contributor.post(q("/app/transactions", v2024, "collectionId", "full", "tags", "t0,new"),
		map[string]string{"contents": "x"}).expect(400, "TagLimitExceeded")
	e.contributor.post(q("/app/transactions", v2024, "collectionId", "full", "tags", "t0,t255"),
		map[string]string{"contents": "x"}).expect(200, "")
	e.contributor.post(q("/app/transactions", v2024, "collectionId", "another", "tags", "new"),
		map[string]string{"contents": "x"}).expect(200, "")
}
