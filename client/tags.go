package client

import (
	"context"
	"errors"
	"iter"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// TagsAPIVersion is the api-version of entry tags (2024-12-09-preview): a
// client whose Options.APIVersion is older sends it on the calls that use
// tags (AppendToLedger with WithTags, ListLedgerEntriesByTags,
// ListCollectionTags), and its own version on every other call.
const TagsAPIVersion = "2024-12-09-preview"

// ClaimsAPIVersion is the first api-version whose receipts carry
// applicationClaims (2023-01-18-preview): GetTransactionReceiptWithClaims
// sends it when the client's own version is older.
const ClaimsAPIVersion = "2023-01-18-preview"

// Server error codes of tags (acl-api.md, tags): a malformed tag or more
// than 10 on one entry is 400 InvalidQueryParameterValue; a write that would
// give its collection more than 256 distinct tags is 400 TagLimitExceeded.
// Both are a *ResponseError matching ErrBadRequest.
const (
	CodeInvalidQueryParameterValue = "InvalidQueryParameterValue"
	CodeTagLimitExceeded           = "TagLimitExceeded"
)

// versionsAtLeast lists, for a feature's first api-version, the versions
// from it on that the client knows; others (older, or unknown) make the
// call send the feature's version instead.
var versionsAtLeast = map[string][]string{
	ClaimsAPIVersion: {"2023-01-18-preview", "2024-01-26-preview", "2024-07-26-preview", "2024-08-22-preview", "2024-12-09-preview", "2026-02-23"},
	TagsAPIVersion:   {"2024-12-09-preview", "2026-02-23"},
}

// versionFor returns the api-version a call needing feature (its first
// version) sends: the client's own if it has the feature, else feature.
func (c *Client) versionFor(feature string) string {
	if slices.Contains(versionsAtLeast[feature], c.apiVersion) {
		return c.apiVersion
	}
	return feature
}

// WithTags makes AppendToLedger store the tags with the entry (POST
// /app/transactions?tags=a,b, api-version TagsAPIVersion or later). The
// ledger checks them: at most 10, each 1 to 64 bytes without a comma or a
// control or bidirectional character, at most 256 distinct tags in a
// collection; a refusal is its *ResponseError (CodeInvalidQueryParameterValue
// or CodeTagLimitExceeded, matching ErrBadRequest). A tag holding a comma is
// refused here, as the list is comma-separated on the wire.
func WithTags(tags ...string) AppendOption { return tagsOption(slices.Clone(tags)) }

type tagsOption []string

func (o tagsOption) applyAppend(s *appendSettings) { s.tags = append(s.tags, o...) }

// joinTags checks and joins tags for a query.
func joinTags(tags []string) (string, error) {
	for _, t := range tags {
		if t == "" || strings.Contains(t, ",") {
			return "", errors.New("a tag must be non-empty and hold no comma")
		}
	}
	return strings.Join(tags, ","), nil
}

// TaggedEntry is a ledger entry with its tags.
type TaggedEntry struct {
	Entry
	// Tags are the entry's tags, in the order they were written.
	Tags []string
}

// ListLedgerEntriesByTags is GetLedgerEntries restricted to the entries that
// carry every one of tags (GET /app/transactions?tag=a, or tags=a,b for
// several; api-version TagsAPIVersion or later), paged and polled the same
// way, each entry with its tags. At least one tag is needed.
func (c *Client) ListLedgerEntriesByTags(ctx context.Context, fromTxID, toTxID, collection string, tags []string, opts ...ReadOption) iter.Seq2[TaggedEntry, error] {
	joined, err := joinTags(tags)
	if err == nil && len(tags) == 0 {
		err = errors.New("no tag to list entries by")
	}
	if err != nil {
		return func(yield func(TaggedEntry, error) bool) { yield(TaggedEntry{}, err) }
	}
	q := modernCollection(c.rangeQuery(fromTxID, toTxID, collection))
	if len(tags) == 1 {
		q.Set("tag", joined)
	} else {
		q.Set("tags", joined)
	}
	rq := &request{method: http.MethodGet, path: "/app/transactions", query: q, apiVersion: c.versionFor(TagsAPIVersion)}
	return func(yield func(TaggedEntry, error) bool) {
		for e, err := range c.listEntries(ctx, rq, c.readSettings(opts)) {
			if !yield(TaggedEntry{Entry: e.entry(), Tags: e.Tags}, err) {
				return
			}
		}
	}
}

// CollectionTags is the set of tags a collection's entries carry.
type CollectionTags struct {
	CollectionID string
	// Tags are sorted.
	Tags []string
}

// ListCollectionTags returns the tags of the entries of each collection
// that has tagged entries, or of collection only (its tags may be none):
// GET /app/collections/tags[?collectionId=], api-version TagsAPIVersion or
// later. It reads the ledger's latest state, as ListCollections does.
func (c *Client) ListCollectionTags(ctx context.Context, collection string) ([]CollectionTags, error) {
	q := url.Values{}
	if collection != "" {
		q.Set("collectionId", collection)
	}
	resp, err := c.do(ctx, &request{method: http.MethodGet, path: "/app/collections/tags", query: q, apiVersion: c.versionFor(TagsAPIVersion)})
	if err != nil {
		return nil, err
	}
	var body struct {
		Collections []struct {
			CollectionID string   `json:"collectionId"`
			Tags         []string `json:"tags"`
		} `json:"collections"`
	}
	if err := resp.decode(&body); err != nil {
		return nil, err
	}
	out := make([]CollectionTags, 0, len(body.Collections))
	for _, ct := range body.Collections {
		tags := ct.Tags
		if tags == nil {
			tags = []string{}
		}
		out = append(out, CollectionTags{CollectionID: ct.CollectionID, Tags: tags})
	}
	return out, nil
}
