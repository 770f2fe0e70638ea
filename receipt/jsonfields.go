package receipt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// fields is a decoded JSON object whose members are decoded one by one,
// remembering the first error.
type fields struct {
	m   map[string]json.RawMessage
	err error
}

// decodeObject decodes a JSON object (not null) into its raw members.
func decodeObject(data []byte) (*fields, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("null, want an object")
	}
	return &fields{m: m}, nil
}

// isNull reports whether data is the JSON literal null.
func isNull(data []byte) bool {
	return string(bytes.TrimSpace(data)) == "null"
}

// has reports whether the object has the key with a value other than null.
func (f *fields) has(key string) bool {
	v, ok := f.m[key]
	return ok && !isNull(v)
}

// decode decodes the member named by one of keys (its spellings) into dst,
// leaving dst alone if none is present. Two spellings at once are an error.
func (f *fields) decode(dst any, keys ...string) {
	if f.err != nil {
		return
	}
	found := ""
	for _, k := range keys {
		if !f.has(k) {
			continue
		}
		if found != "" {
			f.err = malformed("both %q and %q are present", found, k)
			return
		}
		found = k
	}
	if found == "" {
		return
	}
	if err := json.Unmarshal(f.m[found], dst); err != nil {
		if errors.Is(err, ErrMalformed) {
			f.err = err
			return
		}
		f.err = malformed("couldn't decode %q: %w", found, err)
	}
}

// malformed returns an error wrapping ErrMalformed with the formatted
// context.
func malformed(format string, args ...any) error {
	return fmt.Errorf("receipt: %w: %w", ErrMalformed, fmt.Errorf(format, args...))
}
