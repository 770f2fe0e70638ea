package auth

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// PrincipalFromTLS returns the certificate principal of a TLS connection:
// the user id of the first certificate the client presented. The server
// requests client certificates without verifying their chain (acl-api.md
// §3): possession of the key, proven by the handshake, is what counts. But
// as CCF does (is_cert_valid_now), it refuses a certificate outside its
// validity period at now, with an error wrapping ErrCertificateNotValid.
// It returns ErrNoCredentials when the client sent no certificate.
func PrincipalFromTLS(cs *tls.ConnectionState, now time.Time) (Principal, error) {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return Principal{}, ErrNoCredentials
	}
	cert := cs.PeerCertificates[0]
	const layout = "2006-01-02T15:04:05Z"
	switch {
	case now.Before(cert.NotBefore):
		return Principal{}, fmt.Errorf("%w: it is valid from %s, and it is now %s", ErrCertificateNotValid,
			cert.NotBefore.UTC().Format(layout), now.UTC().Format(layout))
	case now.After(cert.NotAfter):
		return Principal{}, fmt.Errorf("%w: it expired at %s, and it is now %s", ErrCertificateNotValid,
			cert.NotAfter.UTC().Format(layout), now.UTC().Format(layout))
	}
	return Principal{ID: CertificateUserID(cert.Raw), Kind: KindCertificate}, nil
}

// BearerToken extracts the token from an "Authorization: Bearer <token>"
// header (RFC 6750 §2.1; the scheme is case-insensitive). It returns
// ErrNoCredentials when there is no Authorization header, and an error
// wrapping ErrInvalidToken when the header is not a single bearer token.
func BearerToken(h http.Header) (string, error) {
	values := h.Values("Authorization")
	switch {
	case len(values) == 0:
		return "", ErrNoCredentials
	case len(values) > 1:
		return "", fmt.Errorf("%w: more than one Authorization header", ErrInvalidToken)
	}
	scheme, token, _ := strings.Cut(values[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", fmt.Errorf("%w: Authorization scheme is %q, want Bearer", ErrInvalidToken, clip(scheme))
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return "", fmt.Errorf("%w: empty bearer token", ErrInvalidToken)
	}
	return token, nil
}
