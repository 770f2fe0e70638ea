package api

import (
	"errors"
	"fmt"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/ledgerd/ledgerd/internal/auth"
	"github.com/ledgerd/ledgerd/internal/gov"
)

// authenticate identifies the caller. A request with an Authorization
// header is judged by its bearer token alone (a bad token is not rescued by
// a client certificate); otherwise the TLS client certificate identifies
// it. The certificate's user id is recomputed per request: a SHA-256 of a
// few hundred bytes costs less than a cache lookup would save.
//
// A request forwarded by a backup (forward.go) is the principal the backup
// authenticated, or no one.
func (s *Server) authenticate(r *http.Request) (auth.Principal, error) {
	if fc, ok := forwardedOf(r.Context()); ok {
		if fc.who.ID == "" {
			return auth.Principal{}, fmt.Errorf("%w: forwarded by node %s without a principal", auth.ErrNoCredentials, fc.peer)
		}
		return fc.who, nil
	}
	if len(r.Header.Values("Authorization")) > 0 {
		token, err := auth.BearerToken(r.Header)
		if err != nil {
			return auth.Principal{}, err
		}
		p, err := s.jwt.Verify(r.Context(), token, gov.JWTRegistry{State: s.reads.State()})
		if errors.Is(err, auth.ErrUnknownIssuer) && s.cfg.JWT != nil {
			return s.cfg.JWT.Verify(r.Context(), token)
		}
		return p, err
	}
	return auth.PrincipalFromTLS(r.TLS, time.Now())
}

// authorize authenticates the caller of a non-public endpoint and checks,
// in the committed state read afresh for every request, that one of its
// roles allows the endpoint's action (roleDirectory): removing a user,
// changing its roles or a role's actions takes effect on its next request.
func (s *Server) authorize(c *call) error {
	if c.ep.access == accessPublic {
		return nil
	}
	if c.ep.app != nil {
		return s.authorizeApp(c)
	}
	p, err := s.authenticate(c.r)
	if err != nil {
		// The caller gets a generic 401; why is for the operator. auth's
		// errors never contain the token.
		s.log.Debug("request not authenticated", "route", c.ep.name(), "reason", err)
		return err
	}
	c.who = p
	st := s.reads.State()
	if c.ep.access == accessCaller {
		if _, ok := gov.UserRoles(st, p.ID); ok || s.isMember(c) {
			return nil
		}
		return s.notAllowed(c, fmt.Errorf("%w: %s %q is neither a ledger user nor an active member", auth.ErrNotAllowed, p.Kind, clip(p.ID)))
	}
	if err := auth.Authorize(roleDirectory{st}, p, c.ep.action); err != nil {
		return s.notAllowed(c, err)
	}
	return nil
}

// isMember reports whether the caller's TLS client certificate is that of
// an Active consortium member.
func (s *Server) isMember(c *call) bool {
	if c.who.Kind != auth.KindCertificate || c.r.TLS == nil || len(c.r.TLS.PeerCertificates) == 0 {
		return false
	}
	return gov.IsActiveMember(s.reads.State(), gov.MemberID(c.r.TLS.PeerCertificates[0].Raw))
}

// notAllowed logs why a caller was refused and returns the 403 that ACL
// answers, which names the operation but not the reason.
func (s *Server) notAllowed(c *call, reason error) error {
	s.log.Debug("request not allowed", "route", c.ep.name(), "reason", reason)
	return newError(http.StatusForbidden, codeNotAllowed, "Not allowed to call %s %s", c.r.Method, clip(c.r.URL.Path))
}

// clip shortens a client-supplied string before it goes into an error
// message or a log line, and makes it valid UTF-8.
func clip(s string) string {
	const max = 128
	if len(s) > max {
		s = s[:max] + "…"
	}
	if !utf8.ValidString(s) {
		s = fmt.Sprintf("%q", s)
	}
	return s
}
