package api

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/ledgerd/ledgerd/internal/node"
	"github.com/ledgerd/ledgerd/receipt"
)

// Transaction states of the ACL API.
const (
	stateReady   = "Ready"
	stateLoading = "Loading"
)

// createEntry serves POST /app/transactions: it appends an entry and
// answers once the node has sequenced it (Pending; durable once Committed),
// with the transaction id in x-ms-ccf-transaction-id. Nothing is written
// unless the whole request is valid.
func (s *Server) createEntry(c *call) error {
	q := c.r.URL.Query()
	tags, err := entryTagsOf(q, c.d)
	if err != nil {
		return err
	}
	coll, err := collectionOf(q, c.d)
	if err != nil {
		return err
	}
	body, err := readBody(c, mediaJSON)
	if err != nil {
		return err
	}
	contents, hooks, err := decodeEntryWithHooks(body, c.d.collectionParam(), coll, c.d.userFunctions)
	if err != nil {
		return err
	}
	if hooks != nil {
		hooks.log = s.log
	}
	id, err := s.appendEntry(c.r.Context(), coll, contents, tags, hooks)
	if err != nil {
		return err
	}
	return c.replyJSON(http.StatusOK, id, oneStringObject(c.d.collectionParam(), coll))
}

// oneStringObject is the JSON object {key: value}, built directly when
// value is printable ASCII with nothing to escape (collection ids almost
// always are: it is the answer to every append), else by encoding/json.
func oneStringObject(key, value string) []byte {
	for i := 0; i < len(value); i++ {
		if b := value[i]; b < 0x20 || b > 0x7e || b == '"' || b == '\\' {
			data, _ := marshal(map[string]string{key: value}) // strings always encode
			return data
		}
	}
	b := make([]byte, 0, len(key)+len(value)+7)
	b = append(b, `{"`...)
	b = append(b, key...)
	b = append(b, `":"`...)
	b = append(b, value...)
	return append(b, `"}`...)
}

// entryJSON is a ledger entry as 2022-05-13 and later encode it (tags
// from 2024-12-09-preview, when the entry has any).
type entryJSON struct {
	CollectionID  string   `json:"collectionId"`
	Contents      string   `json:"contents"`
	Tags          []string `json:"tags,omitempty"`
	TransactionID string   `json:"transactionId"`
}

// legacyEntryJSON is a ledger entry as 0.1-preview encodes it.
type legacyEntryJSON struct {
	Contents      string `json:"contents"`
	SubLedgerID   string `json:"subLedgerId"`
	TransactionID string `json:"transactionId"`
}

// entry encodes a ledger entry in the dialect.
func (d dialect) entry(e node.Entry) any {
	if d.legacy {
		return legacyEntryJSON{Contents: string(e.Contents), SubLedgerID: e.Collection, TransactionID: e.ID.String()}
	}
	j := entryJSON{CollectionID: e.Collection, Contents: string(e.Contents), TransactionID: e.ID.String()}
	if d.tags {
		j.Tags = e.Tags
	}
	return j
}

// getEntry serves GET /app/transactions/{transactionId}: the entry once
// committed, {"state":"Loading"} while Pending. The entry is read from the
// collection the query names, or the default collection without one, as the
// spec and the SDKs document it (acl-api.md §4): an entry of another
// collection is 404 TransactionNotFound.
func (s *Server) getEntry(c *call) error {
	id, err := parseTxID(c.r.PathValue("transactionId"))
	if err != nil {
		return err
	}
	q := c.r.URL.Query()
	coll, err := collectionOf(q, c.d)
	if err != nil {
		return err
	}
	_, named := q[c.d.collectionParam()]
	e, err := s.reads.Entry(id)
	switch {
	case errors.Is(err, node.ErrUncommitted):
		return c.ok(map[string]string{"state": stateLoading})
	case err != nil:
		return err
	case e.Collection != coll && !named:
		return newError(http.StatusNotFound, codeTransactionNotFound,
			"Transaction %s holds no entry of the default collection %q: name the entry's collection with %s.",
			id, coll, c.d.collectionParam())
	case e.Collection != coll:
		return newError(http.StatusNotFound, codeTransactionNotFound,
			"Transaction %s holds no entry of %s %q.", id, c.d.collectionParam(), clip(coll))
	}
	return c.ok(struct {
		Entry any    `json:"entry"`
		State string `json:"state"`
	}{c.d.entry(e), stateReady})
}

// getStatus serves GET /app/transactions/{transactionId}/status.
func (s *Server) getStatus(c *call) error {
	id, err := parseTxID(c.r.PathValue("transactionId"))
	if err != nil {
		return err
	}
	// The API's TransactionState is Committed or Pending: clients poll until
	// Committed, so a transaction that never will be answers 404 (the real
	// service's InvalidTransactionId, which newer clients treat as final).
	switch st := s.reads.Status(id); st {
	case node.StatusInvalid:
		return newError(http.StatusNotFound, codeInvalidTransactionID,
			"Transaction %s is invalid: it was rolled back and will never be committed.", id)
	case node.StatusUnknown:
		return newError(http.StatusNotFound, codeInvalidTransactionID,
			"Transaction %s is unknown to this ledger.", id)
	default:
		return c.ok(struct {
			State         string `json:"state"`
			TransactionID string `json:"transactionId"`
		}{st.String(), id.String()})
	}
}

// legacyReceipt is a receipt in the CCF 1.x form of 0.1-preview, with the
// node certificate added so that it can be verified.
type legacyReceipt struct {
	Cert      string                 `json:"cert"`
	Leaf      string                 `json:"leaf"`
	NodeID    string                 `json:"node_id"`
	Proof     []receipt.ProofElement `json:"proof"`
	Root      string                 `json:"root"`
	Signature string                 `json:"signature"`
}

// getReceipt serves GET /app/transactions/{transactionId}/receipt: 406
// UncommittedLedgerEntry while the transaction is Pending.
func (s *Server) getReceipt(c *call) error {
	id, err := parseTxID(c.r.PathValue("transactionId"))
	if err != nil {
		return err
	}
	r, err := s.reads.Receipt(id)
	switch {
	case errors.Is(err, node.ErrUncommitted):
		return newError(http.StatusNotAcceptable, codeUncommitted,
			"The specified transaction (%s) is not committed yet, please wait until the service reports a committed transaction ID at least as high.", id)
	case err != nil:
		return err
	}
	var body any = r
	if c.d.legacy {
		if body, err = legacyReceiptOf(r); err != nil {
			return err
		}
	}
	var claims []receipt.ApplicationClaim
	if c.d.applicationClaims {
		if claims, err = s.applicationClaims(id); err != nil {
			return err
		}
	}
	return c.ok(struct {
		ApplicationClaims []receipt.ApplicationClaim `json:"applicationClaims,omitempty"`
		Receipt           any                        `json:"receipt"`
		State             string                     `json:"state"`
		TransactionID     string                     `json:"transactionId"`
	}{claims, body, stateReady, id.String()})
}

// applicationClaims returns the application claims of transaction id's
// receipt: the entry's LedgerEntryV1 claim, or none for a transaction that
// writes no entry or an entry written before ledgerd recorded claims (its
// claims digest is zeros).
func (s *Server) applicationClaims(id node.TxID) ([]receipt.ApplicationClaim, error) {
	e, err := s.reads.Entry(id)
	if errors.Is(err, node.ErrNotEntry) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return e.ApplicationClaims(), nil
}

// legacyReceiptOf converts a receipt to the 0.1-preview form, which states
// the leaf and the root instead of the leaf components.
func legacyReceiptOf(r *receipt.Receipt) (*legacyReceipt, error) {
	leaf, err := r.ComputeLeaf()
	if err != nil {
		return nil, fmt.Errorf("couldn't compute receipt leaf: %w", err)
	}
	root, err := r.ComputeRoot()
	if err != nil {
		return nil, fmt.Errorf("couldn't compute receipt root: %w", err)
	}
	return &legacyReceipt{Cert: r.Cert, Leaf: hex.EncodeToString(leaf[:]), NodeID: r.NodeID, Proof: r.Proof,
		Root: hex.EncodeToString(root[:]), Signature: r.Signature}, nil
}

// getCurrentEntry serves GET /app/transactions/current: the latest entry
// of the collection in the node's latest executed state (possibly still
// Pending, as CCF's endpoints read), with its own transaction id.
func (s *Server) getCurrentEntry(c *call) error {
	coll, err := collectionOf(c.r.URL.Query(), c.d)
	if err != nil {
		return err
	}
	e, err := s.reads.LatestEntry(coll)
	if errors.Is(err, node.ErrNotFound) {
		return newError(http.StatusNotFound, codeResourceNotFound,
			"The %s %q has no entries.", c.d.collectionParam(), clip(coll))
	}
	if err != nil {
		return err
	}
	return c.ok(c.d.entry(e))
}

// listCollections serves GET /app/collections.
func (s *Server) listCollections(c *call) error {
	type item struct {
		CollectionID string `json:"collectionId"`
	}
	ids := s.reads.State().Collections()
	items := make([]item, len(ids))
	for i, id := range ids {
		items[i].CollectionID = id
	}
	return c.ok(struct {
		Collections []item `json:"collections"`
	}{items})
}

// listCollectionTags serves GET /app/collections/tags[?collectionId=]
// (2024-12-09-preview): the tags each collection's entries carry, sorted,
// in the node's latest executed state: {"collections": [{"collectionId",
// "tags"}]}, one collection if collectionId is given (its tags may be []),
// else every collection that has tagged entries.
func (s *Server) listCollectionTags(c *call) error {
	type item struct {
		CollectionID string   `json:"collectionId"`
		Tags         []string `json:"tags"`
	}
	q := c.r.URL.Query()
	st := s.reads.State()
	items := []item{}
	if _, named := q[c.d.collectionParam()]; named {
		coll, err := collectionOf(q, c.d)
		if err != nil {
			return err
		}
		tags := st.CollectionTags(coll)
		if tags == nil {
			tags = []string{}
		}
		items = append(items, item{coll, tags})
	} else {
		for _, coll := range st.Collections() {
			if tags := st.CollectionTags(coll); len(tags) > 0 {
				items = append(items, item{coll, tags})
			}
		}
	}
	return c.ok(struct {
		Collections []item `json:"collections"`
	}{items})
}

// pageJSON is a range page. Keys sort as the real service's do.
type pageJSON struct {
	LegacyNextLink string `json:"@nextLink,omitempty"`
	// Entries is nil only on a 0.1-preview Loading page, which has no
	// entries key.
	Entries  []any  `json:"entries,omitzero"`
	NextLink string `json:"nextLink,omitempty"`
	State    string `json:"state"`
}

// listEntries serves GET /app/transactions: the committed entries of one
// collection in a fixed window of seqnos starting at fromTransactionId
// (default seqno 1), with a nextLink to the next window unless the window
// holds the last seqno asked for (toTransactionId, capped at the committed
// seqno). A range ends: a window that starts beyond the end of the ledger
// (its last executed seqno, committed or not, on disk or not) is Ready with no entries and no
// nextLink, as the real service ends a range at its end (acl-api.md §4).
// Only a window that starts at a transaction that exists but is not yet
// committed, within a range that reaches there, is Loading, with a nextLink
// to itself; that lasts until the transaction is committed or rolled back.
// lastExecuted is the last seqno that exists for a client: executed on this
// node (sequenced, answered with its id), whether or not it is on disk yet.
func (s *Server) lastExecuted() uint64 {
	return max(s.reads.LastSeqno(), s.reads.State().Applied())
}

func (s *Server) listEntries(c *call) error {
	rq, err := parseRangeQuery(c.r.URL.Query(), c.d)
	if err != nil {
		return err
	}
	committed := c.served.Seqno
	last := committed
	if rq.hasTo {
		last = min(rq.to, committed)
	}
	page := pageJSON{State: stateReady, Entries: []any{}}
	switch {
	case rq.from > last && rq.hasTo && rq.from <= s.lastExecuted():
		page.State = stateLoading
		if c.d.legacy {
			page.Entries = nil
		}
		// The canonical link, not the request's URI: the JS client appends
		// api-version to every link it follows.
		s.setNextLink(c, &page, nextLink(c.d, rq, node.TxID{View: c.served.View, Seqno: rq.from}))
		return c.ok(page)
	case rq.from > last:
		return c.ok(page)
	}
	end := min(rq.from+c.d.pageSeqnos-1, last)
	err = s.reads.Entries(rq.collection, rq.from, end, func(e node.Entry) bool {
		if e.HasTags(rq.tags) {
			page.Entries = append(page.Entries, c.d.entry(e))
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("couldn't read entries %d to %d: %w", rq.from, end, err)
	}
	if end < last {
		next := node.TxID{View: c.served.View, Seqno: end + 1}
		s.setNextLink(c, &page, nextLink(c.d, rq, next))
	}
	return c.ok(page)
}

// setNextLink sets the dialect's next-link key.
func (s *Server) setNextLink(c *call, page *pageJSON, link string) {
	if c.d.legacy {
		page.LegacyNextLink = link
	} else {
		page.NextLink = link
	}
}

// nextLink is the relative URL of the window starting at from.
func nextLink(d dialect, rq rangeQuery, from node.TxID) string {
	link := "/app/transactions?" + apiVersionParam + "=" + url.QueryEscape(d.version) +
		"&" + d.collectionParam() + "=" + url.QueryEscape(rq.collection) +
		"&" + fromParam + "=" + from.String()
	if rq.hasTo {
		link += "&" + toParam + "=" + url.QueryEscape(rq.toRaw)
	}
	if len(rq.tags) > 0 {
		link += "&tags=" + url.QueryEscape(strings.Join(rq.tags, ","))
	}
	return link
}
