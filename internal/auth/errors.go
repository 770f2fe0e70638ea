package auth

import "errors"

// Errors returned by this package. Callers map them to HTTP statuses and ACL
// error codes; the messages never contain tokens or other secrets.
var (
	// ErrNoCredentials means the request carried neither a client
	// certificate nor a bearer token.
	ErrNoCredentials = errors.New("auth: no credentials")

	// ErrCertificateNotValid means the TLS client certificate is outside
	// its validity period (before NotBefore or after NotAfter).
	ErrCertificateNotValid = errors.New("auth: the TLS client certificate is not valid now")

	// ErrInvalidToken means a bearer token was rejected: malformed, badly
	// signed, for another audience, or otherwise unacceptable. ErrExpired
	// and ErrUnknownIssuer also match it under [errors.Is], so a caller
	// that only needs "401 or not" can test for ErrInvalidToken alone.
	ErrInvalidToken = errors.New("auth: invalid token")

	// ErrExpired means a bearer token's exp claim has passed (beyond the
	// configured leeway). It matches ErrInvalidToken too.
	ErrExpired error = &tokenError{"auth: token expired"}

	// ErrUnknownIssuer means a bearer token's iss claim is missing or names
	// an issuer that is not configured. It matches ErrInvalidToken too.
	ErrUnknownIssuer error = &tokenError{"auth: unknown token issuer"}

	// ErrKeysUnavailable means a token's issuer is configured but its
	// signing keys could not be fetched yet. It says nothing about the
	// token, and is the server's problem rather than the caller's.
	ErrKeysUnavailable = errors.New("auth: signing keys unavailable")

	// ErrNotAllowed means the caller is not a ledger user or its role is
	// too low for the operation (ACL error code NotAllowed, HTTP 403).
	ErrNotAllowed = errors.New("auth: not allowed")

	// ErrUnknownRole means a role name is not one of Reader, Contributor
	// or Administrator.
	ErrUnknownRole = errors.New("auth: unknown role")
)

// tokenError is a token rejection that is more specific than
// ErrInvalidToken but still matches it.
type tokenError struct{ msg string }

func (e *tokenError) Error() string { return e.msg }

// Is makes every tokenError match ErrInvalidToken.
func (e *tokenError) Is(target error) bool { return target == ErrInvalidToken }

// clip shortens an attacker-controlled string before it goes into an error
// message or a log line.
func clip(s string) string {
	const max = 128
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
