package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgerd/ledgerd/internal/appbundle"
	"github.com/ledgerd/ledgerd/internal/appjs"
	"github.com/ledgerd/ledgerd/internal/auth"
	"github.com/ledgerd/ledgerd/internal/gov"
)

// Serving the installed bundle's endpoints (handlers_udendpoints.go
// installs it). A request under /app/ that matches no built-in endpoint is
// looked up in the bundle's router; built-in endpoints always win, and a
// path the bundle does not declare is 404 as before. The endpoint's
// authn_policies are tried in order (the first that admits the caller
// wins; none: 401), then its function runs in the JavaScript sandbox
// (appjs.go) under the runtime options' limits.

// accessApp is the access level of a bundle endpoint: its own
// authentication policies decide (authorizeApp).
const accessApp access = -1

// appRoute is what a request matched in the installed bundle.
type appRoute struct {
	app    *udApp
	ep     *appbundle.Endpoint
	params map[string]string
}

// udApp is an installed bundle, parsed, routed and compiled once per
// version of the stored bundle.
type udApp struct {
	raw    []byte // the stored value, by identity (appCache.get)
	bundle *appbundle.Bundle
	router *appbundle.Router
	prog   appProgram
	// pool reuses prog's runtimes (max_cached_interpreters of them).
	pool *appjs.Pool
}

// appCache holds the compiled form of the installed bundle. The state's
// values are never changed in place, so a stored value with the same
// address and length is the same bundle: the check on every request is a
// pointer comparison.
type appCache struct {
	mu  sync.Mutex
	cur atomic.Pointer[udApp]
}

func sameSlice(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// get returns the compiled app of the stored bundle raw.
func (a *appCache) get(raw []byte) (*udApp, error) {
	if cur := a.cur.Load(); cur != nil && sameSlice(cur.raw, raw) {
		return cur, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	cur := a.cur.Load()
	switch {
	case cur != nil && sameSlice(cur.raw, raw):
		return cur, nil
	case cur != nil && bytes.Equal(cur.raw, raw):
		// The same bundle at another address (a rollback rebuilt the
		// state): keep its compiled form.
		next := *cur
		next.raw = raw
		a.cur.Store(&next)
		return &next, nil
	}
	b, err := appbundle.Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("the stored bundle does not decode: %w", err)
	}
	prog, err := compileApp(b)
	if err != nil {
		return nil, fmt.Errorf("the stored bundle does not compile: %w", err)
	}
	app := &udApp{raw: raw, bundle: b, router: appbundle.NewRouter(b), prog: prog}
	if prog != nil {
		app.pool = prog.NewPool()
	}
	a.cur.Store(app)
	return app, nil
}

// check compiles a bundle about to be installed and checks that each
// endpoint's module exports its function.
func (a *appCache) check(b *appbundle.Bundle) error {
	_, err := compileApp(b)
	return err
}

// pickApp finds the bundle endpoint of a request that matched no built-in
// endpoint: the 404 of pick(nil) when there is none, a 405 with Allow when
// the path is the bundle's but the method is not.
func (s *Server) pickApp(w http.ResponseWriter, r *http.Request) (*endpoint, string, error) {
	notFound := func() (*endpoint, string, error) { return pick(w, r, nil) }
	if !strings.HasPrefix(r.URL.Path, "/app/") {
		return notFound()
	}
	raw := storedBundle(s.reads.State())
	if raw == nil {
		return notFound()
	}
	app, err := s.apps.get(raw)
	if err != nil {
		return nil, routeUnmatched, err
	}
	rt, params, ok := app.router.Match(strings.TrimPrefix(r.URL.EscapedPath(), "/app"))
	if !ok {
		return notFound()
	}
	uep := rt.Methods[r.Method]
	if uep == nil {
		allowed := rt.Allowed()
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		return nil, routeMethodNotAllowed, newError(http.StatusMethodNotAllowed, codeMethodNotAllowed,
			"%s is not supported on /app%s; use %s.", clip(r.Method), clip(rt.Path), strings.Join(allowed, " or "))
	}
	ep := &endpoint{method: r.Method, pattern: "/app" + rt.Path, access: accessApp, unversioned: true,
		handle: (*Server).serveApp, app: &appRoute{app: app, ep: uep, params: params}}
	return ep, ep.name(), nil
}

// Caller objects of CCF's authentication policies (request.caller).
type callerJSON struct {
	Policy string          `json:"policy"`
	ID     string          `json:"id,omitempty"`
	Data   json.RawMessage `json:"data,omitempty"`
	Cert   string          `json:"cert,omitempty"`
	JWT    *jwtCallerJSON  `json:"jwt,omitempty"`
	// AllOf, for a caller admitted by an all_of policy, is each of its
	// policies' caller object by policy name: CCF's AllOfAuthnIdentity,
	// {"policy": [names, sorted], NAME: caller object, ...}.
	AllOf map[string]callerJSON `json:"-"`
}

// MarshalJSON writes the caller object, an all_of's as CCF does.
func (c callerJSON) MarshalJSON() ([]byte, error) {
	type plain callerJSON
	if c.AllOf == nil {
		return json.Marshal(plain(c))
	}
	names := make([]string, 0, len(c.AllOf))
	m := make(map[string]any, len(c.AllOf)+1)
	for n, sub := range c.AllOf {
		names = append(names, n)
		m[n] = sub
	}
	sort.Strings(names)
	m["policy"] = names
	return json.Marshal(m)
}

// usedJWT reports whether a bearer token admitted the caller (alone or
// as part of an all_of).
func (c callerJSON) usedJWT() bool {
	_, inAll := c.AllOf[appbundle.PolicyJWT]
	return c.JWT != nil || inAll
}

type jwtCallerJSON struct {
	KeyIssuer string          `json:"keyIssuer"`
	Header    json.RawMessage `json:"header"`
	Payload   json.RawMessage `json:"payload"`
}

// ccfIDOfUser turns an ACL certificate user id (upper-case hex SHA-256 of
// the certificate's DER, colon-separated) into CCF's (ccf.pemToId:
// lower-case hex).
func ccfIDOfUser(id string) string {
	return strings.ToLower(strings.ReplaceAll(id, ":", ""))
}

var emptyObject = json.RawMessage(`{}`)

// authorizeApp admits the caller of a bundle endpoint by the first of its
// authentication policies that accepts it, and records the caller object
// the function sees; none: 401. Policies: no_auth (anyone); any_cert (any
// valid TLS client certificate); user_cert (the certificate of a ledger
// user, whatever its roles); member_cert (an Active member's); jwt (a
// bearer token of a governed or configured issuer). A request forwarded by
// a backup carries the principal the backup authenticated, with the
// client's certificate (which must be the principal's) or token claims.
//
// An all_of policy (CCF's AllOfAuthnPolicy) admits the caller only if each
// of its policies does, tried in name order; request.caller is then
// {"policy": [names], NAME: that policy's caller object, ...}, and the
// principal is the certificate's when one of them is a certificate policy
// (else the token's).
func (s *Server) authorizeApp(c *call) error {
	fc, forwarded := forwardedOf(c.r.Context())
	st := s.reads.State()
	var reasons []string
	for _, policy := range c.ep.app.ep.AuthnPolicies {
		if policy.AllOf == nil {
			caller, who, err := s.policyCaller(c, policy.Name, fc, forwarded, st)
			if err != nil {
				reasons = append(reasons, policy.Name+": "+err.Error())
				continue
			}
			c.who, c.caller = who, caller
			return nil
		}
		all := callerJSON{AllOf: map[string]callerJSON{}}
		var who auth.Principal
		var failed error
		for _, name := range policy.Sorted() {
			caller, w, err := s.policyCaller(c, name, fc, forwarded, st)
			if err != nil {
				failed = fmt.Errorf("%s: %w", name, err)
				break
			}
			all.AllOf[name] = caller
			if who.ID == "" || w.Kind == auth.KindCertificate {
				who = w
			}
		}
		if failed != nil {
			reasons = append(reasons, "all_of "+policy.String()+": "+failed.Error())
			continue
		}
		c.who, c.caller = who, all
		return nil
	}
	s.log.Debug("request not authenticated", "route", c.ep.name(), "reasons", strings.Join(reasons, "; "))
	return newError(http.StatusUnauthorized, codeUnauthenticated,
		"The caller is not admitted by any of the endpoint's authentication policies (%s).", strings.Join(c.ep.app.ep.PolicyNames(), ", "))
}

// policyCaller is the caller object and principal of one named policy, or
// why the policy does not admit the caller.
func (s *Server) policyCaller(c *call, policy string, fc forwardedCall, forwarded bool, st gov.State) (callerJSON, auth.Principal, error) {
	switch policy {
	case appbundle.PolicyNoAuth:
		return callerJSON{Policy: policy}, auth.Principal{}, nil
	case appbundle.PolicyAnyCert, appbundle.PolicyUserCert, appbundle.PolicyMemberCert:
		return s.certCaller(c, policy, fc, forwarded, st)
	case appbundle.PolicyJWT:
		return s.jwtCaller(c, fc, forwarded)
	}
	return callerJSON{}, auth.Principal{}, fmt.Errorf("unknown policy %q", policy)
}

func (s *Server) certCaller(c *call, policy string, fc forwardedCall, forwarded bool, st gov.State) (callerJSON, auth.Principal, error) {
	var who auth.Principal
	var der []byte
	if forwarded {
		if fc.who.Kind != auth.KindCertificate {
			return callerJSON{}, who, errors.New("no client certificate")
		}
		if fc.certDER != nil && auth.CertificateUserID(fc.certDER) != fc.who.ID {
			return callerJSON{}, who, errors.New("the forwarded certificate is not the forwarded principal's")
		}
		if fc.certDER == nil && policy == appbundle.PolicyMemberCert {
			return callerJSON{}, who, errors.New("a forwarded request's certificate is not known")
		}
		who, der = fc.who, fc.certDER
	} else {
		p, err := auth.PrincipalFromTLS(c.r.TLS, time.Now())
		if err != nil {
			return callerJSON{}, who, err
		}
		who, der = p, c.r.TLS.PeerCertificates[0].Raw
	}
	caller := callerJSON{Policy: policy}
	if der != nil {
		caller.Cert = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	}
	switch policy {
	case appbundle.PolicyUserCert:
		if _, ok := gov.UserRoles(st, who.ID); !ok {
			return callerJSON{}, who, errors.New("the certificate is not a ledger user's")
		}
		caller.ID, caller.Data = ccfIDOfUser(who.ID), emptyObject
	case appbundle.PolicyMemberCert:
		id := gov.MemberID(der)
		if !gov.IsActiveMember(st, id) {
			return callerJSON{}, who, errors.New("the certificate is not an active member's")
		}
		caller.ID, caller.Data = id, emptyObject
	}
	return caller, who, nil
}

func (s *Server) jwtCaller(c *call, fc forwardedCall, forwarded bool) (callerJSON, auth.Principal, error) {
	if forwarded {
		if fc.who.Kind == auth.KindCertificate && fc.jwt != "" {
			// An all_of of a certificate and a token: the backup
			// authenticated the certificate's principal and verified the
			// token it forwards.
			return jwtCallerOf(fc.jwt), fc.who, nil
		}
		if fc.who.Kind != auth.KindJWT {
			return callerJSON{}, auth.Principal{}, errors.New("no bearer token")
		}
		if fc.jwt == "" {
			return callerJSON{Policy: appbundle.PolicyJWT, JWT: &jwtCallerJSON{Header: emptyObject, Payload: emptyObject}}, fc.who, nil
		}
		return jwtCallerOf(fc.jwt), fc.who, nil
	}
	if len(c.r.Header.Values("Authorization")) == 0 {
		return callerJSON{}, auth.Principal{}, auth.ErrNoCredentials
	}
	p, err := s.authenticate(c.r)
	if err != nil {
		return callerJSON{}, p, err
	}
	token, _ := auth.BearerToken(c.r.Header) // authenticate accepted it
	return jwtCallerOf(token), p, nil
}

// jwtCallerOf is request.caller of a verified token: its issuer, header and
// payload.
func jwtCallerOf(token string) callerJSON {
	parts := strings.SplitN(token, ".", 3)
	if len(parts) != 3 {
		return callerJSON{Policy: appbundle.PolicyJWT, JWT: &jwtCallerJSON{Header: emptyObject, Payload: emptyObject}}
	}
	header, _ := base64.RawURLEncoding.DecodeString(parts[0])
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct {
		Iss string `json:"iss"`
	}
	if json.Unmarshal(payload, &claims) != nil || !json.Valid(header) {
		return callerJSON{Policy: appbundle.PolicyJWT, JWT: &jwtCallerJSON{Header: emptyObject, Payload: emptyObject}}
	}
	return callerJSON{Policy: appbundle.PolicyJWT, JWT: &jwtCallerJSON{KeyIssuer: claims.Iss, Header: header, Payload: payload}}
}
