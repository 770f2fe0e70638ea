package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ledgerd/ledgerd/internal/auth"
)

// Media types of request bodies.
const (
	mediaJSON      = "application/json"
	mediaMergePath = "application/merge-patch+json"
)

// readBody checks a request's Content-Type against the accepted media types
// (a missing Content-Type is taken as JSON; a charset parameter must be
// utf-8) and reads its body, refusing bodies larger than MaxBodyBytes before
// reading them when Content-Length says so.
func readBody(c *call, accepted ...string) ([]byte, error) {
	return readBodyUpTo(c, MaxBodyBytes, accepted...)
}

// readBodyUpTo is readBody with another size limit than MaxBodyBytes.
func readBodyUpTo(c *call, limit int64, accepted ...string) ([]byte, error) {
	if ct := c.r.Header.Get("Content-Type"); ct != "" {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil || !slices.Contains(accepted, mt) {
			return nil, newError(http.StatusUnsupportedMediaType, codeUnsupportedType,
				"Content-Type %q is not supported here; use %s.", clip(ct), strings.Join(accepted, " or "))
		}
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
			return nil, newError(http.StatusUnsupportedMediaType, codeUnsupportedType,
				"charset %q is not supported; request bodies are UTF-8.", clip(cs))
		}
	}
	if c.r.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	// Read into a buffer sized from Content-Length when the client sent one
	// (bounded above), instead of growing one from 512 bytes.
	var buf bytes.Buffer
	if cl := c.r.ContentLength; cl > 0 {
		buf.Grow(int(cl) + 1)
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(c.w, c.r.Body, limit))
	body := buf.Bytes()
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, err
		}
		return nil, newError(http.StatusBadRequest, codeInvalidInput, "Couldn't read the request body.")
	}
	return body, nil
}

// invalidInput is a 400 InvalidInput error.
func invalidInput(format string, args ...any) error {
	return newError(http.StatusBadRequest, codeInvalidInput, format, args...)
}

// decodeObject decodes a JSON object strictly: the body must be valid UTF-8
// holding exactly one object, with no duplicate keys and no keys other than
// those of fields, each of whose functions decodes its member's raw value.
// Members absent from the body are the caller's to check.
func decodeObject(body []byte, fields map[string]func(json.RawMessage) error) error {
	if !utf8.Valid(body) {
		return invalidInput("The request body is not valid UTF-8.")
	}
	if !json.Valid(body) {
		// The streaming decoder finds the error and words it.
		return decodeObjectStream(body, fields)
	}
	b := skipSpace(body)
	if len(b) == 0 || b[0] != '{' {
		return invalidInput("The request body must be a JSON object.")
	}
	// body is exactly one valid JSON object: walk its members.
	seen := make(map[string]bool, len(fields))
	i := 1
	for {
		i += len(b[i:]) - len(skipSpace(b[i:]))
		switch b[i] {
		case '}':
			return nil
		case ',':
			i++
			i += len(b[i:]) - len(skipSpace(b[i:]))
		}
		end := jsonStringEnd(b, i)
		var key string
		if k := b[i+1 : end-1]; bytes.IndexByte(k, '\\') < 0 {
			key = string(k)
		} else if err := json.Unmarshal(b[i:end], &key); err != nil {
			return invalidInput("The request body is not valid JSON: %v.", err)
		}
		i = end
		i += len(b[i:]) - len(skipSpace(b[i:])) + 1 // ':'
		i += len(b[i:]) - len(skipSpace(b[i:]))
		vend := jsonValueEnd(b, i)
		fn, known := fields[key]
		switch {
		case !known:
			return invalidInput("Unknown field %q in the request body; the fields are %s.", clip(key), fieldList(fields))
		case seen[key]:
			return invalidInput("The field %q appears more than once in the request body.", key)
		}
		seen[key] = true
		if err := fn(json.RawMessage(b[i:vend:vend])); err != nil {
			return err
		}
		i = vend
	}
}

// jsonStringEnd returns the index just after the JSON string starting at
// b[i] (a '"'), in valid JSON.
func jsonStringEnd(b []byte, i int) int {
	for j := i + 1; ; j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
}

// jsonValueEnd returns the index just after the JSON value starting at
// b[i], in valid JSON.
func jsonValueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return jsonStringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; ; j++ {
			switch b[j] {
			case '"':
				j = jsonStringEnd(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
	}
	j := i
	for j < len(b) && !strings.ContainsRune(",}] \t\r\n", rune(b[j])) {
		j++
	}
	return j
}

// jsonArrayItems returns the items of raw, a JSON array in valid JSON (a
// member of a body decodeObject accepted).
func jsonArrayItems(raw json.RawMessage) []json.RawMessage {
	var items []json.RawMessage
	i := 1
	for {
		i += len(raw[i:]) - len(skipSpace(raw[i:]))
		switch raw[i] {
		case ']':
			return items
		case ',':
			i++
			i += len(raw[i:]) - len(skipSpace(raw[i:]))
		}
		end := jsonValueEnd(raw, i)
		items = append(items, raw[i:end:end])
		i = end
	}
}

// decodeObjectStream is decodeObject with encoding/json's streaming
// decoder, for bodies that are not valid JSON: it says what is wrong.
func decodeObjectStream(body []byte, fields map[string]func(json.RawMessage) error) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return invalidInput("The request body must be a JSON object.")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return invalidInput("The request body is not valid JSON: %v.", err)
		}
		key, _ := tok.(string)
		fn, known := fields[key]
		switch {
		case !known:
			return invalidInput("Unknown field %q in the request body; the fields are %s.", clip(key), fieldList(fields))
		case seen[key]:
			return invalidInput("The field %q appears more than once in the request body.", key)
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return invalidInput("The request body is not valid JSON: %v.", err)
		}
		if err := fn(raw); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return invalidInput("The request body is not valid JSON: %v.", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalidInput("The request body has data after its JSON object.")
	}
	return nil
}

func fieldList(fields map[string]func(json.RawMessage) error) string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, strconv.Quote(k))
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// jsonType names the JSON type of a raw value, for error messages.
func jsonType(raw json.RawMessage) string {
	switch {
	case len(raw) == 0:
		return "nothing"
	case raw[0] == '"':
		return "a string"
	case raw[0] == '{':
		return "an object"
	case raw[0] == '[':
		return "an array"
	case raw[0] == 't' || raw[0] == 'f':
		return "a boolean"
	case raw[0] == 'n':
		return "null"
	}
	return "a number"
}

// decodeString decodes a raw JSON string whose decoded form may be at most
// maxBytes long, checking the raw length first so that an oversized value
// is refused before it is decoded. Escapes must encode valid UTF-8: a lone
// UTF-16 surrogate (which encoding/json would silently replace) is refused.
func decodeString(field string, raw json.RawMessage, maxBytes int) (string, error) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", invalidInput("The field %q must be a string, not %s.", field, jsonType(raw))
	}
	// An escape is at most 6 bytes for one byte of UTF-8 (\u00XX).
	if len(raw) > 6*maxBytes+2 {
		return "", tooLong(field, len(raw)-2, maxBytes)
	}
	if hasLoneSurrogate(raw) {
		return "", invalidInput("The field %q contains an unpaired UTF-16 surrogate escape; it must be valid UTF-8.", field)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", invalidInput("The field %q is not a valid JSON string.", field)
	}
	if len(s) > maxBytes {
		return "", tooLong(field, len(s), maxBytes)
	}
	return s, nil
}

func tooLong(field string, n, maxBytes int) error {
	return invalidInput("The field %q is at least %d bytes long; at most %d bytes of UTF-8 are allowed.", field, n, maxBytes)
}

// hasLoneSurrogate reports whether a syntactically valid raw JSON string
// has a \u escape of a UTF-16 surrogate that is not part of a high-low pair.
func hasLoneSurrogate(raw []byte) bool {
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		if raw[i+1] != 'u' {
			i++
			continue
		}
		r := hex4(raw[i+2 : i+6])
		i += 5
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return true
		case r >= 0xD800 && r <= 0xDBFF:
			if i+6 >= len(raw) || raw[i+1] != '\\' || raw[i+2] != 'u' {
				return true
			}
			if lo := hex4(raw[i+3 : i+7]); lo < 0xDC00 || lo > 0xDFFF {
				return true
			}
			i += 6
		}
	}
	return false
}

// hex4 decodes four hex digits (already validated by the JSON decoder).
func hex4(b []byte) rune {
	n, _ := strconv.ParseUint(string(b), 16, 32)
	return rune(n)
}

// decodeEntryRequest decodes the body of POST /app/transactions,
// {"contents": "..."}: contents is required, a string of at most
// MaxContentsBytes bytes of UTF-8. The entry model's read-only fields may
// come along (a client may post an entry it read back): the transaction id
// is ignored, and a collection field (collectionParam of the dialect) must
// name the collection the query selects, coll, so that nobody writes to
// another collection than the one they named. Any other field is refused.
func decodeEntryRequest(body []byte, collectionParam, coll string) ([]byte, error) {
	contents, _, err := decodeEntryWithHooks(body, collectionParam, coll, false)
	return contents, err
}

// decodeEntryWithHooks is decodeEntryRequest that, when hooks is true
// (2024-12-09-preview and later), also accepts the entry's preHooks and
// postHooks (each at most MaxHooks user-defined function hooks; the
// spellings preOperationHooks and postOperationHooks of one version of the
// spec's example are accepted too, but not both spellings at once).
func decodeEntryWithHooks(body []byte, collectionParam, coll string, hooks bool) ([]byte, *entryHooks, error) {
	if contents, ok := fastEntryRequest(body); ok {
		return contents, nil, nil
	}
	if hooks {
		if contents, h, ok := fastHookRequest(body); ok {
			return contents, h, nil
		}
	}
	return decodeEntryFull(body, collectionParam, coll, hooks)
}

// decodeEntryFull is decodeEntryWithHooks without its fast paths.
func decodeEntryFull(body []byte, collectionParam, coll string, hooks bool) ([]byte, *entryHooks, error) {
	var contents string
	var has bool
	fields := map[string]func(json.RawMessage) error{
		"contents": func(raw json.RawMessage) (err error) {
			contents, err = decodeString("contents", raw, MaxContentsBytes)
			has = true
			return err
		},
		"transactionId": func(raw json.RawMessage) error {
			_, err := decodeString("transactionId", raw, 64)
			return err
		},
		collectionParam: func(raw json.RawMessage) error {
			c, err := decodeString(collectionParam, raw, MaxCollectionIDBytes)
			if err == nil && c != coll {
				err = invalidInput("The body's %q (%q) differs from the collection the request names (%q); the query parameter %s selects the collection.", collectionParam, clip(c), clip(coll), collectionParam)
			}
			return err
		},
	}
	var h entryHooks
	if hooks {
		seen := map[string]string{}
		hookField := func(name, other string, dst *[]funcRun) func(json.RawMessage) error {
			return func(raw json.RawMessage) (err error) {
				if prev, ok := seen[other]; ok {
					return invalidInput("The request body has both %q and %q; give one.", prev, name)
				}
				seen[other] = name
				*dst, err = decodeHooks(raw, name)
				return err
			}
		}
		fields["preHooks"] = hookField("preHooks", "pre", &h.pre)
		fields["preOperationHooks"] = hookField("preOperationHooks", "pre", &h.pre)
		fields["postHooks"] = hookField("postHooks", "post", &h.post)
		fields["postOperationHooks"] = hookField("postOperationHooks", "post", &h.post)
	}
	if err := decodeObject(body, fields); err != nil {
		return nil, nil, err
	}
	if !has {
		return nil, nil, invalidInput("The request body has no \"contents\" field.")
	}
	if h.empty() {
		return []byte(contents), nil, nil
	}
	return []byte(contents), &h, nil
}

// fastEntryRequest decodes the common body {"contents": "..."} (any JSON
// whitespace around the tokens) whose string has no escapes, quotes or
// control characters and is valid UTF-8 of at most MaxContentsBytes: such a
// string's bytes are its value, returned without a copy. Anything else (ok
// false) takes the full
// decoder, which also produces the precise error.
func fastEntryRequest(body []byte) ([]byte, bool) {
	b := skipSpace(body)
	if len(b) == 0 || b[0] != '{' {
		return nil, false
	}
	b = skipSpace(b[1:])
	const key = `"contents"`
	if len(b) < len(key) || string(b[:len(key)]) != key {
		return nil, false
	}
	b = skipSpace(b[len(key):])
	if len(b) == 0 || b[0] != ':' {
		return nil, false
	}
	contents, rest, ok := plainString(skipSpace(b[1:]))
	if !ok || len(contents) > MaxContentsBytes || !utf8.Valid(contents) {
		return nil, false
	}
	contents = contents[:len(contents):len(contents)] // aliases body, which the request owns
	b = skipSpace(rest)
	if len(b) == 0 || b[0] != '}' || len(skipSpace(b[1:])) != 0 {
		return nil, false
	}
	return contents, true
}

// fastHookRequest decodes the common body of an append with hooks,
// {"contents": "...", "preHooks": [{"functionId": "id"}, ...], "postHooks":
// [...]} (members in any order, any JSON whitespace between tokens, each
// member at most once, at least one hook), whose strings have no escapes
// or control characters, whose contents is valid UTF-8 of at most
// MaxContentsBytes, and whose hooks give only a valid function id (at
// most MaxHooks of each kind): the hooks run main with the default
// runtime options, and contents aliases body. Anything else (ok false)
// takes the full decoder, which also words the error; both give the same
// result for what this accepts (TestFastHookRequest).
func fastHookRequest(body []byte) (contents []byte, h *entryHooks, ok bool) {
	b := skipSpace(body)
	if len(b) == 0 || b[0] != '{' {
		return nil, nil, false
	}
	b = skipSpace(b[1:])
	var hooks entryHooks
	var hasContents, hasPre, hasPost bool
	for {
		key, rest, ok := plainString(b)
		if !ok {
			return nil, nil, false
		}
		b = skipSpace(rest)
		if len(b) == 0 || b[0] != ':' {
			return nil, nil, false
		}
		b = skipSpace(b[1:])
		switch string(key) {
		case "contents":
			if hasContents {
				return nil, nil, false
			}
			hasContents = true
			if contents, b, ok = plainString(b); !ok || len(contents) > MaxContentsBytes || !utf8.Valid(contents) {
				return nil, nil, false
			}
			contents = contents[:len(contents):len(contents)]
		case "preHooks":
			if hasPre {
				return nil, nil, false
			}
			hasPre = true
			if hooks.pre, b, ok = plainHooks(b); !ok {
				return nil, nil, false
			}
		case "postHooks":
			if hasPost {
				return nil, nil, false
			}
			hasPost = true
			if hooks.post, b, ok = plainHooks(b); !ok {
				return nil, nil, false
			}
		default:
			return nil, nil, false
		}
		b = skipSpace(b)
		if len(b) == 0 {
			return nil, nil, false
		}
		if b[0] == '}' {
			break
		}
		if b[0] != ',' {
			return nil, nil, false
		}
		b = skipSpace(b[1:])
	}
	if len(skipSpace(b[1:])) != 0 || !hasContents || hooks.empty() {
		return nil, nil, false
	}
	return contents, &hooks, true
}

// plainString reads a JSON string at the start of b that has no escapes
// or control characters: its bytes, and what follows it.
func plainString(b []byte) (s, rest []byte, ok bool) {
	if len(b) == 0 || b[0] != '"' {
		return nil, nil, false
	}
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return b[1:i], b[i+1:], true
		case c == '\\' || c < 0x20:
			return nil, nil, false
		}
	}
	return nil, nil, false
}

// plainHooks reads a non-empty array of at most MaxHooks hooks
// {"functionId": "id"} with valid ids at the start of b (see
// fastHookRequest), and what follows it.
func plainHooks(b []byte) (hooks []funcRun, rest []byte, ok bool) {
	if len(b) == 0 || b[0] != '[' {
		return nil, nil, false
	}
	b = skipSpace(b[1:])
	for {
		if len(hooks) == MaxHooks || len(b) == 0 || b[0] != '{' {
			return nil, nil, false
		}
		key, rest, ok := plainString(skipSpace(b[1:]))
		if !ok || string(key) != "functionId" {
			return nil, nil, false
		}
		b = skipSpace(rest)
		if len(b) == 0 || b[0] != ':' {
			return nil, nil, false
		}
		id, rest, ok := plainString(skipSpace(b[1:]))
		if !ok || !plainFunctionID(id) {
			return nil, nil, false
		}
		b = skipSpace(rest)
		if len(b) == 0 || b[0] != '}' {
			return nil, nil, false
		}
		hooks = append(hooks, funcRun{id: string(id), props: execProps{export: "main", options: udfDefaultOptions}})
		b = skipSpace(b[1:])
		if len(b) == 0 {
			return nil, nil, false
		}
		switch b[0] {
		case ']':
			return hooks, b[1:], true
		case ',':
			b = skipSpace(b[1:])
		default:
			return nil, nil, false
		}
	}
}

// plainFunctionID is the form of a function id (checkFunctionID): 1 to
// MaxFunctionIDBytes of letters, digits, '_', '-' and '.', starting with a
// letter or digit.
func plainFunctionID[T string | []byte](id T) bool {
	if len(id) == 0 || len(id) > MaxFunctionIDBytes {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '-' && c != '.') {
			return false
		}
	}
	return true
}

// skipSpace drops leading JSON whitespace.
func skipSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	return b
}

// decodeRoleRequest decodes the body of PATCH /app/users/{userId}, a JSON
// merge patch of the user: in the single-role form {"assignedRole":
// "Reader"}, or in the multi-role form {"assignedRoles": ["Reader", ...]},
// whose roles the user then holds, all of them. Role names are checked for
// shape here and for existence when the change is made. The user's
// read-only "userId", as GET returns it (or "user_id", as ACL's
// programmability guide sends it), is accepted when it is the path's
// id (id, normalised), so that a user read back can be sent again; another
// id is refused, as a user's id cannot change. A patch without the role
// field changes nothing: it returns nil.
func decodeRoleRequest(body []byte, multi bool, id string) ([]string, error) {
	var roles []string
	field := "assignedRole"
	decode := func(raw json.RawMessage) error {
		name, err := decodeRoleName(field, raw)
		roles = []string{name}
		return err
	}
	if multi {
		field = "assignedRoles"
		decode = func(raw json.RawMessage) error {
			return decodeArray(field, raw, 1, MaxUserRoles, func(item json.RawMessage) error {
				name, err := decodeRoleName(field, item)
				roles = append(roles, name)
				return err
			})
		}
	}
	checkID := func(raw json.RawMessage) error {
		got, err := decodeString("userId", raw, MaxUserIDBytes)
		if err != nil {
			return err
		}
		if auth.NormalizeUserID(got) != id {
			return invalidInput("The userId in the request body (%q) is not the user id of the path (%q): a user's id cannot be changed; leave userId out, or give the path's.",
				clip(got), clip(id))
		}
		return nil
	}
	// ACL's programmability guide sends the id as "user_id".
	if err := decodeObject(body, map[string]func(json.RawMessage) error{field: decode, "userId": checkID, "user_id": checkID}); err != nil {
		return nil, err
	}
	return roles, nil
}

// decodeRoleName decodes a role name: at most MaxRoleNameBytes of UTF-8,
// not empty, without control or bidirectional formatting characters.
func decodeRoleName(field string, raw json.RawMessage) (string, error) {
	name, err := decodeString(field, raw, MaxRoleNameBytes)
	if err != nil {
		return "", err
	}
	return name, checkName(field, "role name", name)
}

// checkName refuses an empty name and one with a control or bidirectional
// formatting character.
func checkName(field, what, name string) error {
	switch {
	case name == "":
		return invalidInput("The field %q holds an empty %s.", field, what)
	case strings.ContainsFunc(name, forbiddenIDRune):
		return invalidInput("The field %q holds a %s with a control or bidirectional formatting character.", field, what)
	}
	return nil
}

// decodeArray decodes a raw JSON array of at least minItems and at most
// maxItems items, calling item for each in order. The items are counted as
// they are read, so that an array that is too long is refused before more
// than maxItems of its items are decoded.
func decodeArray(field string, raw json.RawMessage, minItems, maxItems int, item func(json.RawMessage) error) error {
	if len(raw) == 0 || raw[0] != '[' {
		return invalidInput("The field %q must be an array, not %s.", field, jsonType(raw))
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		return invalidInput("The field %q is not a valid JSON array.", field)
	}
	n := 0
	for dec.More() {
		if n == maxItems {
			return invalidInput("The field %q has more than %d items.", field, maxItems)
		}
		n++
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return invalidInput("The field %q is not a valid JSON array.", field)
		}
		if err := item(v); err != nil {
			return err
		}
	}
	if n < minItems {
		return invalidInput("The field %q must have at least %d item(s).", field, minItems)
	}
	return nil
}
