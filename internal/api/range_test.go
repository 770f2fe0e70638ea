package api_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/internal/node"
)

// page is a range page in either dialect.
type page struct {
	Entries        []map[string]string `json:"entries"`
	NextLink       string              `json:"nextLink"`
	LegacyNextLink string              `json:"@nextLink"`
	State          string              `json:"state"`
}

func (p page) next() string { return p.NextLink + p.LegacyNextLink }

// follow lists a range from path, following next links as the JS client
// does (appending api-version again) and retrying Loading pages. It
// returns the entries and the pages seen.
func follow(t *testing.T, c *client, path, version string) ([]map[string]string, []page) {
	t.Helper()
	var entries []map[string]string
	var pages []page
	for path != "" && len(pages) < 200 {
		r := c.get(path).expect(200, "")
		var p page
		r.decode(&p)
		pages = append(pages, p)
		if p.State != "Ready" {
			t.Fatalf("page %s is %s", path, p.State)
		}
		if obj := r.object(); obj["entries"] == nil {
			t.Fatalf("Ready page without entries: %s", r.body)
		}
		entries = append(entries, p.Entries...)
		path = p.next()
		if path != "" {
			path += "&api-version=" + url.QueryEscape(version) // the JS client's habit
		}
	}
	return entries, pages
}

func TestRangePagingAcrossWindows(t *testing.T) {
	e := newEnv(t, envOptions{})
	// 2,200 entries over two collections: more than two 1001-seqno windows
	// of the default collection, with signatures interleaved.
	ids := e.bulk(2200, "subledger:0", "other")
	last := e.quiesce()
	var want []node.TxID
	for i, id := range ids {
		if i%2 == 0 {
			want = append(want, id)
		}
	}

	t.Run(v2022, func(t *testing.T) {
		e.t = t
		entries, pages := follow(t, e.reader, q("/app/transactions", v2022), v2022)
		checkEntries(t, entries, want, "subledger:0", "collectionId")
		if wantPages := int((last-1)/1001 + 1); len(pages) != wantPages {
			t.Errorf("%d pages, want %d (last seqno %d)", len(pages), wantPages, last)
		}
		if !strings.HasPrefix(pages[0].NextLink, "/app/transactions?api-version=2022-05-13&collectionId=subledger%3A0&fromTransactionId=") ||
			!strings.HasSuffix(pages[0].NextLink, ".1002") {
			t.Errorf("first nextLink %q", pages[0].NextLink)
		}
		if pages[len(pages)-1].NextLink != "" {
			t.Errorf("last page has nextLink %q", pages[len(pages)-1].NextLink)
		}
	})
	t.Run(v01, func(t *testing.T) {
		e.t = t
		entries, pages := follow(t, e.reader, q("/app/transactions", v01, "subLedgerId", "other"), v01)
		var wantOther []node.TxID
		for i, id := range ids {
			if i%2 == 1 {
				wantOther = append(wantOther, id)
			}
		}
		checkEntries(t, entries, wantOther, "other", "subLedgerId")
		if wantPages := int((last-1)/101 + 1); len(pages) != wantPages {
			t.Errorf("%d pages, want %d", len(pages), wantPages)
		}
		if !strings.Contains(pages[0].LegacyNextLink, "subLedgerId=other&fromTransactionId=") || pages[0].NextLink != "" {
			t.Errorf("first @nextLink %q nextLink %q", pages[0].LegacyNextLink, pages[0].NextLink)
		}
	})
	t.Run("bounded", func(t *testing.T) {
		e.t = t
		from, to := want[10], want[700]
		entries, pages := follow(t, e.reader, q("/app/transactions", vNewer, "fromTransactionId", from.String(), "toTransactionId", to.String()), vNewer)
		checkEntries(t, entries, want[10:701], "subledger:0", "collectionId")
		for _, p := range pages[:len(pages)-1] {
			if !strings.Contains(p.NextLink, "toTransactionId="+to.String()) {
				t.Errorf("nextLink %q does not carry toTransactionId", p.NextLink)
			}
		}
	})
	t.Run("empty window", func(t *testing.T) {
		e.t = t
		// A collection with one entry, written last: the first windows
		// are Ready and empty, with a nextLink.
		id := e.write(e.contributor, v2022, "late", "x")
		e.commit(id)
		r := e.reader.get(q("/app/transactions", v2022, "collectionId", "late")).expect(200, "")
		if !strings.HasPrefix(string(r.body), `{"entries":[],"nextLink":"/app/transactions?api-version=2022-05-13&collectionId=late&fromTransactionId=`) {
			t.Fatalf("first page %s", r.body)
		}
		entries, _ := follow(t, e.reader, q("/app/transactions", v2022, "collectionId", "late"), v2022)
		checkEntries(t, entries, []node.TxID{id}, "late", "collectionId")
	})
}

func checkEntries(t *testing.T, got []map[string]string, want []node.TxID, coll, key string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	for i, g := range got {
		if g["transactionId"] != want[i].String() || g[key] != coll || len(g) != 3 {
			t.Fatalf("entry %d = %v, want %s in %s", i, g, want[i], coll)
		}
	}
}

func TestRangeLoadingBeyondCommit(t *testing.T) {
	e := newEnv(t, envOptions{})
	id := e.write(e.contributor, v2022, "", "x")
	e.commit(id)
	last := e.quiesce()
	from := node.TxID{View: id.View, Seqno: last + 5000}
	to := node.TxID{View: id.View, Seqno: last + 6000}
	for _, version := range []string{v2022, v01} {
		path := q("/app/transactions", version, "fromTransactionId", from.String(), "toTransactionId", to.String())
		path += "&api-version=" + version // repeated identical api-version, as the JS client sends
		r := e.reader.get(path).expect(200, "")
		var want string
		if version == v01 {
			want = `{"@nextLink":"` + path + `","state":"Loading"}`
		} else {
			want = `{"entries":[],"nextLink":"` + path + `","state":"Loading"}`
		}
		if got := string(r.body); got != want {
			t.Errorf("%s Loading page %s, want %s", version, got, want)
		}
	}
	// Without toTransactionId, a window beyond the commit is the end.
	r := e.reader.get(q("/app/transactions", v2022, "fromTransactionId", from.String())).expect(200, "")
	if string(r.body) != `{"entries":[],"state":"Ready"}` {
		t.Errorf("open range beyond commit %s", r.body)
	}
	// A range ending beyond the commit stops at the committed seqno.
	entries, _ := follow(t, e.reader, q("/app/transactions", v2022, "toTransactionId", to.String()), v2022)
	checkEntries(t, entries, []node.TxID{id}, "subledger:0", "collectionId")
}

func TestRangeBadQueries(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, tc := range []struct{ query, code string }{
		{"fromTransactionId=abc", "InvalidTransactionId"},
		{"fromTransactionId=2", "InvalidTransactionId"},
		{"toTransactionId=0.5", "InvalidTransactionId"},
		{"toTransactionId=2.-1", "InvalidTransactionId"},
		{"fromTransactionId=2.10&toTransactionId=2.9", "InvalidQueryParameterValue"},
		{"fromTransactionId=2.1&fromTransactionId=2.2", "InvalidQueryParameterValue"},
		{"collectionId=", "InvalidQueryParameterValue"},
		{"subLedgerId=x", "InvalidQueryParameterValue"},
		{"collectionId=" + strings.Repeat("c", 257), "InvalidQueryParameterValue"},
		{"collectionId=%FF", "InvalidQueryParameterValue"},
		{"tag=a", "InvalidQueryParameterValue"},
	} {
		e.reader.get("/app/transactions?api-version=2022-05-13&"+tc.query).expect(400, tc.code)
	}
}
