package api_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

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

// TestRangeBeyondTheEnd checks that a range past the end of the ledger
// ends: Ready with no entries and no nextLink, with or without
// toTransactionId, in both dialects (it used to be Loading with a nextLink
// to itself, forever).
func TestRangeBeyondTheEnd(t *testing.T) {
	e := newEnv(t, envOptions{})
	id := e.write(e.contributor, v2022, "", "x")
	e.commit(id)
	last := e.quiesce()
	for _, version := range []string{v2022, v01} {
		for _, tc := range []struct{ from, to uint64 }{
			{last + 1, last + 1},
			{last + 1, last + 1_000_000},
			{last + 5000, last + 6000},
			{last + 5000, 0}, // no toTransactionId
		} {
			kv := []string{"fromTransactionId", node.TxID{View: id.View, Seqno: tc.from}.String()}
			if tc.to != 0 {
				kv = append(kv, "toTransactionId", node.TxID{View: id.View, Seqno: tc.to}.String())
			}
			path := q("/app/transactions", version, kv...) + "&api-version=" + version // repeated, as the JS client sends
			r := e.reader.get(path).expect(200, "")
			if got := string(r.body); got != `{"entries":[],"state":"Ready"}` {
				t.Errorf("%s %s: %s, want the end of the range", version, path, got)
			}
			// A pager that follows links gets nothing, in one request.
			entries, pages := follow(t, e.reader, path, version)
			if len(entries) != 0 || len(pages) != 1 {
				t.Errorf("%s %s: %d entries in %d pages", version, path, len(entries), len(pages))
			}
		}
	}
	// A range ending beyond the end stops at the committed seqno.
	to := node.TxID{View: id.View, Seqno: last + 6000}
	entries, _ := follow(t, e.reader, q("/app/transactions", v2022, "toTransactionId", to.String()), v2022)
	checkEntries(t, entries, []node.TxID{id}, "subledger:0", "collectionId")
}

// TestRangeOfAPendingWrite checks the one Loading page a range has: a
// window that starts at a transaction that exists but is not committed yet
// is Loading, with the canonical link to itself (not the request's URI,
// which the JS client lengthens with each api-version it appends), until
// the transaction commits; a window that starts after it is the end.
func TestRangeOfAPendingWrite(t *testing.T) {
	// A signature every second transaction and never by time: of two
	// consecutive writes, one stays Pending until the next write.
	e := newEnv(t, envOptions{signatureInterval: time.Hour, signatureTxs: 2})
	for attempt := 0; ; attempt++ {
		if attempt == 2 {
			t.Fatal("never observed a Pending transaction")
		}
		id := e.write(e.contributor, v2022, "", fmt.Sprintf("pending %d", attempt))
		from, to := id.String(), node.TxID{View: id.View, Seqno: id.Seqno + 1000}.String()
		path := q("/app/transactions", v2022, "fromTransactionId", from, "toTransactionId", to)
		loading := e.reader.get(path+"&api-version="+v2022).expect(200, "")
		// The last transaction that exists: executed, on disk or not yet.
		executed := func() uint64 { return max(e.node.LastSeqno(), e.node.State().Applied()) }
		lastSeqno := executed()
		after := node.TxID{View: id.View, Seqno: lastSeqno + 1}.String()
		end := e.reader.get(q("/app/transactions", v2022, "fromTransactionId", after, "toTransactionId", to)).expect(200, "")
		if e.node.Status(id) != node.StatusPending || executed() != lastSeqno {
			continue // committed, or a signature appended, meanwhile
		}
		link := "/app/transactions?api-version=2022-05-13&collectionId=subledger%3A0&fromTransactionId=" +
			node.TxID{View: e.node.CommittedTxID().View, Seqno: id.Seqno}.String() + "&toTransactionId=" + to
		if want := `{"entries":[],"nextLink":"` + link + `","state":"Loading"}`; string(loading.body) != want {
			t.Fatalf("range of a pending write: %s, want %s", loading.body, want)
		}
		if string(end.body) != `{"entries":[],"state":"Ready"}` {
			t.Fatalf("range after the pending write: %s", end.body)
		}
		// Once committed (the next write brings the signature), the link
		// lists the write.
		e.write(e.contributor, v2022, "other", "brings the signature")
		e.commit(id)
		entries, _ := follow(t, e.reader, link, v2022)
		checkEntries(t, entries, []node.TxID{id}, "subledger:0", "collectionId")
		return
	}
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
