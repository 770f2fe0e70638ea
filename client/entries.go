package client

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"time"
)

// Transaction states of the ACL API (acl-api.md §4).
const (
	// StateCommitted is a transaction that is durably in the ledger: it
	// has a receipt and will never be rolled back.
	StateCommitted = "Committed"
	// StatePending is a transaction that has its id in the log but is not
	// committed yet: it may still be lost (and turn Invalid) in a crash or
	// a change of primary.
	StatePending = "Pending"
	// StateUnknown is a transaction id the ledger has not reached (or not
	// replicated) yet, and StateInvalid one that was rolled back, as CCF
	// names them; ledgerd answers 404 InvalidTransactionId for both instead.
	StateUnknown = "Unknown"
	StateInvalid = "Invalid"
	// StateReady and StateLoading are the states of read answers: Loading
	// means ask again shortly.
	StateReady   = "Ready"
	StateLoading = "Loading"
)

// AppendResult is the result of AppendToLedger.
type AppendResult struct {
	// TransactionID is the write's transaction id, "<view>.<seqno>".
	TransactionID string
	// CollectionID is the collection written to.
	CollectionID string
}

// Entry is a ledger entry.
type Entry struct {
	// TransactionID is the id of the transaction that wrote the entry.
	TransactionID string
	// Contents is the entry's text.
	Contents string
	// CollectionID is the entry's collection.
	CollectionID string
}

// TransactionStatus is the status of a transaction.
type TransactionStatus struct {
	// TransactionID is the transaction's id.
	TransactionID string
	// State is StateCommitted or StatePending, the API's states. Some
	// servers also answer StateUnknown or StateInvalid, where ledgerd
	// answers 404 InvalidTransactionId.
	State string
}

// entryJSON is an entry on the wire; 0.1-preview names the collection
// subLedgerId.
type entryJSON struct {
	CollectionID  string `json:"collectionId"`
	SubLedgerID   string `json:"subLedgerId"`
	Contents      string `json:"contents"`
	TransactionID string `json:"transactionId"`
	// Tags are sent from api-version 2024-12-09-preview on.
	Tags []string `json:"tags"`
}

func (e entryJSON) entry() Entry {
	coll := e.CollectionID
	if coll == "" {
		coll = e.SubLedgerID
	}
	return Entry{TransactionID: e.TransactionID, Contents: e.Contents, CollectionID: coll}
}

// collectionParam is the collection query parameter of the api-version.
func (c *Client) collectionParam() string {
	if c.legacy {
		return "subLedgerId"
	}
	return "collectionId"
}

// collectionQuery returns the query naming collection, or none for "".
func (c *Client) collectionQuery(collection string) url.Values {
	q := url.Values{}
	if collection != "" {
		q.Set(c.collectionParam(), collection)
	}
	return q
}

// txPath returns the path of a transaction (and suffix), checking the id is
// not empty; the ledger checks its form.
func txPath(txID, suffix string) (string, error) {
	if txID == "" {
		return "", errors.New("empty transaction id")
	}
	return "/app/transactions/" + url.PathEscape(txID) + suffix, nil
}

// AppendToLedger writes an entry with contents to the ledger's default
// collection, or to InCollection's: POST /app/transactions. It returns once
// the ledger has the write (Pending); with WaitForCommit, once the write is
// committed. If the wait fails, the result still has the transaction id,
// and the error is WaitUntilDurable's.
// Needs the Contributor or Administrator role.
//
// A write is retried only when it cannot have happened (see RetryPolicy).
func (c *Client) AppendToLedger(ctx context.Context, contents string, opts ...AppendOption) (AppendResult, error) {
	s := appendSettings{poll: c.pollDefaults()}
	for _, o := range opts {
		if o != nil {
			o.applyAppend(&s)
		}
	}
	rq := &request{method: http.MethodPost, path: "/app/transactions", query: c.collectionQuery(s.collection),
		body: jsonBody(map[string]string{"contents": contents}), contentType: mediaJSON}
	if len(s.tags) > 0 {
		joined, err := joinTags(s.tags)
		if err != nil {
			return AppendResult{}, err
		}
		rq.apiVersion = c.versionFor(TagsAPIVersion)
		rq.query = modernCollection(rq.query)
		rq.query.Set("tags", joined)
	}
	resp, err := c.do(ctx, rq)
	if err != nil {
		return AppendResult{}, err
	}
	var body entryJSON
	if err := resp.decode(&body); err != nil {
		return AppendResult{}, err
	}
	res := AppendResult{TransactionID: resp.txID(), CollectionID: body.entry().CollectionID}
	if res.TransactionID == "" {
		return res, fmt.Errorf("the ledger's answer to the write has no %s header", txIDHeader)
	}
	if s.poll.waitCommit {
		return res, c.waitCommitted(ctx, res.TransactionID, s.poll)
	}
	return res, nil
}

// GetTransactionStatus returns the state of a transaction: GET
// /app/transactions/{transactionId}/status.
func (c *Client) GetTransactionStatus(ctx context.Context, txID string) (TransactionStatus, error) {
	path, err := txPath(txID, "/status")
	if err != nil {
		return TransactionStatus{}, err
	}
	resp, err := c.do(ctx, &request{method: http.MethodGet, path: path})
	if err != nil {
		return TransactionStatus{}, err
	}
	var st struct {
		State         string `json:"state"`
		TransactionID string `json:"transactionId"`
	}
	if err := resp.decode(&st); err != nil {
		return TransactionStatus{}, err
	}
	if st.State == "" {
		return TransactionStatus{}, errors.New("the ledger's status answer has no state")
	}
	return TransactionStatus{TransactionID: st.TransactionID, State: st.State}, nil
}

// codeInvalidTransactionID is the code of the 404 that the status of a
// transaction that will never commit answers (unknown or rolled back);
// clients treat it as final (acl-api.md §4).
const codeInvalidTransactionID = "InvalidTransactionId"

// WaitUntilDurable polls the status of a transaction every interval until
// it is committed, making at most maxQueries queries (the Python SDK's
// wait_until_durable). interval ≤ 0 and maxQueries == 0 take the client's
// poll defaults; maxQueries < 0 means no bound but ctx's. It returns nil
// once committed, and an error wrapping ErrTimeout when the queries run out.
// A transaction that will never commit ends the wait at once: ledgerd, like
// the real service, answers 404 InvalidTransactionId (a *ResponseError
// matching ErrNotFound) for an unknown or rolled-back one; a server that
// reports the state Invalid gives ErrInvalidTransaction. Other 404 answers
// count as not yet known, as replicas may lag.
func (c *Client) WaitUntilDurable(ctx context.Context, txID string, interval time.Duration, maxQueries int) error {
	s := c.pollDefaults()
	if interval > 0 {
		s.interval = interval
	}
	if maxQueries != 0 {
		s.attempts = maxQueries
	}
	return c.waitCommitted(ctx, txID, s)
}

// waitCommitted polls a transaction's status until it is committed.
func (c *Client) waitCommitted(ctx context.Context, txID string, s pollSettings) error {
	state := "unqueried"
	for n := 0; ; {
		st, err := c.GetTransactionStatus(ctx, txID)
		n++
		var re *ResponseError
		switch {
		case errors.As(err, &re) && re.StatusCode == http.StatusNotFound && re.Code == codeInvalidTransactionID:
			return fmt.Errorf("transaction %s will not commit: %w", txID, err)
		case errors.Is(err, ErrNotFound):
			state = "not found"
		case err != nil:
			return fmt.Errorf("couldn't wait for transaction %s to commit: %w", txID, err)
		case st.State == StateCommitted:
			return nil
		case st.State == StateInvalid:
			return fmt.Errorf("transaction %s: %w", txID, ErrInvalidTransaction)
		default:
			state = st.State
		}
		if !s.more(n) {
			return fmt.Errorf("%w: transaction %s is still %s after %d status queries", ErrTimeout, txID, state, n)
		}
		if err := c.sleep(ctx, s.interval); err != nil {
			return fmt.Errorf("couldn't wait for transaction %s to commit (still %s): %w", txID, state, err)
		}
	}
}

// GetLedgerEntry returns the entry written by transaction txID: GET
// /app/transactions/{transactionId}, asked again while the ledger answers
// Loading (the transaction is not committed yet, or being fetched), within
// the poll's bounds (PollInterval, MaxAttempts, ctx); running out of
// attempts is ErrTimeout. With txID "", it returns the latest committed
// entry of the collection: GET /app/transactions/current. collection ""
// means the default collection, for txID too (as the real service reads
// it): a transaction that wrote another collection's entry is ErrNotFound
// unless its collection is named.
func (c *Client) GetLedgerEntry(ctx context.Context, txID, collection string, opts ...ReadOption) (Entry, error) {
	if txID == "" {
		return c.currentEntry(ctx, collection)
	}
	path, err := txPath(txID, "")
	if err != nil {
		return Entry{}, err
	}
	s := c.readSettings(opts)
	rq := &request{method: http.MethodGet, path: path, query: c.collectionQuery(collection)}
	for n := 1; ; n++ {
		resp, err := c.do(ctx, rq)
		if err != nil {
			return Entry{}, err
		}
		var body struct {
			Entry *entryJSON `json:"entry"`
			State string     `json:"state"`
		}
		if err := resp.decode(&body); err != nil {
			return Entry{}, err
		}
		switch {
		case body.State == StateReady && body.Entry != nil:
			return body.Entry.entry(), nil
		case body.State != StateLoading:
			return Entry{}, fmt.Errorf("unexpected answer for entry %s: state %q", txID, body.State)
		case !s.more(n):
			return Entry{}, fmt.Errorf("%w: entry %s is still Loading after %d attempts", ErrTimeout, txID, n)
		}
		if err := c.sleep(ctx, s.interval); err != nil {
			return Entry{}, fmt.Errorf("couldn't get entry %s (Loading): %w", txID, err)
		}
	}
}

// currentEntry serves GetLedgerEntry without a transaction id.
func (c *Client) currentEntry(ctx context.Context, collection string) (Entry, error) {
	resp, err := c.do(ctx, &request{method: http.MethodGet, path: "/app/transactions/current", query: c.collectionQuery(collection)})
	if err != nil {
		return Entry{}, err
	}
	var body entryJSON
	if err := resp.decode(&body); err != nil {
		return Entry{}, err
	}
	return body.entry(), nil
}

// pageJSON is a range page; 0.1-preview names its link @nextLink.
type pageJSON struct {
	Entries        []entryJSON `json:"entries"`
	NextLink       string      `json:"nextLink"`
	LegacyNextLink string      `json:"@nextLink"`
	State          string      `json:"state"`
}

// GetLedgerEntries returns an iterator over the entries of a collection (""
// for the default) written by transactions from fromTxID to toTxID, both
// inclusive, in order; "" leaves a bound open: from the ledger's start, to
// its latest committed entry. It requests GET /app/transactions page by
// page, following each page's nextLink (its path and query, with this
// client's api-version; never its host), and re-requests a page while the
// ledger answers Loading, with a backoff from PollInterval, up to
// MaxAttempts times (then ErrTimeout).
//
// The iterator yields each entry with a nil error; on a failure it yields
// one zero Entry with the error and stops. Stopping the loop early stops the
// requests. Each use of the iterator starts over.
func (c *Client) GetLedgerEntries(ctx context.Context, fromTxID, toTxID, collection string, opts ...ReadOption) iter.Seq2[Entry, error] {
	rq := &request{method: http.MethodGet, path: "/app/transactions", query: c.rangeQuery(fromTxID, toTxID, collection)}
	s := c.readSettings(opts)
	return func(yield func(Entry, error) bool) {
		for e, err := range c.listEntries(ctx, rq, s) {
			if !yield(e.entry(), err) {
				return
			}
		}
	}
}

// modernCollection returns q with a 0.1-preview subLedgerId renamed
// collectionId, for a call that sends a later api-version than the client's.
func modernCollection(q url.Values) url.Values {
	if v, ok := q["subLedgerId"]; ok {
		q.Del("subLedgerId")
		q["collectionId"] = v
	}
	return q
}

// rangeQuery is the query of a range of a collection's entries.
func (c *Client) rangeQuery(fromTxID, toTxID, collection string) url.Values {
	q := c.collectionQuery(collection)
	if fromTxID != "" {
		q.Set("fromTransactionId", fromTxID)
	}
	if toTxID != "" {
		q.Set("toTransactionId", toTxID)
	}
	return q
}

// listEntries serves GetLedgerEntries and ListLedgerEntriesByTags: it
// requests first and the pages its nextLinks name, with first's api-version.
func (c *Client) listEntries(ctx context.Context, first *request, s pollSettings) iter.Seq2[entryJSON, error] {
	return func(yield func(entryJSON, error) bool) {
		rq := first
		loading := 0
		for {
			page, err := c.getPage(ctx, rq)
			if err != nil {
				yield(entryJSON{}, err)
				return
			}
			link := page.NextLink
			if link == "" {
				link = page.LegacyNextLink
			}
			switch page.State {
			case StateLoading:
				loading++
				if !s.more(loading) {
					yield(entryJSON{}, fmt.Errorf("%w: range page %s is still Loading after %d attempts", ErrTimeout, rq.path+"?"+rq.query.Encode(), loading))
					return
				}
				if err := c.sleep(ctx, s.loadingDelay(loading)); err != nil {
					yield(entryJSON{}, fmt.Errorf("couldn't list entries (page Loading): %w", err))
					return
				}
				if link != "" {
					if rq, err = c.followLink(link, first.apiVersion); err != nil {
						yield(entryJSON{}, err)
						return
					}
				}
				continue
			case StateReady:
			default:
				yield(entryJSON{}, fmt.Errorf("unexpected range page state %q", page.State))
				return
			}
			loading = 0
			for _, e := range page.Entries {
				if !yield(e, nil) {
					return
				}
			}
			if link == "" {
				return
			}
			next, err := c.followLink(link, first.apiVersion)
			if err != nil {
				yield(entryJSON{}, err)
				return
			}
			if next.path == rq.path && next.query.Encode() == rq.query.Encode() {
				yield(entryJSON{}, fmt.Errorf("the ledger's Ready page links to itself (%s)", link))
				return
			}
			rq = next
		}
	}
}

// getPage requests one range page.
func (c *Client) getPage(ctx context.Context, rq *request) (*pageJSON, error) {
	resp, err := c.do(ctx, rq)
	if err != nil {
		return nil, err
	}
	var page pageJSON
	if err := resp.decode(&page); err != nil {
		return nil, err
	}
	return &page, nil
}

// followLink turns a nextLink into the next request: its path and query
// only, so that a link naming another host does not send the credentials
// there, and this client's api-version, or apiVersion if not "" (replacing
// the link's), as the Python SDK does.
func (c *Client) followLink(link, apiVersion string) (*request, error) {
	u, err := url.Parse(link)
	if err != nil {
		return nil, fmt.Errorf("bad nextLink %q: %w", link, err)
	}
	if u.Path == "" || u.Path[0] != '/' {
		return nil, fmt.Errorf("bad nextLink %q: no absolute path", link)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("bad nextLink %q: %w", link, err)
	}
	q.Del(apiVersionParam) // newHTTPRequest sets it
	return &request{method: http.MethodGet, path: u.EscapedPath(), query: q, apiVersion: apiVersion}, nil
}
