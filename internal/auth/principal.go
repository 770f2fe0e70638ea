package auth

import (
	"crypto/sha256"
	"strconv"
	"strings"
)

// Kind says how a principal authenticated.
type Kind int

// The ways a caller can authenticate. The zero Kind is not valid.
const (
	// KindCertificate is a TLS client certificate.
	KindCertificate Kind = iota + 1
	// KindJWT is a bearer JWT from a configured OpenID issuer.
	KindJWT
)

// String returns "certificate", "jwt", or "Kind(n)".
func (k Kind) String() string {
	switch k {
	case KindCertificate:
		return "certificate"
	case KindJWT:
		return "jwt"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Principal is an authenticated caller.
type Principal struct {
	// ID is the ledger user id: a certificate fingerprint (see
	// CertificateUserID) or a JWT's oid or sub claim, prefixed with
	// "NAMESPACE:" if its issuer has a namespace.
	ID string
	// Kind says how the caller authenticated.
	Kind Kind
}

// fingerprintLen is the length of a colon-separated SHA-256 fingerprint:
// 32 hex pairs and 31 colons.
const fingerprintLen = 3*sha256.Size - 1

// CertificateUserID returns the ACL user id of a TLS client certificate: the
// SHA-256 fingerprint of its DER encoding, upper-case hex, colon-separated,
// exactly as printed by `openssl x509 -fingerprint -sha256` (acl-api.md §3),
// for example "5F:23:3D:…:5A:B5" (95 characters).
func CertificateUserID(der []byte) string {
	sum := sha256.Sum256(der)
	const digits = "0123456789ABCDEF"
	out := make([]byte, 0, fingerprintLen)
	for i, b := range sum {
		if i > 0 {
			out = append(out, ':')
		}
		out = append(out, digits[b>>4], digits[b&0x0f])
	}
	return string(out)
}

// NormalizeUserID puts a user id taken from a URL path or request body into
// the form the ledger stores: it upper-cases a certificate fingerprint given
// in lower or mixed case. Other ids, such as the GUIDs of JWT users, are
// returned unchanged: they are case-sensitive. It does not decode
// percent-escapes: the HTTP server has decoded the path once, and decoding
// again would make "a%2541" (the id "a%41", escaped once) the id "aA".
func NormalizeUserID(s string) string {
	if isFingerprint(s) {
		return strings.ToUpper(s)
	}
	return s
}

// isFingerprint reports whether s has the shape of a colon-separated SHA-256
// fingerprint in any letter case.
func isFingerprint(s string) bool {
	if len(s) != fingerprintLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if i%3 == 2 {
			if s[i] != ':' {
				return false
			}
		} else if !isHexDigit(s[i]) {
			return false
		}
	}
	return true
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
