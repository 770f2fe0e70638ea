package auth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"
)

// claims are the registered (RFC 7519 §4.1) and Entra ID claims this
// package reads. NumericDates may be fractional, so they are float64; they
// are pointers so that an absent claim can be told from zero.
type claims struct {
	Iss string   `json:"iss"`
	Aud audience `json:"aud"`
	Exp *float64 `json:"exp"`
	Nbf *float64 `json:"nbf"`
	Iat *float64 `json:"iat"`
	Oid string   `json:"oid"`
	Sub string   `json:"sub"`
}

// audience is the aud claim: one string or an array of strings (RFC 7519
// §4.1.3).
type audience []string

// UnmarshalJSON accepts a string or an array of strings.
func (a *audience) UnmarshalJSON(b []byte) error {
	if bytes.HasPrefix(b, []byte(`"`)) {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return err
	}
	*a = list
	return nil
}

// peekIssuer reads only the iss claim of an unverified payload, so that the
// issuer's keys can be chosen. Nothing else in the payload is trusted
// before the signature has been checked.
func peekIssuer(payload []byte) (string, error) {
	var c struct {
		Iss string `json:"iss"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", fmt.Errorf("%w: couldn't parse payload: %v", ErrInvalidToken, err)
	}
	if c.Iss == "" {
		return "", fmt.Errorf("%w: token has no iss claim", ErrUnknownIssuer)
	}
	return c.Iss, nil
}

// parseClaims decodes a verified payload.
func parseClaims(payload []byte) (*claims, error) {
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, fmt.Errorf("%w: couldn't parse claims: %v", ErrInvalidToken, err)
	}
	return &c, nil
}

// checkAudience requires one of want among the token's audiences.
func (c *claims) checkAudience(want []string) error {
	for _, a := range want {
		if slices.Contains(c.Aud, a) {
			return nil
		}
	}
	return fmt.Errorf("%w: token is not for audience %q", ErrInvalidToken, want)
}

// checkTimes requires exp and checks exp, nbf and iat against now, allowing
// leeway for clock skew either way (RFC 7519 §4.1.4-6), and bounds the
// token's lifetime: exp - iat, or exp - now without iat, at most maxLife.
func (c *claims) checkTimes(now time.Time, leeway, maxLife time.Duration) error {
	t := float64(now.UnixNano()) / 1e9
	skew, life := leeway.Seconds(), maxLife.Seconds()
	switch {
	case c.Exp == nil:
		return fmt.Errorf("%w: token has no exp claim", ErrInvalidToken)
	case t >= *c.Exp+skew:
		return fmt.Errorf("%w: exp %s is before %s", ErrExpired, numericDate(*c.Exp), now.UTC().Format(time.RFC3339))
	case c.Nbf != nil && *c.Nbf > t+skew:
		return fmt.Errorf("%w: token not valid before %s", ErrInvalidToken, numericDate(*c.Nbf))
	case c.Iat != nil && *c.Iat > t+skew:
		return fmt.Errorf("%w: token issued in the future, at %s", ErrInvalidToken, numericDate(*c.Iat))
	case c.Iat != nil && *c.Exp-*c.Iat > life:
		return fmt.Errorf("%w: token lifetime from iat %s to exp %s is longer than the %v allowed",
			ErrInvalidToken, numericDate(*c.Iat), numericDate(*c.Exp), maxLife)
	case c.Iat == nil && *c.Exp > t+life+skew:
		return fmt.Errorf("%w: token has no iat and expires at %s, more than %v from now",
			ErrInvalidToken, numericDate(*c.Exp), maxLife)
	}
	return nil
}

// numericDate formats a NumericDate for an error message.
func numericDate(f float64) string {
	if math.Abs(f) > 1e11 {
		return fmt.Sprintf("%g", f)
	}
	return time.Unix(int64(f), 0).UTC().Format(time.RFC3339)
}
