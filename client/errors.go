package client

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Sentinel errors a caller can test with errors.Is. A *ResponseError
// matches the one of its HTTP status (see ResponseError.Is); the others are
// returned by the client itself.
var (
	// ErrBadRequest is HTTP 400: the request is malformed (a bad transaction
	// id, collection id, role or api-version). Retrying will not help.
	ErrBadRequest = errors.New("bad request")
	// ErrUnauthorized is HTTP 401: the request carried no credentials the
	// ledger accepts (a rejected or expired bearer token).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden is HTTP 403 NotAllowed: the caller is not a ledger user,
	// or its role is too low for the operation.
	ErrForbidden = errors.New("forbidden")
	// ErrNotFound is HTTP 404: no such transaction, entry, user or
	// collection.
	ErrNotFound = errors.New("not found")
	// ErrUncommitted is HTTP 406 UncommittedLedgerEntry: the transaction is
	// not committed yet, so it has no receipt. Wait for it
	// (WaitUntilDurable, or the WaitForCommit option) and ask again.
	ErrUncommitted = errors.New("transaction not committed yet")
	// ErrConflict is HTTP 409, such as LastAdministrator: removing or
	// demoting the ledger's last Administrator.
	ErrConflict = errors.New("conflict")
	// ErrThrottled is HTTP 429 or 503: the ledger is busy or unavailable.
	// The client has already retried as its RetryPolicy allows; try again
	// later.
	ErrThrottled = errors.New("throttled or unavailable")
	// ErrTimeout means a poll ran out of attempts: a transaction still not
	// committed (WaitUntilDurable, WaitForCommit), or an entry, receipt or
	// range page still Loading. The operation may still succeed later.
	ErrTimeout = errors.New("timed out")
	// ErrInvalidTransaction means the ledger reports the transaction as
	// Invalid: it was rolled back and will never be committed. Write it
	// again.
	ErrInvalidTransaction = errors.New("transaction rolled back")
	// ErrDigestMismatch means the constitution's digest is not the SHA-256
	// of its script.
	ErrDigestMismatch = errors.New("digest does not match")
)

// ResponseError is an error answer of the ledger: a non-2xx status with, in
// the ACL error body {"error":{"code":...,"message":...}}, its code and
// message. It matches the sentinel of its status under errors.Is.
type ResponseError struct {
	// StatusCode is the HTTP status, e.g. 403.
	StatusCode int
	// Code is the ACL error code, e.g. "NotAllowed" or
	// "UncommittedLedgerEntry"; empty if the body was not an ACL error.
	Code string
	// Message is the error message of the body, or the start of the body
	// itself when it was not an ACL error.
	Message string
	// TransactionID is the x-ms-ccf-transaction-id header, if the answer
	// had one (error answers usually do not).
	TransactionID string
	// RequestID is the x-ms-request-id header, the ledger's id of the
	// request (in ledgerd's log as request_id), if the answer had one.
	RequestID string
	// Method and Path are the request's, for the error message.
	Method, Path string
	// RetryAfter is the delay the Retry-After header asked for, zero if it
	// had none.
	RetryAfter time.Duration
}

// Error returns e.g. `POST /app/transactions: 403 NotAllowed: Not allowed to
// call POST /app/transactions`.
func (e *ResponseError) Error() string {
	code := e.Code
	if code == "" {
		code = http.StatusText(e.StatusCode)
	}
	s := fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.StatusCode, code)
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Is reports whether target is the sentinel of e's status: ErrBadRequest
// (400), ErrUnauthorized (401), ErrForbidden (403), ErrNotFound (404),
// ErrUncommitted (406), ErrConflict (409) or ErrThrottled (429, 503).
func (e *ResponseError) Is(target error) bool {
	return target != nil && statusSentinel(e.StatusCode) == target
}

// statusSentinel returns the sentinel of an HTTP status, or nil.
func statusSentinel(status int) error {
	switch status {
	case http.StatusBadRequest:
		return ErrBadRequest
	case http.StatusUnauthorized:
		return ErrUnauthorized
	case http.StatusForbidden:
		return ErrForbidden
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusNotAcceptable:
		return ErrUncommitted
	case http.StatusConflict:
		return ErrConflict
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return ErrThrottled
	}
	return nil
}
