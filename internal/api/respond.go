package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/ledgerd/ledgerd/internal/node"
)

// txIDHeader carries, on every successful answer, the id of the write (for
// writes) or of the committed state the answer was read from.
const txIDHeader = "x-ms-ccf-transaction-id"

// marshal encodes v as JSON without HTML escaping, so that a nextLink's
// "&" stays as the real service writes it.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// reply answers with status and the JSON encoding of body.
func (c *call) reply(status int, id node.TxID, body any) error {
	data, err := marshal(body)
	if err != nil {
		return fmt.Errorf("couldn't encode the response: %w", err)
	}
	return c.replyJSON(status, id, data)
}

// replyJSON answers with status and data, a JSON document.
func (c *call) replyJSON(status int, id node.TxID, data []byte) error {
	h := c.w.Header()
	h.Set("Content-Type", "application/json")
	h.Set(txIDHeader, id.String())
	c.w.WriteHeader(status)
	c.w.Write(data) // an error means the client has gone; nothing to do
	return nil
}

// ok answers 200 with body, read from the committed state c.served.
func (c *call) ok(body any) error { return c.reply(http.StatusOK, c.served, body) }

// noContent answers 204 with an empty body.
func (c *call) noContent(id node.TxID) error {
	c.w.Header().Set(txIDHeader, id.String())
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}

// writeError answers err as an ACL error body. Server errors are logged
// with their cause, which the client does not see.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, route string, err error) {
	ae := classify(err)
	attrs := []any{"route", route, "status", ae.status, "code", ae.code, "request_id", w.Header().Get(requestIDHeader)}
	if ae.userCode {
		err = errors.New("user code failed") // its exception is logged only with log_exception_details
	}
	switch {
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		s.log.Debug("client went away", append(attrs, "err", err)...)
	case errors.Is(err, node.ErrNoSpace), errors.Is(err, node.ErrNoDescriptors):
		// Refused while persisting is stalled: the node logged the stall once.
		s.log.Debug("request refused", append(attrs, "err", err)...)
	case ae.status >= 500:
		s.log.Error("request failed", append(attrs, "err", err)...)
	default:
		s.log.Debug("request rejected", append(attrs, "err", err)...)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Del(txIDHeader)
	if isGovPath(r.URL.Path) {
		h.Set(errorCodeHeader, ae.code)
	}
	if ae.status == http.StatusServiceUnavailable || ae.status == http.StatusInsufficientStorage {
		h.Set("Retry-After", retryAfterSeconds)
	}
	data, mErr := marshal(errorBody{Error: errorDetail{Code: ae.code, Message: ae.message}})
	if mErr != nil {
		s.log.Error("couldn't encode error body", slog.Any("err", mErr))
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.WriteHeader(ae.status)
	w.Write(data)
}
