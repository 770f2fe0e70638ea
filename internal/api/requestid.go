package api

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
)

// Azure request-id headers (acl-api.md §2). Every answer, errors included,
// carries a fresh x-ms-request-id, and echoes the x-ms-client-request-id
// the client sent, so that a client's log and the node's can be joined.
const (
	requestIDHeader       = "x-ms-request-id"
	clientRequestIDHeader = "x-ms-client-request-id"
	// maxClientRequestIDBytes bounds an echoed client request id, as Azure
	// services bound it (1 KiB).
	maxClientRequestIDBytes = 1024
	codeInvalidHeader       = "InvalidHeaderValue"
)

// newRequestID returns a random (version 4) UUID.
func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])         // never fails
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 9562 variant
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

// setRequestIDs sets a new x-ms-request-id on the answer and echoes the
// request's x-ms-client-request-id. A client request id that is longer than
// maxClientRequestIDBytes or not printable ASCII is not echoed, and is
// refused (400 InvalidHeaderValue). It returns the request id.
func setRequestIDs(w http.ResponseWriter, r *http.Request) (string, error) {
	id := newRequestID()
	h := w.Header()
	h.Set(requestIDHeader, id)
	vs := r.Header.Values(clientRequestIDHeader)
	switch {
	case len(vs) == 0:
		return id, nil
	case len(vs) > 1:
		return id, newError(http.StatusBadRequest, codeInvalidHeader, "The %s header is given more than once.", clientRequestIDHeader)
	case len(vs[0]) > maxClientRequestIDBytes:
		return id, newError(http.StatusBadRequest, codeInvalidHeader,
			"The %s header is %d bytes long; at most %d are allowed.", clientRequestIDHeader, len(vs[0]), maxClientRequestIDBytes)
	}
	for i := 0; i < len(vs[0]); i++ {
		if c := vs[0][i]; c < 0x20 || c > 0x7e {
			return id, newError(http.StatusBadRequest, codeInvalidHeader,
				"The %s header holds a character that is not printable ASCII.", clientRequestIDHeader)
		}
	}
	h.Set(clientRequestIDHeader, vs[0])
	return id, nil
}
