package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"syscall"
	"testing"

	"github.com/ledgerd/ledgerd/internal/auth"
	"github.com/ledgerd/ledgerd/internal/node"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{fmt.Errorf("couldn't submit: %w", node.ErrBusy), 503, codeServerBusy},
		{node.ErrStopped, 503, codeUnavailable},
		{node.ErrNotPrimary, 503, codeUnavailable},
		{node.ErrNotFound, 404, codeTransactionNotFound},
		{node.ErrNotEntry, 404, codeTransactionNotFound},
		{node.ErrInvalid, 404, codeTransactionInvalid},
		{node.ErrBadTxID, 400, codeInvalidTransactionID},
		{auth.ErrNoCredentials, 401, codeUnauthenticated},
		{auth.ErrExpired, 401, codeUnauthenticated},
		{auth.ErrKeysUnavailable, 503, codeUnavailable},
		{&http.MaxBytesError{Limit: 10}, 413, codeBodyTooLarge},
		{context.DeadlineExceeded, 503, codeUnavailable},
		{newError(409, codeLastAdministrator, "x"), 409, codeLastAdministrator},
		{errors.New("disk on fire"), 500, codeInternal},
		{fmt.Errorf("%w (%w)", node.ErrNoSpace, syscall.ENOSPC), 507, codeInsufficientStorage},
		{fmt.Errorf("%w (%w)", node.ErrNoDescriptors, syscall.EMFILE), 503, codeServerBusy},
		{fmt.Errorf("ledger: couldn't open ledger_1-9: %w", &os.PathError{Op: "open", Path: "x", Err: syscall.EMFILE}), 503, codeServerBusy},
		{&os.PathError{Op: "open", Path: "x", Err: syscall.ENFILE}, 503, codeServerBusy},
	} {
		ae := classify(tc.err)
		if ae.status != tc.status || ae.code != tc.code {
			t.Errorf("classify(%v) = %d %s, want %d %s", tc.err, ae.status, ae.code, tc.status, tc.code)
		}
	}
	if ae := classify(errors.New("secret detail")); ae.message != "Internal error." {
		t.Errorf("internal error leaks %q", ae.message)
	}
}

func TestWriteErrorRetryAfter(t *testing.T) {
	s := &Server{log: slog.New(slog.DiscardHandler)}
	w := httptest.NewRecorder()
	w.Header().Set(txIDHeader, "2.5")
	s.writeError(w, httptest.NewRequest("POST", "/app/transactions", nil), "POST /app/transactions", node.ErrBusy)
	if w.Code != 503 || w.Header().Get("Retry-After") != "1" || w.Header().Get(txIDHeader) != "" {
		t.Fatalf("%d %v", w.Code, w.Header())
	}
	if got := w.Body.String(); got != `{"error":{"code":"ServerBusy","message":"The ledger has too many pending transactions; retry later."}}` {
		t.Fatalf("body %s", got)
	}
}
