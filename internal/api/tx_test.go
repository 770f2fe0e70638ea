package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/node"
	"github.com/ledgerd/ledgerd/receipt"
)

func TestEntryLifecycleInEveryDialect(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, version := range []string{v01, v2022, vNewer} {
		t.Run(version, func(t *testing.T) {
			e.t = t
			coll := "dialect " + version
			key := collectionParam(version)
			// POST answers with the collection, in the dialect's key.
			r := e.contributor.post(q("/app/transactions", version, key, coll), map[string]string{"contents": "hello ✓"}).expect(200, "")
			if got := r.object(); len(got) != 1 || got[key] != coll {
				t.Fatalf("POST body %s, want {%q: %q}", r.body, key, coll)
			}
			id := r.txid()
			e.commit(id)

			// GET the entry from its collection.
			want := fmt.Sprintf(`{"entry":%s,"state":"Ready"}`, entryJSON(version, coll, "hello ✓", id))
			if got := string(e.reader.get(q("/app/transactions/"+id.String(), version, key, coll)).expect(200, "").body); got != want {
				t.Errorf("GET = %s, want %s", got, want)
			}
			// From another collection it is not found; without a collection
			// parameter the default collection is read (acl-api.md §4).
			e.reader.get(q("/app/transactions/"+id.String(), version, key, "other")).expect(404, "TransactionNotFound")
			e.reader.get(q("/app/transactions/"+id.String(), version)).expect(404, "TransactionNotFound")
			def := e.contributor.post(q("/app/transactions", version), map[string]string{"contents": "in the default"}).expect(200, "").txid()
			e.commit(def)
			wantDef := fmt.Sprintf(`{"entry":%s,"state":"Ready"}`, entryJSON(version, "subledger:0", "in the default", def))
			for _, path := range []string{q("/app/transactions/"+def.String(), version), q("/app/transactions/"+def.String(), version, key, "subledger:0")} {
				if got := string(e.reader.get(path).expect(200, "").body); got != wantDef {
					t.Errorf("GET %s = %s, want %s", path, got, wantDef)
				}
			}

			// Status.
			st := e.reader.get(q("/app/transactions/"+id.String()+"/status", version)).expect(200, "")
			if got, want := string(st.body), fmt.Sprintf(`{"state":"Committed","transactionId":"%s"}`, id); got != want {
				t.Errorf("status %s, want %s", got, want)
			}

			// Current entry of the collection.
			cur := e.reader.get(q("/app/transactions/current", version, key, coll)).expect(200, "")
			if got, want := string(cur.body), entryJSON(version, coll, "hello ✓", id); got != want {
				t.Errorf("current %s, want %s", got, want)
			}

			// The receipt verifies against the service certificate.
			rr := e.reader.get(q("/app/transactions/"+id.String()+"/receipt", version)).expect(200, "")
			var body struct {
				Receipt       map[string]any `json:"receipt"`
				State         string         `json:"state"`
				TransactionID string         `json:"transactionId"`
			}
			rr.decode(&body)
			if body.State != "Ready" || body.TransactionID != id.String() {
				t.Fatalf("receipt response %s", rr.body)
			}
			rec, err := receipt.Parse(rr.body)
			if err != nil {
				t.Fatalf("receipt.Parse: %v\n%s", err, rr.body)
			}
			if err := rec.Verify(e.ids.Service.Cert); err != nil {
				t.Fatalf("receipt does not verify: %v", err)
			}
			if version == v01 {
				for _, k := range []string{"leaf", "node_id", "proof", "root", "signature"} {
					if _, ok := body.Receipt[k]; !ok {
						t.Errorf("0.1-preview receipt lacks %q: %s", k, rr.body)
					}
				}
			} else {
				for _, k := range []string{"cert", "leafComponents", "nodeId", "proof", "serviceEndorsements", "signature"} {
					if _, ok := body.Receipt[k]; !ok {
						t.Errorf("receipt lacks %q: %s", k, rr.body)
					}
				}
			}
		})
	}
}

// entryJSON is the expected encoding of an entry.
func entryJSON(version, coll, contents string, id node.TxID) string {
	if version == v01 {
		return fmt.Sprintf(`{"contents":%q,"subLedgerId":%q,"transactionId":"%s"}`, contents, coll, id)
	}
	return fmt.Sprintf(`{"collectionId":%q,"contents":%q,"transactionId":"%s"}`, coll, contents, id)
}

func TestDefaultCollection(t *testing.T) {
	e := newEnv(t, envOptions{})
	r := e.admin.post(q("/app/transactions", v2022), map[string]string{"contents": "x"}).expect(200, "")
	if string(r.body) != `{"collectionId":"subledger:0"}` {
		t.Fatalf("POST body %s", r.body)
	}
	e.commit(r.txid())
	cur := e.reader.get(q("/app/transactions/current", v2022)).expect(200, "").object()
	if cur["collectionId"] != "subledger:0" || cur["transactionId"] != r.txid().String() {
		t.Fatalf("current %v", cur)
	}
	// The query may name the default collection URL-encoded, as clients do.
	e.reader.get("/app/transactions/current?api-version=2022-05-13&collectionId=subledger%3A0").expect(200, "")
}

func TestStatusReceiptAndEntryWhilePending(t *testing.T) {
	// A long signature interval leaves a fresh write Pending for up to a
	// second; if a signature lands between the write and the checks, try
	// again with another write.
	e := newEnv(t, envOptions{signatureInterval: 700 * time.Millisecond})
	for attempt := 0; ; attempt++ {
		if attempt == 5 {
			t.Fatal("never observed a Pending transaction")
		}
		id := e.write(e.contributor, v2022, "", fmt.Sprintf("pending %d", attempt))
		status := e.reader.get(q("/app/transactions/"+id.String()+"/status", v2022)).expect(200, "").object()["state"]
		entry := e.reader.get(q("/app/transactions/"+id.String(), v2022)).expect(200, "")
		rec := e.reader.get(q("/app/transactions/"+id.String()+"/receipt", v2022))
		if e.node.Status(id) != node.StatusPending {
			continue // committed meanwhile
		}
		if status != "Pending" {
			t.Fatalf("status %v, want Pending", status)
		}
		if string(entry.body) != `{"state":"Loading"}` {
			t.Fatalf("entry while Pending: %s", entry.body)
		}
		rec.expect(http.StatusNotAcceptable, "UncommittedLedgerEntry")
		want := fmt.Sprintf("The specified transaction (%s) is not committed yet, please wait until the service reports a committed transaction ID at least as high.", id)
		if rec.errorMessage() != want {
			t.Fatalf("406 message %q, want %q", rec.errorMessage(), want)
		}
		e.commit(id)
		if got := e.reader.get(q("/app/transactions/"+id.String()+"/status", v2022)).object()["state"]; got != "Committed" {
			t.Fatalf("status after commit %v", got)
		}
		e.reader.get(q("/app/transactions/"+id.String(), v2022)).expect(200, "")
		body := e.reader.get(q("/app/transactions/"+id.String()+"/receipt", v2022)).expect(200, "").body
		if err := receipt.VerifyPEM(body, e.ids.Service.CertPEM); err != nil {
			t.Fatalf("receipt after commit: %v", err)
		}
		return
	}
}

func TestUnknownAndNonEntryTransactions(t *testing.T) {
	e := newEnv(t, envOptions{})
	id := e.write(e.contributor, v2022, "", "x")
	e.commit(id)
	last := e.quiesce()
	// Far beyond the ledger: Unknown, not found. The API's states are only
	// Pending and Committed, so status is a 404 that pollers treat as final.
	far := node.TxID{View: id.View, Seqno: last + 1000}
	e.reader.get(q("/app/transactions/"+far.String()+"/status", v2022)).expect(404, "InvalidTransactionId")
	e.reader.get(q("/app/transactions/"+far.String(), v2022)).expect(404, "TransactionNotFound")
	e.reader.get(q("/app/transactions/"+far.String()+"/receipt", v2022)).expect(404, "TransactionNotFound")
	// The right seqno in the wrong view: Invalid.
	wrong := node.TxID{View: id.View + 7, Seqno: id.Seqno}
	e.reader.get(q("/app/transactions/"+wrong.String()+"/status", v2022)).expect(404, "InvalidTransactionId")
	e.reader.get(q("/app/transactions/"+wrong.String(), v2022)).expect(404, "TransactionInvalid")
	// The signature after the write holds no entry, but has a receipt.
	sig := node.TxID{View: id.View, Seqno: id.Seqno + 1}
	e.reader.get(q("/app/transactions/"+sig.String(), v2022)).expect(404, "TransactionNotFound")
	body := e.reader.get(q("/app/transactions/"+sig.String()+"/receipt", v2022)).expect(200, "").body
	if err := receipt.VerifyPEM(body, e.ids.Service.CertPEM); err != nil {
		t.Fatalf("signature receipt: %v", err)
	}
	if !strings.Contains(string(body), `"isSignatureTransaction":true`) {
		t.Errorf("signature receipt %s", body)
	}
	// A collection without entries has no current entry.
	e.reader.get(q("/app/transactions/current", v2022, "collectionId", "empty")).expect(404, "ResourceNotFound")
}

func TestCollections(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, c := range []string{"b", "a", "subledger:0"} {
		e.commit(e.write(e.contributor, v2022, c, "x"))
	}
	got := string(e.reader.get(q("/app/collections", v2022)).expect(200, "").body)
	want := `{"collections":[{"collectionId":"a"},{"collectionId":"b"},{"collectionId":"subledger:0"}]}`
	if got != want {
		t.Fatalf("collections %s, want %s", got, want)
	}
}

// TestReadsSeePendingWrites: reads run against the node's latest executed
// state, as in CCF: a write still Pending (no signature for an hour) is at
// once the current entry of its collection, and a new collection is listed;
// its entry by id stays Loading.
func TestReadsSeePendingWrites(t *testing.T) {
	e := newEnv(t, envOptions{signatureInterval: time.Hour})
	for i := range 5 {
		coll, contents := fmt.Sprintf("fresh-%d", i), fmt.Sprintf("pending %d", i)
		id := e.write(e.contributor, v2022, coll, contents)
		if st := e.node.Status(id); st != node.StatusPending {
			t.Fatalf("status of %s = %v, want Pending", id, st)
		}
		var cur map[string]string
		e.reader.get(q("/app/transactions/current", v2022, "collectionId", coll)).expect(200, "").decode(&cur)
		if cur["collectionId"] != coll || cur["contents"] != contents || cur["transactionId"] != id.String() {
			t.Fatalf("current of %s right after a Pending write: %v, want %s %q", coll, cur, id, contents)
		}
		var list struct {
			Collections []struct {
				CollectionID string `json:"collectionId"`
			} `json:"collections"`
		}
		e.reader.get(q("/app/collections", v2022)).expect(200, "").decode(&list)
		listed := false
		for _, c := range list.Collections {
			listed = listed || c.CollectionID == coll
		}
		if !listed {
			t.Fatalf("collection %s not listed right after its Pending first write: %+v", coll, list)
		}
		if body := e.reader.get(q("/app/transactions/"+id.String(), v2022, "collectionId", coll)).expect(200, "").body; string(body) != `{"state":"Loading"}` {
			t.Fatalf("entry by id while Pending: %s", body)
		}
	}
}
