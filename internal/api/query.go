package api

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ledgerd/ledgerd/internal/node"
)

// Query parameters of range queries.
const (
	fromParam = "fromTransactionId"
	toParam   = "toTransactionId"
)

// knownParams are the query parameters of the ACL API, whose names are
// case-sensitive.
var knownParams = []string{apiVersionParam, "collectionId", "subLedgerId", fromParam, toParam, "tags", "tag", "module_name", "roleName"}

// checkQuery refuses a query string that would be misread: one that
// url.ParseQuery cannot parse (an unescaped ';', which Go's server drops
// with everything after it, or a malformed %-escape), and a known parameter
// spelt in another letter case, which would otherwise be ignored and, for
// collectionId, send a write to the default collection.
func checkQuery(raw string) error {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return newError(http.StatusBadRequest, codeInvalidQuery,
			"The query string is malformed (%s): separate parameters with '&' and percent-encode ';', '&', '+' and '%%' in values.",
			clip(err.Error()))
	}
	for name := range q {
		for _, known := range knownParams {
			if name != known && strings.EqualFold(name, known) {
				return newError(http.StatusBadRequest, codeInvalidQuery,
					"Unknown query parameter %s: parameter names are case-sensitive; use %s.", clip(name), known)
			}
		}
	}
	return nil
}

// param returns the value of a query parameter and whether it is present.
// A parameter repeated with identical values counts once; differing values
// are an error.
func param(q url.Values, name string) (string, bool, error) {
	vs := q[name]
	if len(vs) == 0 {
		return "", false, nil
	}
	for _, v := range vs[1:] {
		if v != vs[0] {
			return "", false, newError(http.StatusBadRequest, codeInvalidQuery,
				"The query parameter %s is given with different values.", name)
		}
	}
	return vs[0], true, nil
}

// collectionOf returns the collection a request names in its dialect's
// query parameter, or DefaultCollection. The other dialect's parameter is
// refused rather than ignored, so that a client on the wrong api-version
// does not silently read or write the default collection.
func collectionOf(q url.Values, d dialect) (string, error) {
	if _, ok := q[d.otherCollectionParam()]; ok {
		return "", newError(http.StatusBadRequest, codeInvalidQuery,
			"The query parameter %s is not part of api-version %s; use %s.", d.otherCollectionParam(), d.version, d.collectionParam())
	}
	id, ok, err := param(q, d.collectionParam())
	if err != nil || !ok {
		return DefaultCollection, err
	}
	return id, checkCollectionID(d, id)
}

// refuseParam refuses a query parameter that a later api-version defines
// but ledgerd does not implement, rather than silently ignoring it (tags on
// POST and tag on GET /app/transactions, 2024-12-09-preview).
func refuseParam(q url.Values, name string) error {
	if _, ok := q[name]; ok {
		return newError(http.StatusBadRequest, codeInvalidQuery, "The query parameter %s is not supported by this ledger.", name)
	}
	return nil
}

// forbiddenIDRune reports whether r may not appear in a collection or user
// id: a control character (Unicode category Cc: NUL, newline, escape, DEL,
// C1) or a bidirectional formatting character (U+061C, U+200E, U+200F,
// U+202A-U+202E, U+2066-U+2069), which can make an id print as another one
// in a terminal, a log or a list of users. Ids are otherwise opaque: they
// are compared byte for byte, as CCF compares its keys, so the NFC and NFD
// spellings of "é" are two different ids.
func forbiddenIDRune(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)
}

// checkCollectionID checks a collection id: 1 to MaxCollectionIDBytes bytes
// of UTF-8 without control or bidirectional formatting characters.
func checkCollectionID(d dialect, id string) error {
	switch {
	case id == "":
		return newError(http.StatusBadRequest, codeInvalidQuery, "The %s query parameter is empty.", d.collectionParam())
	case len(id) > MaxCollectionIDBytes:
		return newError(http.StatusBadRequest, codeInvalidQuery,
			"The %s is %d bytes long; at most %d bytes are allowed.", d.collectionParam(), len(id), MaxCollectionIDBytes)
	case !utf8.ValidString(id):
		return newError(http.StatusBadRequest, codeInvalidQuery, "The %s is not valid UTF-8.", d.collectionParam())
	case strings.ContainsFunc(id, forbiddenIDRune):
		return newError(http.StatusBadRequest, codeInvalidQuery,
			"The %s contains a control or bidirectional formatting character.", d.collectionParam())
	}
	return nil
}

// parseTxID parses a transaction id from a path or query parameter.
func parseTxID(s string) (node.TxID, error) {
	id, err := node.ParseTxID(s)
	if err != nil {
		return node.TxID{}, newError(http.StatusBadRequest, codeInvalidTransactionID,
			"%q is not a transaction id: a transaction id is <view>.<seqno>, both positive decimal numbers, e.g. 2.15.", clip(s))
	}
	return id, nil
}

// rangeQuery is a parsed GET /app/transactions request. Ranges are seqno
// ranges: the view of fromTransactionId and toTransactionId is checked for
// form but otherwise ignored, as the real service's nextLink (which carries
// the current view with seqnos of older views) implies.
type rangeQuery struct {
	collection string
	// from is the first seqno of the page's window (default 1).
	from uint64
	// to is the last seqno asked for, inclusive; hasTo says whether the
	// request bounds the range.
	to    uint64
	hasTo bool
	// toRaw is toTransactionId as given, carried into nextLink.
	toRaw string
	// tags: only entries carrying every one of them (2024-12-09-preview:
	// ?tag=a, or ?tags=a,b).
	tags []string
}

// parseRangeQuery parses and checks the query of a range request.
func parseRangeQuery(q url.Values, d dialect) (rangeQuery, error) {
	rq := rangeQuery{from: 1}
	var err error
	if rq.tags, err = tagFilterOf(q, d); err != nil {
		return rangeQuery{}, err
	}
	if rq.collection, err = collectionOf(q, d); err != nil {
		return rangeQuery{}, err
	}
	if s, ok, err := param(q, fromParam); err != nil {
		return rangeQuery{}, err
	} else if ok {
		id, err := parseTxID(s)
		if err != nil {
			return rangeQuery{}, err
		}
		rq.from = id.Seqno
	}
	if s, ok, err := param(q, toParam); err != nil {
		return rangeQuery{}, err
	} else if ok {
		id, err := parseTxID(s)
		if err != nil {
			return rangeQuery{}, err
		}
		rq.to, rq.hasTo, rq.toRaw = id.Seqno, true, s
	}
	if rq.hasTo && rq.from > rq.to {
		return rangeQuery{}, newError(http.StatusBadRequest, codeInvalidQuery,
			"%s (seqno %d) is after %s (seqno %d).", fromParam, rq.from, toParam, rq.to)
	}
	return rq, nil
}

// Limits on entry tags (2024-12-09-preview; the service documents none, so
// these are ledgerd's).
const (
	// MaxEntryTags is the most tags one entry may carry.
	MaxEntryTags = 10
	// MaxTagBytes is the longest tag, in bytes of UTF-8.
	MaxTagBytes = 64
	// MaxCollectionTags is the most distinct tags the entries of one
	// collection may carry in all (it bounds the node's tag index).
	MaxCollectionTags = 256
)

// parseTags parses the comma-separated tags of a query parameter (possibly
// repeated): each 1 to MaxTagBytes bytes of UTF-8 without a comma, control
// or bidirectional formatting character; duplicates count once, in first
// order; at most MaxEntryTags in all.
func parseTags(name string, values []string) ([]string, error) {
	var tags []string
	for _, v := range values {
		for _, t := range strings.Split(v, ",") {
			switch {
			case t == "":
				return nil, newError(http.StatusBadRequest, codeInvalidQuery,
					"The %s query parameter holds an empty tag: separate tags with single commas.", name)
			case len(t) > MaxTagBytes:
				return nil, newError(http.StatusBadRequest, codeInvalidQuery,
					"A tag is %d bytes long; at most %d bytes are allowed.", len(t), MaxTagBytes)
			case !utf8.ValidString(t):
				return nil, newError(http.StatusBadRequest, codeInvalidQuery, "A tag is not valid UTF-8.")
			case strings.ContainsFunc(t, forbiddenIDRune):
				return nil, newError(http.StatusBadRequest, codeInvalidQuery,
					"A tag contains a control or bidirectional formatting character.")
			}
			if !slices.Contains(tags, t) {
				tags = append(tags, t)
			}
		}
	}
	if len(tags) > MaxEntryTags {
		return nil, newError(http.StatusBadRequest, codeInvalidQuery,
			"%d tags given; at most %d are allowed.", len(tags), MaxEntryTags)
	}
	return tags, nil
}

// entryTagsOf returns the tags of a POST /app/transactions: ?tags=a,b in a
// dialect with tags; refused in the others, where it would be lost.
func entryTagsOf(q url.Values, d dialect) ([]string, error) {
	if !d.tags {
		return nil, refuseParam(q, "tags")
	}
	if err := refuseParam(q, "tag"); err != nil {
		return nil, err
	}
	if _, ok := q["tags"]; !ok {
		return nil, nil
	}
	return parseTags("tags", q["tags"])
}

// tagFilterOf returns the tag filter of GET /app/transactions: ?tag=a (the
// Python SDK's) or ?tags=a,b (the Java samples'), both meaning entries that
// carry every tag given; refused in a dialect without tags.
func tagFilterOf(q url.Values, d dialect) ([]string, error) {
	if !d.tags {
		if err := refuseParam(q, "tag"); err != nil {
			return nil, err
		}
		return nil, refuseParam(q, "tags")
	}
	var values []string
	values = append(values, q["tag"]...)
	values = append(values, q["tags"]...)
	if len(values) == 0 {
		return nil, nil
	}
	return parseTags("tag", values)
}
