package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ledgerd/ledgerd/internal/appbundle"
	"github.com/ledgerd/ledgerd/internal/auth"
	"github.com/ledgerd/ledgerd/internal/transport"
)

// Forwarding (CCF's forwarder, src/node/rpc/forwarder.h). A backup does
// not write: a write it receives is sent to the primary over the
// node-to-node channel and answered with the primary's answer (status,
// headers, x-ms-ccf-transaction-id included, body).
//
// The backup admits the request as usual (api-version, credentials, role in
// its own state), then sends the request (method, path and query, headers
// but Authorization, body bounded by MaxBodyBytes, or appbundle.MaxBundleBytes
// for a bundle) with the principal it
// authenticated to the primary's ForwardedPrefix route on the node-to-node
// interface. The primary takes the principal only from a request that came
// over that route from an authenticated, Trusted node (transport.PeerNodeID);
// it re-checks the principal's role against its own state, never trusts a
// client certificate or principal header of a forwarded request, and does
// not forward again. Governance writes are public routes authenticated by
// their COSE signature, which the primary verifies itself. A client cannot
// forge a forwarded request: the client interface never reads the
// principal header, and the node-to-node interface admits nodes only.
//
// Session consistency (CCF): once a request of a connection has been
// forwarded, the connection's later /app/ and /gov/ requests are forwarded too while
// this node is not the primary, so the client reads its own writes.

// ForwardedPrefix is the path prefix of forwarded requests on the
// node-to-node interface: ForwardedPrefix + the client's request URI.
const ForwardedPrefix = "/forwarded"

// forwardedPrincipalHeader carries the principal the backup authenticated,
// as JSON {"kind":"certificate"|"jwt","id":...}. Read only on the
// node-to-node route.
const forwardedPrincipalHeader = "X-Ledgerd-Forwarded-Principal"

// Headers a backup adds to a forwarded request of a user-defined endpoint,
// whose function sees the caller's certificate or token claims
// (request.caller): the client's TLS certificate (base64 DER) and the
// bearer token the backup verified. Read only on the node-to-node route,
// and like the principal, trusted there because a Trusted node sent them.
const (
	forwardedCertHeader = "X-Ledgerd-Forwarded-Cert"
	forwardedJWTHeader  = "X-Ledgerd-Forwarded-Jwt"
)

// forwardTimeout bounds a forwarded request, the primary's answer
// included (a write waits to be sequenced, a user change to be committed:
// well under this on a healthy network), so that a stalled primary costs
// the client a clear 503 rather than its own timeout.
const forwardTimeout = 10 * time.Second

// Forwarder sends req to the node whose Raft id is raftID over the
// node-to-node channel, mutually authenticated (transport.Transport.Do).
// req's URL holds only the path and query.
type Forwarder func(ctx context.Context, raftID uint64, req *http.Request) (*http.Response, error)

// session is the state of one client connection.
type session struct {
	// forwarding: a request of the connection was forwarded to the
	// primary; its later requests follow it there.
	forwarding atomic.Bool
}

type sessionKey struct{}

// sessionOf returns the session of the connection of ctx, or nil.
func sessionOf(ctx context.Context) *session {
	s, _ := ctx.Value(sessionKey{}).(*session)
	return s
}

// forwardedCall is what the primary knows of a forwarded request.
type forwardedCall struct {
	peer string         // the node that forwarded it
	who  auth.Principal // zero: the backup authenticated no one
	// certDER and jwt are the client's certificate and bearer token, for
	// user-defined endpoints (nil, "": not sent).
	certDER []byte
	jwt     string
}

type forwardedKey struct{}

func forwardedOf(ctx context.Context) (forwardedCall, bool) {
	f, ok := ctx.Value(forwardedKey{}).(forwardedCall)
	return f, ok
}

type principalJSON struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
}

func encodePrincipal(p auth.Principal) string {
	b, _ := json.Marshal(principalJSON{Kind: p.Kind.String(), ID: p.ID}) // strings always encode
	return string(b)
}

func decodePrincipal(s string) (auth.Principal, error) {
	var pj principalJSON
	if err := json.Unmarshal([]byte(s), &pj); err != nil || pj.ID == "" {
		return auth.Principal{}, errors.New("malformed forwarded principal")
	}
	switch pj.Kind {
	case auth.KindCertificate.String():
		return auth.Principal{ID: pj.ID, Kind: auth.KindCertificate}, nil
	case auth.KindJWT.String():
		return auth.Principal{ID: pj.ID, Kind: auth.KindJWT}, nil
	}
	return auth.Principal{}, errors.New("forwarded principal of unknown kind")
}

// writes reports whether the endpoint changes the service's state, so that
// only the primary may run it. Joining has its own answer on a backup (the
// primary's address: handlers_join.go).
func (ep *endpoint) writes() bool {
	if ep.app != nil {
		// A bundle endpoint: by its mode, or its forwarding_required.
		return ep.app.ep.Mode == appbundle.ModeReadWrite || ep.app.ep.ForwardingRequired == appbundle.ForwardAlways
	}
	return ep.method != http.MethodGet && ep.pattern != "/node/join"
}

// shouldForward reports whether c goes to the primary: a write, or any
// /app/ or /gov/ request of a connection whose writes were forwarded, received by a
// backup of a network (Config.Forward set), and not itself forwarded.
func (s *Server) shouldForward(c *call) bool {
	if s.cfg.Forward == nil || s.reads.IsPrimary() {
		return false
	}
	if _, forwarded := forwardedOf(c.r.Context()); forwarded {
		return false
	}
	if c.ep.writes() {
		return true
	}
	sess := sessionOf(c.r.Context())
	return sess != nil && sess.forwarding.Load() && (strings.HasPrefix(c.r.URL.Path, "/app/") || strings.HasPrefix(c.r.URL.Path, "/gov/"))
}

// hopHeaders are not forwarded either way (RFC 9110 §7.6.1), nor are
// credentials: the primary takes the principal from the backup.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
	"Authorization", forwardedPrincipalHeader, forwardedCertHeader, forwardedJWTHeader}

// forward sends c to the primary and answers with its answer.
func (s *Server) forward(c *call) error {
	primary := s.reads.RaftInfo().Leader
	if primary == 0 || primary == s.reads.RaftInfo().ID {
		return newError(http.StatusServiceUnavailable, codeUnavailable,
			"This node is a backup and no primary is known now (an election is under way); the write was not made. Retry shortly.")
	}
	var body []byte
	if c.r.Body != nil {
		var err error
		limit := int64(MaxBodyBytes)
		if c.ep.pattern == "/app/userDefinedEndpoints" {
			limit = appbundle.MaxBundleBytes // a bundle may be larger than any other body
		}
		if body, err = io.ReadAll(http.MaxBytesReader(c.w, c.r.Body, limit)); err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				return err
			}
			return newError(http.StatusBadRequest, codeInvalidInput, "Couldn't read the request body.")
		}
	}
	req, err := http.NewRequestWithContext(c.r.Context(), c.r.Method, ForwardedPrefix+c.r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	for k, vs := range c.r.Header {
		req.Header[k] = append([]string(nil), vs...)
	}
	for _, h := range hopHeaders {
		req.Header.Del(h)
	}
	if c.who.ID != "" {
		req.Header.Set(forwardedPrincipalHeader, encodePrincipal(c.who))
	}
	if c.ep.app != nil {
		if c.r.TLS != nil && len(c.r.TLS.PeerCertificates) > 0 {
			req.Header.Set(forwardedCertHeader, base64.StdEncoding.EncodeToString(c.r.TLS.PeerCertificates[0].Raw))
		}
		if c.who.Kind == auth.KindJWT || c.caller.usedJWT() { // usedJWT: an all_of's token part
			if token, err := auth.BearerToken(c.r.Header); err == nil {
				req.Header.Set(forwardedJWTHeader, token)
			}
		}
	}
	ctx, cancel := context.WithTimeout(c.r.Context(), forwardTimeout)
	defer cancel()
	resp, err := s.cfg.Forward(ctx, primary, req.WithContext(ctx))
	if err != nil {
		if ctxErr := c.r.Context().Err(); ctxErr != nil {
			return ctxErr
		}
		if ctx.Err() != nil {
			s.log.Warn("the primary did not answer a forwarded request in time", "route", c.ep.name(), "primary_raft_id", primary, "timeout", forwardTimeout)
			return newError(http.StatusServiceUnavailable, codeUnavailable,
				"This node is a backup; the primary (Raft id %d) did not answer the forwarded request within %s, so its effect, if any, is unknown. Retry shortly.", primary, forwardTimeout)
		}
		s.log.Warn("couldn't forward a request to the primary", "route", c.ep.name(), "primary_raft_id", primary, "err", err)
		return newError(http.StatusServiceUnavailable, codeUnavailable,
			"This node is a backup and couldn't reach the primary (Raft id %d) to forward the request; its effect, if any, is unknown. Retry shortly.", primary)
	}
	defer resp.Body.Close()
	if sess := sessionOf(c.r.Context()); sess != nil {
		sess.forwarding.Store(true)
	}
	h := c.w.Header()
	for k, vs := range resp.Header {
		h[k] = vs
	}
	for _, k := range hopHeaders {
		h.Del(k)
	}
	h.Del("Content-Length")
	c.w.WriteHeader(resp.StatusCode)
	_, err = io.Copy(c.w, resp.Body)
	if err != nil {
		s.log.Debug("forwarded answer cut short", "route", c.ep.name(), "err", err)
	}
	return nil
}

// ForwardedHandler serves requests forwarded by backups: add it to the
// node-to-node interface at ForwardedPrefix + "/" (transport.Transport.Handle),
// which admits only authenticated nodes the service trusts. A request that
// did not come over such a route is refused.
func (s *Server) ForwardedHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer, ok := transport.PeerNodeID(r.Context())
		if !ok {
			s.writeError(w, r, "forwarded", newError(http.StatusForbidden, codeNotAllowed, "Forwarded requests are accepted from nodes only."))
			return
		}
		fc := forwardedCall{peer: peer}
		if v := r.Header.Values(forwardedPrincipalHeader); len(v) > 0 {
			p, err := decodePrincipal(v[0])
			if err != nil || len(v) > 1 {
				s.writeError(w, r, "forwarded", newError(http.StatusBadRequest, codeInvalidInput, "The forwarded principal is malformed."))
				return
			}
			fc.who = p
		}
		if v := r.Header.Get(forwardedCertHeader); v != "" {
			der, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				s.writeError(w, r, "forwarded", newError(http.StatusBadRequest, codeInvalidInput, "The forwarded certificate is malformed."))
				return
			}
			fc.certDER = der
		}
		fc.jwt = r.Header.Get(forwardedJWTHeader)
		r2 := r.Clone(context.WithValue(r.Context(), forwardedKey{}, fc))
		r2.URL.Path = strings.TrimPrefix(r.URL.Path, ForwardedPrefix)
		r2.URL.RawPath = strings.TrimPrefix(r.URL.RawPath, ForwardedPrefix)
		r2.RequestURI = r2.URL.RequestURI()
		r2.TLS = nil // the node's certificate is not the caller's
		r2.Header.Del(forwardedPrincipalHeader)
		r2.Header.Del(forwardedCertHeader)
		r2.Header.Del(forwardedJWTHeader)
		r2.Header.Del("Authorization")
		s.mux.ServeHTTP(w, r2)
	})
}
