package client_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/client"
	"github.com/ledgerd/ledgerd/internal/node"
	"github.com/ledgerd/ledgerd/receipt"
)

// TestTagsAndClaimsAgainstLedgerdProcess drives a real ledgerd process with
// a client of the default api-version (2022-05-13): the tag and claims calls
// send the versions that have them. Tagged appends are listed by tag
// (paged, every tag given), the collection's tags listed; a receipt's
// application claims verify against its leaf, and fail once one byte of them
// is altered; over-limit tags are the server's 400, typed.
func TestTagsAndClaimsAgainstLedgerdProcess(t *testing.T) {
	endpoint, data := startLedgerd(t)
	ctx := testContext(t)
	c, err := client.New(endpoint, client.CertificateFile(filepath.Join(data, "admin.pem")),
		&client.Options{ServiceCertFile: filepath.Join(data, "service.pem"), PollInterval: 10 * time.Millisecond, PollAttempts: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	const coll = "tagged"
	var ids []string
	for i, tags := range [][]string{{"alice", "greeting"}, {"bob"}, {"bob", "greeting"}, nil, {"alice", "goodbye"}} {
		res, err := c.AppendToLedger(ctx, fmt.Sprintf("entry %d", i), client.InCollection(coll), client.WithTags(tags...), client.WaitForCommit())
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.TransactionID)
	}
	list := func(tags ...string) (got []string) {
		t.Helper()
		for e, err := range c.ListLedgerEntriesByTags(ctx, "", "", coll, tags) {
			if err != nil {
				t.Fatal(err)
			}
			if e.CollectionID != coll || !slices.Contains(ids, e.TransactionID) {
				t.Fatalf("listed %+v", e)
			}
			for _, tag := range tags {
				if !slices.Contains(e.Tags, tag) {
					t.Fatalf("entry %s listed for %q has tags %q", e.TransactionID, tag, e.Tags)
				}
			}
			got = append(got, e.TransactionID)
		}
		return got
	}
	if got, want := list("greeting"), []string{ids[0], ids[2]}; !slices.Equal(got, want) {
		t.Fatalf("tag greeting: %v, want %v", got, want)
	}
	if got, want := list("alice", "goodbye"), []string{ids[4]}; !slices.Equal(got, want) {
		t.Fatalf("tags alice,goodbye: %v, want %v", got, want)
	}
	if got := list("carol"); len(got) != 0 {
		t.Fatalf("tag carol: %v", got)
	}
	tags, err := c.ListCollectionTags(ctx, coll)
	if err != nil || len(tags) != 1 || tags[0].CollectionID != coll || !slices.Equal(tags[0].Tags, []string{"alice", "bob", "goodbye", "greeting"}) {
		t.Fatalf("collection tags %+v, %v", tags, err)
	}
	all, err := c.ListCollectionTags(ctx, "")
	if err != nil || !slices.ContainsFunc(all, func(ct client.CollectionTags) bool { return ct.CollectionID == coll }) {
		t.Fatalf("all collections' tags %+v, %v", all, err)
	}

	// Over the limits: the server's error, typed.
	var re *client.ResponseError
	_, err = c.AppendToLedger(ctx, "x", client.InCollection(coll), client.WithTags("a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"))
	if !errors.As(err, &re) || re.StatusCode != 400 || re.Code != client.CodeInvalidQueryParameterValue || !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("11 tags: %v", err)
	}
	full := "full"
	for i := 0; ; i++ {
		batch := make([]string, 10)
		for j := range batch {
			batch[j] = fmt.Sprintf("t%d-%d", i, j)
		}
		_, err := c.AppendToLedger(ctx, "x", client.InCollection(full), client.WithTags(batch...))
		if err == nil && i < 26 {
			continue
		}
		if !errors.As(err, &re) || re.StatusCode != 400 || re.Code != client.CodeTagLimitExceeded || i != 25 {
			t.Fatalf("write %d of ten new tags: %v", i, err)
		}
		break
	}
	if _, err := c.AppendToLedger(ctx, "x", client.WithTags("a,b")); err == nil {
		t.Fatal("a tag with a comma was sent")
	}

	// Application claims: the receipt of a tagged entry, asked for with the
	// claims api-version, verifies with them.
	rec, err := c.GetTransactionReceiptWithClaims(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	claims, err := c.VerifyReceiptWithClaims(rec)
	if err != nil {
		t.Fatal(err)
	}
	if len(claims) != 1 || claims[0].LedgerEntry == nil || claims[0].LedgerEntry.Contents != "entry 0" || claims[0].LedgerEntry.CollectionID != coll {
		t.Fatalf("claims %+v", claims)
	}
	// The 2022-05-13 receipt has none, and says so.
	plain, err := c.GetTransactionReceipt(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := c.VerifyReceipt(plain); err != nil {
		t.Fatal(err)
	}
	if _, err := c.VerifyReceiptWithClaims(plain); !errors.Is(err, client.ErrNoClaims) {
		t.Fatalf("claims of a 2022-05-13 receipt: %v", err)
	}
	// One byte altered in the contents, the collection or the key fails.
	key, _ := base64.StdEncoding.DecodeString(claims[0].LedgerEntry.SecretKey)
	key[3] ^= 1
	for name, alter := range map[string]func(e *receipt.LedgerEntryClaim){
		"contents":   func(e *receipt.LedgerEntryClaim) { e.Contents = "entry 1" },
		"collection": func(e *receipt.LedgerEntryClaim) { e.CollectionID = "taggee" },
		"secret key": func(e *receipt.LedgerEntryClaim) { e.SecretKey = base64.StdEncoding.EncodeToString(key) },
	} {
		bad := []receipt.ApplicationClaim{{Kind: claims[0].Kind, LedgerEntry: new(receipt.LedgerEntryClaim)}}
		*bad[0].LedgerEntry = *claims[0].LedgerEntry
		alter(bad[0].LedgerEntry)
		altered := *rec
		altered.ApplicationClaims, _ = json.Marshal(bad)
		if _, err := c.VerifyReceiptWithClaims(&altered); !errors.Is(err, receipt.ErrClaimsMismatch) {
			t.Errorf("receipt with altered %s: %v", name, err)
		}
	}
}

// TestTaggedRangeAcrossWindows: ListLedgerEntriesByTags follows nextLink
// across range windows (1001 seqnos each) with the tags api-version on
// every page, even for a client of 2022-05-13, and the tag filter kept.
func TestTaggedRangeAcrossWindows(t *testing.T) {
	l := newLedger(t, ledgerOptions{})
	ctx := testContext(t)
	reader := connect(t, l, l.ReaderPEM)
	futs := make([]*node.Future, 2600)
	for i := range futs {
		var tags []string
		if i%3 == 0 {
			tags = []string{"third"}
		}
		f, err := l.node.Submit(node.TaggedEntryWrites("c", fmt.Appendf(nil, "e%d", i), tags))
		if err != nil {
			t.Fatal(err)
		}
		futs[i] = f
	}
	var want []string
	var last node.TxID
	for i, f := range futs {
		id, err := f.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if last = id; i%3 == 0 {
			want = append(want, id.String())
		}
	}
	if err := l.node.WaitCommitted(ctx, last); err != nil {
		t.Fatal(err)
	}
	n := l.requests.len()
	var got []string
	for e, err := range reader.ListLedgerEntriesByTags(ctx, "", "", "c", []string{"third"}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.TransactionID)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%d tagged entries, want %d", len(got), len(want))
	}
	reqs := l.requests.since(n)
	if len(reqs) < 3 {
		t.Fatalf("%d page requests, want at least 3: %q", len(reqs), reqs)
	}
	for i, r := range reqs {
		if strings.Count(r, "api-version=") != 1 || !strings.Contains(r, "api-version="+client.TagsAPIVersion) || !strings.Contains(r, "third") {
			t.Errorf("request %d %q: want the tags api-version once and the tag", i, r)
		}
	}
}

// TestTagsAndClaimsFromEveryVersion: whatever the client's api-version (the
// legacy 0.1-preview with its subLedgerId, the GA version, the newest), the
// tag and claims calls send a version that has them, with that version's
// collection parameter, and work.
func TestTagsAndClaimsFromEveryVersion(t *testing.T) {
	l := newLedger(t, ledgerOptions{})
	ctx := testContext(t)
	for _, version := range []string{"0.1-preview", "2022-05-13", "2023-01-18-preview", "2026-02-23"} {
		t.Run(version, func(t *testing.T) {
			c := connect(t, l, l.ContributorPEM, func(o *client.Options) { o.APIVersion = version })
			coll := "v" + version
			res, err := c.AppendToLedger(ctx, "tagged in "+version, client.InCollection(coll), client.WithTags("x", "y"), client.WaitForCommit())
			if err != nil {
				t.Fatal(err)
			}
			if res.CollectionID != coll {
				t.Fatalf("append result %+v", res)
			}
			var got []client.TaggedEntry
			for e, err := range c.ListLedgerEntriesByTags(ctx, "", "", coll, []string{"y"}) {
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, e)
			}
			if len(got) != 1 || got[0].TransactionID != res.TransactionID || got[0].CollectionID != coll || !slices.Equal(got[0].Tags, []string{"x", "y"}) {
				t.Fatalf("listed %+v", got)
			}
			tags, err := c.ListCollectionTags(ctx, coll)
			if err != nil || len(tags) != 1 || !slices.Equal(tags[0].Tags, []string{"x", "y"}) {
				t.Fatalf("collection tags %+v, %v", tags, err)
			}
			rec, err := c.GetTransactionReceiptWithClaims(ctx, res.TransactionID)
			if err != nil {
				t.Fatal(err)
			}
			claims, err := c.VerifyReceiptWithClaims(rec)
			if err != nil || claims[0].LedgerEntry.Contents != "tagged in "+version {
				t.Fatalf("claims %+v, %v", claims, err)
			}
			// The entry is read back in the client's own version.
			if e, err := c.GetLedgerEntry(ctx, res.TransactionID, coll); err != nil || e.Contents != "tagged in "+version {
				t.Fatalf("entry %+v, %v", e, err)
			}
		})
	}
}
