package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/ledgerd/ledgerd/internal/auth"
	"github.com/ledgerd/ledgerd/internal/gov"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/node"
)

// ACL error codes (acl-api.md §2; Azure's generic codes where ACL has none).
// The package documentation has the table of statuses and codes.
const (
	codeMissingAPIVersion     = "MissingApiVersionParameter"
	codeUnsupportedAPIVersion = "UnsupportedApiVersionValue"
	codeInvalidTransactionID  = "InvalidTransactionId"
	codeInvalidQuery          = "InvalidQueryParameterValue"
	codeInvalidInput          = "InvalidInput"
	codeCollectionLimit       = "CollectionLimitExceeded"
	codeTagLimit              = "TagLimitExceeded"
	codeUnauthenticated       = "InvalidAuthenticationInfo"
	codeNotAllowed            = "NotAllowed"
	codeResourceNotFound      = "ResourceNotFound"
	codeTransactionNotFound   = "TransactionNotFound"
	codeTransactionInvalid    = "TransactionInvalid"
	codeMethodNotAllowed      = "UnsupportedHttpVerb"
	codeUncommitted           = "UncommittedLedgerEntry"
	codeLastAdministrator     = "LastAdministrator"
	codeRoleExists            = "RoleAlreadyExists"
	codeRoleInUse             = "RoleInUse"
	codeRoleLimit             = "RoleLimitExceeded"
	codeBodyTooLarge          = "RequestBodyTooLarge"
	codeUnsupportedType       = "UnsupportedContentType"
	codeInternal              = "InternalError"
	codeServerBusy            = "ServerBusy"
	codeUnavailable           = "ServiceUnavailable"
	codeInsufficientStorage   = "InsufficientStorage"
)

// retryAfterSeconds is the Retry-After of 503 answers.
const retryAfterSeconds = "1"

// apiError is an error answered with a given HTTP status and ACL code. Its
// message is shown to the client, so it must not carry secrets.
type apiError struct {
	status  int
	code    string
	message string
	// userCode marks a message that carries user code's exception (a
	// hook's, an endpoint's with return_exception_details): writeError
	// does not log it, as only log_exception_details logs what user code
	// says (logUserFailure).
	userCode bool
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.status, e.code, e.message) }

// newError returns an apiError with a formatted message.
func newError(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

// errorBody is the OData error body of every error answer.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// classify is the one place that maps an error to an HTTP status and an ACL
// error code. Errors it does not know are internal errors, whose details go
// to the log but not to the client.
func classify(err error) *apiError {
	var ae *apiError
	var ge *gov.Error
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &ge):
		return govErrorOf(ge)
	case errors.As(err, &tooLarge):
		return newError(http.StatusRequestEntityTooLarge, codeBodyTooLarge,
			"The request body is larger than %d bytes.", tooLarge.Limit)
	case errors.Is(err, auth.ErrNoCredentials):
		return newError(http.StatusUnauthorized, codeUnauthenticated,
			"The request has no credentials: present a TLS client certificate or an Authorization: Bearer token.")
	case errors.Is(err, auth.ErrCertificateNotValid):
		// The message gives the certificate's own validity dates.
		return newError(http.StatusUnauthorized, codeUnauthenticated, "%s.", strings.TrimPrefix(err.Error(), "auth: "))
	case errors.Is(err, auth.ErrExpired):
		return newError(http.StatusUnauthorized, codeUnauthenticated, "The bearer token has expired.")
	case errors.Is(err, auth.ErrInvalidToken):
		// auth's message may name the configured audience, issuers or key
		// ids: it goes to the log (authorize), not to the caller.
		return newError(http.StatusUnauthorized, codeUnauthenticated, "The bearer token was rejected.")
	case errors.Is(err, auth.ErrKeysUnavailable):
		return newError(http.StatusServiceUnavailable, codeUnavailable,
			"The token issuer's signing keys are unavailable; retry later.")
	case errors.Is(err, node.ErrNoSpace):
		return newError(http.StatusInsufficientStorage, codeInsufficientStorage,
			"The ledger's disk is full: writes are refused until space is freed; reads are served. Retry later.")
	case errors.Is(err, node.ErrNoDescriptors), ledger.IsTooManyFiles(err):
		return newError(http.StatusServiceUnavailable, codeServerBusy,
			"The node is out of file descriptors; retry later.")
	case errors.Is(err, node.ErrBusy):
		return newError(http.StatusServiceUnavailable, codeServerBusy,
			"The ledger has too many pending transactions; retry later.")
	case errors.Is(err, node.ErrStopped), errors.Is(err, node.ErrNotPrimary):
		return newError(http.StatusServiceUnavailable, codeUnavailable, "The node cannot serve the request now: %v.", err)
	case errors.Is(err, node.ErrBadTxID):
		return newError(http.StatusBadRequest, codeInvalidTransactionID,
			"%v: a transaction id is <view>.<seqno>, both decimal and positive, e.g. 2.15.", err)
	case errors.Is(err, node.ErrInvalid):
		return newError(http.StatusNotFound, codeTransactionInvalid,
			"The transaction was rolled back and will never be committed.")
	case errors.Is(err, node.ErrBeforeSnapshot):
		return newError(http.StatusNotFound, codeTransactionNotFound,
			"%v: this node started from a snapshot and holds no entry or receipt before it; ask a node that holds the whole ledger.", err)
	case errors.Is(err, node.ErrNotFound):
		return newError(http.StatusNotFound, codeTransactionNotFound, "No such transaction.")
	case errors.Is(err, node.ErrNotEntry):
		return newError(http.StatusNotFound, codeTransactionNotFound, "The transaction holds no ledger entry.")
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return newError(http.StatusServiceUnavailable, codeUnavailable,
			"The request was cancelled or timed out before the ledger answered; its effect, if any, is unknown.")
	}
	return newError(http.StatusInternalServerError, codeInternal, "Internal error.")
}
