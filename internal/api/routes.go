package api

import (
	"cmp"
	"fmt"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/ledgerd/ledgerd/internal/auth"
	"github.com/ledgerd/ledgerd/internal/cose"
	"github.com/ledgerd/ledgerd/internal/node"
)

// access says who may call an endpoint (acl-api.md §5).
type access int

const (
	// accessPublic needs no credentials.
	accessPublic access = iota
	// accessCaller admits any ledger user, whatever its roles, and any
	// Active consortium member (by TLS client certificate).
	accessCaller
	// accessReader and the following admit a ledger user one of whose
	// roles allows the endpoint's action (its action field). The level
	// says which built-in roles allow that action: Reader and the roles
	// above it, Contributor and Administrator, or Administrator alone
	// (builtinActions).
	accessReader
	accessContributor
	accessAdministrator
)

// role returns the lowest built-in role an access level admits.
func (a access) role() auth.Role {
	switch a {
	case accessReader:
		return auth.RoleReader
	case accessContributor:
		return auth.RoleContributor
	case accessAdministrator:
		return auth.RoleAdministrator
	}
	return auth.RoleNone
}

// endpoint is one method on one path.
type endpoint struct {
	method  string
	pattern string // http.ServeMux pattern without the method
	access  access
	// action is the ACL action name a caller's roles must allow (for the
	// access levels from accessReader on). An endpoint without one gets
	// the action defaultAction derives from its path, method and level.
	action string
	// unversioned endpoints do not need api-version: the identity
	// endpoint (JS clients send none) and the node's operational ones.
	unversioned bool
	// since is the first api-version with the endpoint, for the error
	// message when available says no.
	since     string
	available func(dialect) bool
	handle    func(*Server, *call) error
	// app is the installed bundle's endpoint a request matched
	// (udserve.go); nil for built-in endpoints.
	app *appRoute
}

// name is the endpoint's route label in metrics and logs.
func (ep *endpoint) name() string { return ep.method + " " + ep.pattern }

// endpoints lists the API. Patterns are matched by http.ServeMux, where a
// literal segment beats a wildcard (so .../current is not a transaction id).
func endpoints() []endpoint {
	const (
		tx   = "/app/transactions/{transactionId}"
		user = "/app/users/{userId}"
		lu   = "/app/ledgerUsers/{userId}"
		fn   = "/app/userDefinedFunctions/{functionId}"
	)
	listUsers := func(d dialect) bool { return d.listUsers }
	ledgerUsers := func(d dialect) bool { return d.ledgerUsers }
	tags := func(d dialect) bool { return d.tags }
	udf := func(d dialect) bool { return d.userFunctions }
	ude := func(d dialect) bool { return d.userEndpoints }
	roles := func(d dialect) bool { return d.roles }
	const udeSince = "2024-07-26-preview"
	eps := []endpoint{
		{method: "GET", pattern: "/ledgerIdentity/{ledgerId}", access: accessPublic, unversioned: true, handle: (*Server).getLedgerIdentity},
		{method: "POST", pattern: "/app/transactions", access: accessContributor, action: auth.ActionAppend, handle: (*Server).createEntry},
		{method: "GET", pattern: "/app/transactions", access: accessReader, action: auth.ActionHistoricalQuery, handle: (*Server).listEntries},
		{method: "GET", pattern: "/app/transactions/current", access: accessReader, action: auth.ActionRead, handle: (*Server).getCurrentEntry},
		{method: "GET", pattern: tx, access: accessReader, action: auth.ActionHistoricalQuery, handle: (*Server).getEntry},
		{method: "GET", pattern: tx + "/status", access: accessReader, action: auth.ActionStatusRead, handle: (*Server).getStatus},
		{method: "GET", pattern: tx + "/receipt", access: accessReader, action: auth.ActionReceiptsRead, handle: (*Server).getReceipt},
		{method: "GET", pattern: "/app/collections", access: accessReader, action: auth.ActionCollectionsRead, handle: (*Server).listCollections},
		{method: "GET", pattern: "/app/collections/tags", access: accessReader, action: auth.ActionCollectionsRead, since: "2024-12-09-preview", available: tags, handle: (*Server).listCollectionTags},
		{method: "GET", pattern: "/app/users", access: accessAdministrator, action: auth.ActionUsersReadAll, since: "2024-01-26-preview", available: listUsers, handle: (*Server).listUsers},
		{method: "GET", pattern: user, access: accessAdministrator, action: auth.ActionUsersRead, handle: (*Server).getUser},
		{method: "PATCH", pattern: user, access: accessAdministrator, action: auth.ActionUsersWrite, handle: (*Server).patchUser},
		{method: "DELETE", pattern: user, access: accessAdministrator, action: auth.ActionUsersDelete, handle: (*Server).deleteUser},
		{method: "GET", pattern: "/app/ledgerUsers", access: accessAdministrator, action: auth.ActionUsersReadAll, since: "2024-12-09-preview", available: ledgerUsers, handle: (*Server).listUsers},
		{method: "GET", pattern: lu, access: accessAdministrator, action: auth.ActionUsersRead, since: "2024-12-09-preview", available: ledgerUsers, handle: (*Server).getUser},
		{method: "PATCH", pattern: lu, access: accessAdministrator, action: auth.ActionUsersWrite, since: "2024-12-09-preview", available: ledgerUsers, handle: (*Server).patchUser},
		{method: "DELETE", pattern: lu, access: accessAdministrator, action: auth.ActionUsersDelete, since: "2024-12-09-preview", available: ledgerUsers, handle: (*Server).deleteUser},
		// User-defined endpoints (handlers_udendpoints.go); the bundle's own
		// endpoints are served under /app by udserve.go. ACL's how-to
		// spells the options path runTimeOptions: both are served.
		{method: "GET", pattern: "/app/userDefinedEndpoints", access: accessReader, action: auth.ActionEndpointsRead, since: udeSince, available: ude, handle: (*Server).getUserDefinedEndpoints},
		{method: "PUT", pattern: "/app/userDefinedEndpoints", access: accessAdministrator, action: auth.ActionEndpointsWrite, since: udeSince, available: ude, handle: (*Server).putUserDefinedEndpoints},
		{method: "GET", pattern: "/app/userDefinedEndpoints/runtimeOptions", access: accessReader, action: auth.ActionEndpointsRead, since: udeSince, available: ude, handle: (*Server).getRuntimeOptions},
		{method: "PATCH", pattern: "/app/userDefinedEndpoints/runtimeOptions", access: accessAdministrator, action: auth.ActionEndpointsWrite, since: udeSince, available: ude, handle: (*Server).patchRuntimeOptions},
		{method: "GET", pattern: "/app/userDefinedEndpoints/runTimeOptions", access: accessReader, action: auth.ActionEndpointsRead, since: udeSince, available: ude, handle: (*Server).getRuntimeOptions},
		{method: "PATCH", pattern: "/app/userDefinedEndpoints/runTimeOptions", access: accessAdministrator, action: auth.ActionEndpointsWrite, since: udeSince, available: ude, handle: (*Server).patchRuntimeOptions},
		{method: "GET", pattern: "/app/userDefinedEndpoints/modules", access: accessReader, action: auth.ActionEndpointsRead, since: udeSince, available: ude, handle: (*Server).getUserDefinedEndpointsModule},
		// User-defined functions (handlers_udf.go). ServeMux wildcards are
		// whole segments, so POST {functionId} serves {functionId}:execute.
		{method: "GET", pattern: "/app/userDefinedFunctions", access: accessReader, action: auth.ActionFunctionsRead, since: "2024-12-09-preview", available: udf, handle: (*Server).listFunctions},
		{method: "GET", pattern: fn, access: accessReader, action: auth.ActionFunctionsRead, since: "2024-12-09-preview", available: udf, handle: (*Server).getFunction},
		{method: "PUT", pattern: fn, access: accessAdministrator, action: auth.ActionFunctionsWrite, since: "2024-12-09-preview", available: udf, handle: (*Server).putFunction},
		{method: "DELETE", pattern: fn, access: accessAdministrator, action: auth.ActionFunctionsDelete, since: "2024-12-09-preview", available: udf, handle: (*Server).deleteFunction},
		{method: "POST", pattern: fn, access: accessContributor, action: auth.ActionFunctionsExecute, since: "2024-12-09-preview", available: udf, handle: (*Server).executeFunction},
		{method: "GET", pattern: "/app/governance/members", access: accessReader, action: auth.ActionMembersRead, handle: (*Server).listMembers},
		{method: "GET", pattern: "/app/governance/constitution", access: accessReader, action: auth.ActionConstitutionRead, handle: (*Server).getConstitution},
		{method: "GET", pattern: "/app/enclaveQuotes", access: accessReader, action: auth.ActionEnclavesRead, handle: (*Server).getEnclaveQuotes},
		// User-defined roles (handlers_roles.go).
		{method: "GET", pattern: "/app/roles", access: accessAdministrator, action: auth.ActionRolesRead, since: "2024-08-22-preview", available: roles, handle: (*Server).getRoles},
		{method: "PUT", pattern: "/app/roles", access: accessAdministrator, action: auth.ActionRolesWrite, since: "2024-08-22-preview", available: roles, handle: (*Server).putRoles},
		{method: "PATCH", pattern: "/app/roles", access: accessAdministrator, action: auth.ActionRolesWrite, since: "2024-08-22-preview", available: roles, handle: (*Server).patchRoles},
		{method: "DELETE", pattern: "/app/roles", access: accessAdministrator, action: auth.ActionRolesDelete, since: "2024-08-22-preview", available: roles, handle: (*Server).deleteRole},
		{method: "POST", pattern: "/node/join", access: accessPublic, unversioned: true, handle: (*Server).postJoin},
		// CCF's node endpoints (handlers_network.go).
		{method: "GET", pattern: "/node/state", access: accessPublic, unversioned: true, handle: (*Server).getNodeState},
		{method: "GET", pattern: "/node/network", access: accessPublic, unversioned: true, handle: (*Server).getNetwork},
		{method: "GET", pattern: "/node/network/nodes", access: accessPublic, unversioned: true, handle: (*Server).listNetworkNodes},
		{method: "GET", pattern: "/node/network/nodes/self", access: accessPublic, unversioned: true, handle: (*Server).getNetworkNodeSelf},
		{method: "GET", pattern: "/node/network/nodes/primary", access: accessPublic, unversioned: true, handle: (*Server).getNetworkNodePrimary},
		{method: "GET", pattern: "/node/network/nodes/{nodeId}", access: accessPublic, unversioned: true, handle: (*Server).getNetworkNode},
		{method: "GET", pattern: "/node/commit", access: accessPublic, unversioned: true, handle: (*Server).getNodeCommit},
		{method: "GET", pattern: "/node/tx", access: accessPublic, unversioned: true, handle: (*Server).getNodeTx},
		{method: "GET", pattern: "/node/version", access: accessPublic, unversioned: true, handle: (*Server).getNodeVersion},
		{method: "GET", pattern: "/node/quotes/self", access: accessPublic, unversioned: true, handle: (*Server).getNodeQuoteSelf},
		{method: "GET", pattern: "/node/quotes", access: accessPublic, unversioned: true, handle: (*Server).getNodeQuotes},
		{method: "GET", pattern: "/node/consensus", access: accessCaller, unversioned: true, handle: (*Server).getNodeConsensus},
		{method: "GET", pattern: "/metrics", access: accessCaller, unversioned: true, handle: (*Server).getMetrics},
		{method: "GET", pattern: "/healthz", access: accessPublic, unversioned: true, handle: (*Server).getHealth},
		// CCF's governance API (handlers_govapi.go): its own api-version
		// (govRead), no authentication, as in CCF.
		{method: "GET", pattern: "/gov/service/info", access: accessPublic, unversioned: true, handle: govRead((*Server).getGovServiceInfo)},
		{method: "GET", pattern: "/gov/service/constitution", access: accessPublic, unversioned: true, handle: govRead((*Server).getGovConstitution)},
		{method: "GET", pattern: "/gov/service/members", access: accessPublic, unversioned: true, handle: govRead((*Server).listGovMembers)},
		{method: "GET", pattern: "/gov/service/members/{memberId}", access: accessPublic, unversioned: true, handle: govRead((*Server).getGovMember)},
		{method: "GET", pattern: "/gov/service/nodes", access: accessPublic, unversioned: true, handle: govRead((*Server).listGovNodes)},
		{method: "GET", pattern: "/gov/service/nodes/{nodeId}", access: accessPublic, unversioned: true, handle: govRead((*Server).getGovNode)},
		{method: "GET", pattern: "/gov/service/join-policy", access: accessPublic, unversioned: true, handle: govRead((*Server).getGovJoinPolicy)},
		{method: "GET", pattern: "/gov/service/jwk", access: accessPublic, unversioned: true, handle: govRead((*Server).getGovJWK)},
		{method: "GET", pattern: "/gov/service/javascript-app", access: accessPublic, unversioned: true, handle: govRead((*Server).getGovJSApp)},
		{method: "GET", pattern: "/gov/service/transactions/commit", access: accessPublic, unversioned: true, handle: govRead((*Server).getGovCommit)},
		{method: "GET", pattern: "/gov/service/transactions/{transactionId}", access: accessPublic, unversioned: true, handle: govRead((*Server).getGovTransaction)},
		// Recovery (handlers_govrecovery.go).
		{method: "GET", pattern: "/gov/recovery/encrypted-shares/{memberId}", access: accessPublic, unversioned: true, handle: govRead((*Server).getGovEncryptedShare)},
		{method: "POST", pattern: "/gov/recovery/members/{memberAction}", access: accessPublic, unversioned: true, handle: govRead((*Server).postGovRecoveryMember)},
		{method: "POST", pattern: "/gov/members/proposals:create", access: accessPublic, unversioned: true, handle: govSigned(cose.MsgProposal, (*Server).createProposal)},
		{method: "GET", pattern: "/gov/members/proposals", access: accessPublic, unversioned: true, handle: govRead((*Server).listProposals)},
		{method: "GET", pattern: "/gov/members/proposals/{proposalId}", access: accessPublic, unversioned: true, handle: govRead((*Server).getProposal)},
		{method: "POST", pattern: "/gov/members/proposals/{proposalId}", access: accessPublic, unversioned: true, handle: (*Server).postProposal},
		{method: "GET", pattern: "/gov/members/proposals/{proposalId}/actions", access: accessPublic, unversioned: true, handle: govRead((*Server).getProposalActions)},
		{method: "GET", pattern: "/gov/members/proposals/{proposalId}/ballots/{memberId}", access: accessPublic, unversioned: true, handle: govRead((*Server).getBallot)},
		{method: "POST", pattern: "/gov/members/proposals/{proposalId}/ballots/{memberId}", access: accessPublic, unversioned: true, handle: (*Server).postBallot},
		{method: "GET", pattern: "/gov/members/state-digests/{memberId}", access: accessPublic, unversioned: true, handle: govRead((*Server).getStateDigest)},
		{method: "POST", pattern: "/gov/members/state-digests/{memberId}", access: accessPublic, unversioned: true, handle: (*Server).postStateDigest},
	}
	for i := range eps {
		if eps[i].action == "" && eps[i].access >= accessReader {
			eps[i].action = defaultAction(&eps[i])
		}
	}
	return eps
}

// defaultAction is the action of an endpoint listed without one: the
// user-defined function and endpoint APIs' actions by path and method,
// else the generic read or append action of a Reader or Contributor level.
// An Administrator endpoint outside those APIs gets none, so that no one
// may call it until it names its action (TestEveryEndpointHasAnAction).
func defaultAction(ep *endpoint) string {
	switch {
	case strings.HasPrefix(ep.pattern, "/app/userDefinedFunctions"):
		switch ep.method {
		case "GET":
			return auth.ActionFunctionsRead
		case "PUT", "PATCH":
			return auth.ActionFunctionsWrite
		case "DELETE":
			return auth.ActionFunctionsDelete
		case "POST":
			return auth.ActionFunctionsExecute
		}
	case strings.HasPrefix(ep.pattern, "/app/userDefinedEndpoints"):
		if ep.method == "GET" {
			return auth.ActionEndpointsRead
		}
		return auth.ActionEndpointsWrite
	case ep.access == accessReader:
		return auth.ActionRead
	case ep.access == accessContributor:
		return auth.ActionAppend
	}
	return ""
}

// Route labels of requests that match no endpoint.
const (
	routeUnmatched        = "unmatched"
	routeMethodNotAllowed = "method_not_allowed"
)

// routes builds the request multiplexer. Patterns are registered without a
// method so that a wrong method gets a JSON 405 from dispatch, and "/"
// catches every unknown path with a JSON 404.
func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	var patterns []string
	byPattern := map[string][]*endpoint{}
	for _, ep := range endpoints() {
		if byPattern[ep.pattern] == nil {
			patterns = append(patterns, ep.pattern)
		}
		byPattern[ep.pattern] = append(byPattern[ep.pattern], &ep)
	}
	for _, p := range patterns {
		mux.Handle(p, s.dispatch(byPattern[p]))
	}
	mux.Handle("/", s.dispatch(nil))
	return mux
}

// call is one request being served.
type call struct {
	w  http.ResponseWriter
	r  *http.Request
	ep *endpoint
	d  dialect
	// who is the authenticated caller (zero for public endpoints).
	who auth.Principal
	// served is the committed transaction id when the request was
	// admitted: the state a read answer reflects at least.
	served node.TxID
	// caller is what a bundle endpoint's function sees as request.caller
	// (authorizeApp).
	caller callerJSON
}

// dispatch returns the handler of one pattern's endpoints: it picks the
// endpoint by method, negotiates the api-version, authenticates and
// authorises the caller, runs the endpoint, and answers errors, recording
// metrics for all of it.
func (s *Server) dispatch(eps []*endpoint) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		reqID, err := setRequestIDs(rec, r)
		ep, route, pickErr := pick(rec, r, eps)
		if eps == nil {
			ep, route, pickErr = s.pickApp(rec, r)
		}
		err = cmp.Or(err, pickErr)
		if strings.HasPrefix(r.URL.Path, "/app/") && !s.frontendOpen() {
			// CCF's user frontend answers nothing, not even 404 or 405,
			// before the service is open.
			err = errFrontendNotOpen
		}
		defer s.recoverPanic(rec, r, route)
		if err == nil {
			c := &call{w: rec, r: r, ep: ep}
			if err = s.admit(c); err == nil {
				if s.shouldForward(c) {
					err = s.forward(c)
				} else {
					err = ep.handle(s, c)
				}
			}
		}
		if err != nil {
			s.writeError(rec, r, route, err)
		}
		elapsed := time.Since(start)
		s.metrics.observe(route, rec.status, elapsed)
		s.log.Debug("request", "route", route, "status", rec.status, "duration", elapsed, "request_id", reqID)
	})
}

// pick returns the endpoint of the request's method and its route label,
// or the 404 or 405 error (with an Allow header) and the label of those.
func pick(w http.ResponseWriter, r *http.Request, eps []*endpoint) (*endpoint, string, error) {
	if eps == nil {
		return nil, routeUnmatched, newError(http.StatusNotFound, codeResourceNotFound,
			"No such resource: %s.", clip(r.URL.Path))
	}
	i := slices.IndexFunc(eps, func(ep *endpoint) bool { return ep.method == r.Method })
	if i < 0 {
		allowed := make([]string, len(eps))
		for j, ep := range eps {
			allowed[j] = ep.method
		}
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		return nil, routeMethodNotAllowed, newError(http.StatusMethodNotAllowed, codeMethodNotAllowed,
			"%s is not supported on %s; use %s.", clip(r.Method), eps[0].pattern, strings.Join(allowed, " or "))
	}
	return eps[i], eps[i].name(), nil
}

// admit checks everything that comes before an endpoint runs: the
// api-version and whether the endpoint exists in it, then the caller's
// credentials and role.
func (s *Server) admit(c *call) error {
	if c.ep.app == nil { // a bundle's function reads its own query string
		if err := checkQuery(c.r.URL.RawQuery); err != nil {
			return err
		}
	}
	d, err := negotiate(c.r.URL.Query(), c.ep.unversioned)
	if err != nil {
		return err
	}
	if c.ep.available != nil && !c.ep.available(d) {
		return newError(http.StatusBadRequest, codeUnsupportedAPIVersion,
			"%s needs api-version %s or later; the request has %s.", c.ep.name(), c.ep.since, d.version)
	}
	c.d = d
	if err := s.authorize(c); err != nil {
		return err
	}
	if c.ep.access != accessPublic && (c.ep.app == nil || c.who.ID != "") {
		markAuthorized(c.r.Context()) // a known caller: its connection may idle longer
	}
	c.served = s.reads.CommittedTxID()
	return nil
}

// recoverPanic turns a panic in a handler into a logged 500, so that a bug
// is loud in the log (http.Server would log it only at debug level, with
// the TLS handshake noise) and the client gets an ACL error body.
func (s *Server) recoverPanic(w *statusRecorder, r *http.Request, route string) {
	p := recover()
	if p == nil {
		return
	}
	if p == http.ErrAbortHandler {
		panic(p)
	}
	s.log.Error("panic serving request", "route", route, "panic", p, "stack", string(debug.Stack()))
	if w.status == 0 {
		s.writeError(w, r, route, fmt.Errorf("panic: %v", p))
	}
	s.metrics.observe(route, http.StatusInternalServerError, 0)
}

// statusRecorder remembers the status a handler answered with.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
