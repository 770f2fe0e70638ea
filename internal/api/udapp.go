package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/ledgerd/ledgerd/internal/appbundle"
	"github.com/ledgerd/ledgerd/internal/appjs"
	"github.com/ledgerd/ledgerd/internal/gov"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/node"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// appProgram is a bundle's compiled JavaScript.
type appProgram = *appjs.Program

// compileApp compiles a bundle's modules and checks that each endpoint's
// module exports its function (running each module's top-level code once,
// under the default limits).
func compileApp(b *appbundle.Bundle) (appProgram, error) {
	if len(b.Modules) == 0 {
		return nil, nil
	}
	mods := make([]appjs.Module, len(b.Modules))
	for i, m := range b.Modules {
		mods[i] = appjs.Module{Name: appbundle.ModuleName(m.Name), Source: m.Module}
	}
	prog, err := appjs.Compile(mods...)
	if err != nil {
		return nil, &appbundle.Error{Msg: "The bundle's modules do not compile: " + err.Error()}
	}
	exports := map[string]map[string]bool{}
	for path, methods := range b.Metadata.Endpoints {
		for method, ep := range methods {
			mod := appbundle.ModuleName(ep.JSModule)
			funcs, ok := exports[mod]
			if !ok {
				funcs, err = prog.Exported(context.Background(), mod, appjs.Limits{})
				if err != nil {
					return nil, &appbundle.Error{Msg: fmt.Sprintf("The module %q does not load: %v", clip(mod), clip(err.Error()))}
				}
				exports[mod] = funcs
			}
			if !funcs[ep.JSFunction] {
				return nil, &appbundle.Error{Msg: fmt.Sprintf("%s %s: the module %q does not export a function %q.",
					strings.ToUpper(method), clip(path), clip(mod), clip(ep.JSFunction))}
			}
		}
	}
	return prog, nil
}

// optsCache is the decoded runtime options of one stored value.
type optsCache struct {
	raw  []byte
	opts appbundle.RuntimeOptions
}

// runtimeOptions returns the runtime options in force, decoded once per
// stored value.
func (s *Server) runtimeOptions(st *node.State) appbundle.RuntimeOptions {
	raw, _ := st.Get(tables.AppRuntimeOptionsMap, appOptionsKey)
	if c := s.appOpts.Load(); c != nil && sameSlice(c.raw, raw) {
		return c.opts
	}
	o, err := appbundle.DecodeRuntimeOptions(raw)
	if err != nil {
		o = appbundle.DefaultRuntimeOptions
	}
	s.appOpts.Store(&optsCache{raw: raw, opts: o})
	return o
}

// limits are the sandbox limits of the runtime options.
func limits(o appbundle.RuntimeOptions) appjs.Limits {
	return appjs.Limits{Time: o.ExecutionTime(), Memory: int64(o.MaxHeapBytes), StackDepth: o.StackDepth()}
}

// serveApp serves a request of a bundle endpoint: it builds CCF's request
// object, calls the endpoint's function under the runtime options' limits,
// and answers its response object (x-ms-ccf-transaction-id on 2xx
// answers only, as every ledgerd answer). A readwrite endpoint runs through the
// node's executor (node.Exec): its ccf.kv writes are one transaction,
// submitted when its status is 2xx (CCF applies no writes of an error
// answer), and its answer carries that transaction's id; a claims digest
// the call set (ccf.rpc.setClaimsDigest) is recorded in its write set
// (tables.ClaimsDigestMap), from which the node takes the transaction's
// claims digest (tables.EntryClaimsDigest), so its receipt carries it. A
// readonly (or historical) endpoint runs against the latest state and
// cannot write.
// Runtimes are pooled (appjs.Pool, at most max_cached_interpreters idle;
// 0: a fresh goja runtime per call) but reset between calls, so a call sees
// what a fresh interpreter shows (CCF's default). An endpoint whose
// metadata has CCF's "interpreter_reuse": {"key": K} opts in to real reuse:
// calls of endpoints with the same key share runtimes whose module-level
// state survives (reuseKey).
func (s *Server) serveApp(c *call) error {
	ar := c.ep.app
	body, err := readRawBody(c)
	if err != nil {
		return err
	}
	headers := make(map[string]string, len(c.r.Header))
	for k, vs := range c.r.Header {
		headers[strings.ToLower(k)] = strings.Join(vs, ", ")
	}
	var caller json.RawMessage
	if caller, err = json.Marshal(c.caller); err != nil {
		return err
	}
	req := &appjs.Request{
		Method: c.r.Method, URL: c.r.URL.RequestURI(), Route: c.ep.pattern, Path: c.r.URL.Path,
		Query: c.r.URL.RawQuery, Params: ar.params, Headers: headers, Hostname: c.r.Host, Body: body, Caller: caller,
	}
	st := s.reads.State()
	opts := s.runtimeOptions(st)
	call := appjs.Call{Module: appbundle.ModuleName(ar.ep.JSModule), Function: ar.ep.JSFunction, Args: []any{req},
		Limits: limits(opts), Response: true, ReadOnly: ar.ep.Mode != appbundle.ModeReadWrite,
		Reuse: reuseKey(ar.ep.InterpreterReuse)}
	ctx := c.r.Context()
	keep := int(opts.MaxCachedInterpreters)
	var res *appjs.Result
	var runErr error
	id := c.served
	if ar.ep.Mode == appbundle.ModeReadWrite {
		txid, err := s.node.Exec(ctx, node.UntilExecuted, func(st *node.State) ([]ledger.MapWrites, error) {
			call.State = appState{st}
			res, runErr = ar.app.pool.Run(ctx, call, keep)
			if runErr != nil {
				return nil, runErr
			}
			apply := res.Response.Status >= 200 && res.Response.Status <= 299
			if res.ApplyWrites != nil {
				apply = *res.ApplyWrites // ccf.rpc.setApplyWrites
			}
			if len(res.Writes) == 0 || !apply {
				return nil, nil // no transaction: a claims digest set is dropped
			}
			w := mapWrites(res.Writes)
			if res.ClaimsDigest != nil { // ccf.rpc.setClaimsDigest: recorded in the write set
				w = append(w, tables.ClaimsDigestWrites([32]byte(res.ClaimsDigest)))
			}
			return w, nil
		})
		if runErr != nil {
			return s.appError(c, runErr, opts)
		}
		if err != nil {
			return err
		}
		if txid != (node.TxID{}) {
			id = txid
		}
	} else {
		call.State = appState{st}
		if res, runErr = ar.app.pool.Run(ctx, call, keep); runErr != nil {
			return s.appError(c, runErr, opts)
		}
	}
	resp := res.Response
	h := c.w.Header()
	for k, v := range resp.Headers {
		h.Set(k, v)
	}
	if resp.ContentType != "" && h.Get("Content-Type") == "" {
		h.Set("Content-Type", resp.ContentType)
	}
	if resp.Status >= 200 && resp.Status < 300 {
		h.Set(txIDHeader, id.String())
	} else {
		h.Del(txIDHeader) // as every error answer
	}
	c.w.WriteHeader(resp.Status)
	c.w.Write(resp.Body) // an error means the client has gone
	return nil
}

// reuseKey is the key of an endpoint's CCF interpreter_reuse metadata
// ({"key": "..."}), "" when it has none. A key that is not a string is
// used as its JSON text; appjs.Pool prefixes nothing, so keys are scoped
// to the bundle (each bundle has its own pool).
func reuseKey(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var ir struct {
		Key json.RawMessage `json:"key"`
	}
	if json.Unmarshal(raw, &ir) != nil || len(ir.Key) == 0 || string(ir.Key) == "null" {
		return ""
	}
	var k string
	if json.Unmarshal(ir.Key, &k) == nil {
		if k == "" {
			return ""
		}
		return "s:" + k
	}
	return "j:" + string(ir.Key)
}

// readRawBody reads a bundle endpoint's request body, whatever its type,
// up to MaxBodyBytes.
func readRawBody(c *call) ([]byte, error) {
	if c.r.ContentLength > MaxBodyBytes {
		return nil, &http.MaxBytesError{Limit: MaxBodyBytes}
	}
	if c.r.ContentLength == 0 {
		return nil, nil
	}
	b, err := io.ReadAll(http.MaxBytesReader(c.w, c.r.Body, MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, err
		}
		return nil, newError(http.StatusBadRequest, codeInvalidInput, "Couldn't read the request body.")
	}
	return b, nil
}

// appError answers a call that threw or was stopped by a limit: 500, with
// the exception's message and stack only if return_exception_details is
// set; logged with them only if log_exception_details is.
func (s *Server) appError(c *call, err error, o appbundle.RuntimeOptions) error {
	msg := "Exception thrown while executing."
	switch {
	case errors.Is(err, appjs.ErrTimeLimit):
		msg = fmt.Sprintf("Operation took too long to complete: the endpoint's function ran longer than max_execution_time_ms (%d).", o.MaxExecutionTimeMs)
	case errors.Is(err, appjs.ErrMemoryLimit):
		msg = fmt.Sprintf("Out of memory: the endpoint's function grew the heap by more than max_heap_bytes (%d).", o.MaxHeapBytes)
	case errors.Is(err, appjs.ErrStackLimit):
		msg = fmt.Sprintf("Stack overflow: the endpoint's function called deeper than max_stack_bytes (%d) allows.", o.MaxStackBytes)
	case errors.Is(err, appjs.ErrCanceled):
		return err // the client went away; nothing to answer
	}
	detail := err.Error()
	var se *appjs.ScriptError
	if errors.As(err, &se) && se.Stack != "" {
		detail = se.Stack
	}
	logUserFailure(s.log, o, err, "user-defined endpoint", "route", c.ep.name())
	if o.ReturnExceptionDetails {
		msg += " " + detail
	}
	ae := newError(http.StatusInternalServerError, codeInternal, "%s", msg)
	ae.userCode = true
	return ae
}

// ACL's role tables, as bundles written for ACL read them (ACL's banking
// sample): the user → roles map, keyed by the JSON string of the user id,
// valued by the JSON array of its role names; and, per role, the map
// PREFIX+name whose keys are the JSON strings of the actions the role
// allows (ACL does not document the values; ledgerd's are JSON true).
const (
	aclUserRolesMap       = "public:confidentialledger.roles.user_roles_mapping"
	aclRoleDefinitionsMap = "public:confidentialledger.roles.user_roles_definitions."
)

// appState is what ccf.kv reads: the latest executed state, plus ACL's
// role tables derived from the ledger's users and role table (roletable.go)
// when the state holds no such map (ledgerd keeps users and roles in its
// own tables).
type appState struct{ st *node.State }

// aclActionValue is the value of an action in a derived role definition.
var aclActionValue = []byte("true")

func (a appState) Get(table string, key []byte) ([]byte, bool) {
	switch {
	case table == aclUserRolesMap && !a.hasReal(table):
		var id string
		if json.Unmarshal(key, &id) != nil {
			return nil, false
		}
		roles, ok := gov.UserRoles(a.st, id)
		if !ok {
			return nil, false
		}
		v, _ := json.Marshal(roles)
		return v, true
	case strings.HasPrefix(table, aclRoleDefinitionsMap) && !a.hasReal(table):
		var action string
		if json.Unmarshal(key, &action) != nil {
			return nil, false
		}
		actions, _ := roleActions(a.st, strings.TrimPrefix(table, aclRoleDefinitionsMap))
		if !slices.Contains(actions, action) {
			return nil, false
		}
		return aclActionValue, true
	}
	return a.st.Get(table, key)
}

func (a appState) ForEach(table string, fn func(key, value []byte) bool) {
	switch {
	case table == aclUserRolesMap && !a.hasReal(table):
		for _, u := range gov.Users(a.st) {
			k, _ := json.Marshal(u.ID)
			v, _ := json.Marshal(u.Roles)
			if !fn(k, v) {
				return
			}
		}
		return
	case strings.HasPrefix(table, aclRoleDefinitionsMap) && !a.hasReal(table):
		actions, _ := roleActions(a.st, strings.TrimPrefix(table, aclRoleDefinitionsMap))
		for _, action := range actions {
			k, _ := json.Marshal(action)
			if !fn(k, aclActionValue) {
				return
			}
		}
		return
	}
	a.st.Range(table, fn)
}

func (a appState) hasReal(table string) bool {
	found := false
	a.st.Range(table, func(_, _ []byte) bool { found = true; return false })
	return found
}
