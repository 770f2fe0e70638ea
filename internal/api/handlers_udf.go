package api

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgerd/ledgerd/internal/appbundle"
	"github.com/ledgerd/ledgerd/internal/appjs"
	"github.com/ledgerd/ledgerd/internal/jsrt"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/node"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// User-defined functions (2024-12-09-preview): JavaScript stored in the
// ledger (tables.UserFunctionsMap) and run by internal/appjs, either on
// their own (POST .../{functionId}:execute) or as pre- and post-hooks of a
// ledger write (POST /app/transactions with preHooks/postHooks).
//
// Transactions: a run whose code writes nothing through ccf.kv writes
// nothing to the ledger. A run that writes is first tried against the
// latest state outside the executor's lock, its reads recorded (readSet):
// inside node.Exec's decide, if the state still holds what it read, its
// writes are the transaction (with the ledger entry, for hooks), so it
// runs once; if not (a concurrent write changed what it read), it runs
// again there, against the state its writes will apply to, and that run's
// result is what is answered and written. An append's hooks are one run
// (pre-hooks, then post-hooks, each seeing the writes of those before it).
// So a function's reads and writes are atomic with respect to every other
// Exec, and a hook that only validates costs no lock.

// Limits of user-defined functions.
const (
	// MaxFunctionIDBytes is the longest function id.
	MaxFunctionIDBytes = 128
	// MaxFunctionCodeBytes is the longest function code, in bytes of UTF-8.
	MaxFunctionCodeBytes = 256 << 10
	// MaxUserFunctions is the most functions a ledger holds.
	MaxUserFunctions = 1000
	// MaxHooks is the most pre-hooks, and the most post-hooks, of one write.
	MaxHooks = 5
	// MaxFunctionArgs is the most arguments of one execution.
	MaxFunctionArgs = 64
	// MaxFunctionArgBytes is the longest argument.
	MaxFunctionArgBytes = 64 << 10
	// functionsPage is the number of functions in a page of the list.
	functionsPage = 100
)

const (
	codeFunctionFailed = "UserDefinedFunctionFailed"
	codeFunctionLimit  = "UserDefinedFunctionLimitExceeded"
	afterParam         = "after"
)

// checkFunctionID validates a function id.
func checkFunctionID(id string) error {
	switch {
	case id == "":
		return invalidInput("The function id is empty.")
	case len(id) > MaxFunctionIDBytes:
		return invalidInput("The function id is %d bytes long; at most %d are allowed.", len(id), MaxFunctionIDBytes)
	case !plainFunctionID(id):
		return invalidInput("The function id %q is not valid: it must start with a letter or digit and hold only letters, digits, '_', '-' and '.'.", clip(id))
	}
	return nil
}

// functionNotFound is the 404 of an unknown function.
func functionNotFound(id string) error {
	return newError(http.StatusNotFound, codeResourceNotFound, "No user defined function %q.", clip(id))
}

// functionJSON is a user-defined function as the API shapes it.
type functionJSON struct {
	ID   string `json:"id"`
	Code string `json:"code"`
}

// getFunction serves GET /app/userDefinedFunctions/{functionId}.
func (s *Server) getFunction(c *call) error {
	id := c.r.PathValue("functionId")
	if err := checkFunctionID(id); err != nil {
		return err
	}
	code, ok := s.reads.State().Get(tables.UserFunctionsMap, []byte(id))
	if !ok {
		return functionNotFound(id)
	}
	return c.ok(functionJSON{ID: id, Code: string(code)})
}

// listFunctions serves GET /app/userDefinedFunctions: the functions in id
// order, functionsPage per page, with a nextLink (?after=<last id>) while
// more remain.
func (s *Server) listFunctions(c *call) error {
	after := c.r.URL.Query().Get(afterParam)
	items := []functionJSON{}
	more := false
	s.reads.State().Range(tables.UserFunctionsMap, func(k, v []byte) bool {
		if string(k) <= after {
			return true
		}
		if len(items) == functionsPage {
			more = true
			return false
		}
		items = append(items, functionJSON{ID: string(k), Code: string(v)})
		return true
	})
	page := struct {
		Functions []functionJSON `json:"functions"`
		NextLink  string         `json:"nextLink,omitempty"`
	}{Functions: items}
	if more {
		page.NextLink = "/app/userDefinedFunctions?" + apiVersionParam + "=" + url.QueryEscape(c.d.version) +
			"&" + afterParam + "=" + url.QueryEscape(items[len(items)-1].ID)
	}
	return c.ok(page)
}

// putFunction serves PUT /app/userDefinedFunctions/{functionId}: it
// creates (201) or replaces (200) the function, once the code compiles,
// and answers once the write is committed.
func (s *Server) putFunction(c *call) error {
	id := c.r.PathValue("functionId")
	if err := checkFunctionID(id); err != nil {
		return err
	}
	body, err := readBody(c, mediaJSON)
	if err != nil {
		return err
	}
	var code string
	var has bool
	err = decodeObject(body, map[string]func(json.RawMessage) error{
		"code": func(raw json.RawMessage) (err error) {
			code, err = decodeString("code", raw, MaxFunctionCodeBytes)
			has = true
			return err
		},
		"id": func(raw json.RawMessage) error {
			bodyID, err := decodeString("id", raw, MaxFunctionIDBytes)
			if err == nil && bodyID != id {
				err = invalidInput("The body's \"id\" (%q) differs from the function id of the path (%q).", clip(bodyID), clip(id))
			}
			return err
		},
	})
	if err != nil {
		return err
	}
	if !has {
		return invalidInput("The request body has no \"code\" field.")
	}
	if strings.TrimSpace(code) == "" {
		return invalidInput("The field \"code\" is empty.")
	}
	if _, err := compileFunction([]byte(code)); err != nil {
		return err
	}
	var existed bool
	var refused error
	txid, err := s.node.Exec(c.r.Context(), node.UntilCommitted, func(st *node.State) ([]ledger.MapWrites, error) {
		_, existed = st.Get(tables.UserFunctionsMap, []byte(id))
		if !existed && countFunctions(st) >= MaxUserFunctions {
			refused = newError(http.StatusBadRequest, codeFunctionLimit,
				"The ledger already holds the maximum of %d user defined functions; delete one first.", MaxUserFunctions)
			return nil, refused
		}
		return []ledger.MapWrites{{Name: tables.UserFunctionsMap, Writes: []ledger.KV{{Key: []byte(id), Value: []byte(code)}}}}, nil
	})
	switch {
	case err != nil && err == refused:
		return err
	case err != nil:
		return fmt.Errorf("couldn't write user defined function: %w", err)
	}
	status := http.StatusCreated
	if existed {
		status = http.StatusOK
	}
	s.log.Info("user defined function written", "function_id", id, "transaction_id", txid.String(), "created", !existed)
	return c.reply(status, txid, functionJSON{ID: id, Code: code})
}

// deleteFunction serves DELETE /app/userDefinedFunctions/{functionId}:
// 204 once committed, 404 for an unknown function.
func (s *Server) deleteFunction(c *call) error {
	id := c.r.PathValue("functionId")
	if err := checkFunctionID(id); err != nil {
		return err
	}
	var refused error
	txid, err := s.node.Exec(c.r.Context(), node.UntilCommitted, func(st *node.State) ([]ledger.MapWrites, error) {
		if _, ok := st.Get(tables.UserFunctionsMap, []byte(id)); !ok {
			refused = functionNotFound(id)
			return nil, refused
		}
		return []ledger.MapWrites{{Name: tables.UserFunctionsMap, Removes: [][]byte{[]byte(id)}}}, nil
	})
	switch {
	case err != nil && err == refused:
		return err
	case err != nil:
		return fmt.Errorf("couldn't delete user defined function: %w", err)
	}
	s.log.Info("user defined function deleted", "function_id", id, "transaction_id", txid.String())
	return c.noContent(txid)
}

func countFunctions(st *node.State) int {
	n := 0
	st.Range(tables.UserFunctionsMap, func(_, _ []byte) bool { n++; return true })
	return n
}

// compiledFunction is a function's code compiled, with the pool of its
// runtimes (used when a run's runtimeOptions ask for cached interpreters).
type compiledFunction struct {
	prog *appjs.Program
	pool *appjs.Pool
	runs atomic.Uint64 // runs of the code (executions and hooks)
}

// compiled caches compiled functions by the SHA-256 of their code, so that
// every execution and hook of the same code compiles once (bounded: when
// full it starts over).
var compiled struct {
	sync.Mutex
	m map[[32]byte]*compiledFunction
}

const maxCompiledFunctions = 256

// compileFunction compiles a function's code (cached), a 400 when it does
// not compile.
func compileFunction(code []byte) (*compiledFunction, error) {
	key := sha256.Sum256(code)
	compiled.Lock()
	f := compiled.m[key]
	compiled.Unlock()
	if f != nil {
		return f, nil
	}
	prog, err := appjs.Compile(appjs.Module{Name: "function.js", Source: string(code)})
	if err != nil {
		return nil, invalidInput("The function's code does not compile: %v", err)
	}
	f = &compiledFunction{prog: prog, pool: prog.NewPool()}
	compiled.Lock()
	defer compiled.Unlock()
	if prev := compiled.m[key]; prev != nil {
		return prev, nil
	}
	if compiled.m == nil || len(compiled.m) >= maxCompiledFunctions {
		compiled.m = map[[32]byte]*compiledFunction{}
	}
	compiled.m[key] = f
	return f, nil
}

// udfDefaultOptions are a function run's runtime options when the request
// gives none: CCF's defaults (max_cached_interpreters 10: a pool of at most
// 10 idle runtimes per function's code, each reset between runs, so every
// run sees a fresh interpreter).
var udfDefaultOptions = appbundle.DefaultRuntimeOptions

// execProps are a function execution's properties (the swagger's
// UserDefinedFunctionExecutionProperties).
type execProps struct {
	args    []string
	export  string
	options appbundle.RuntimeOptions
}

// decodeExecProps decodes execution properties: arguments (strings,
// default none), exportedFunctionName (default main) and runtimeOptions
// (each option 0 or absent takes CCF's default). An empty raw is all
// defaults. where prefixes field names in errors.
func decodeExecProps(raw []byte, where string) (execProps, error) {
	p := execProps{export: "main", options: udfDefaultOptions}
	if len(strings.TrimSpace(string(raw))) == 0 {
		return p, nil
	}
	field := func(name string) string { return where + name }
	err := decodeObject(raw, map[string]func(json.RawMessage) error{
		"arguments": func(raw json.RawMessage) error {
			if len(raw) == 0 || raw[0] != '[' {
				return invalidInput("The field %q must be an array of strings, not %s.", field("arguments"), jsonType(raw))
			}
			items := jsonArrayItems(raw)
			if len(items) > MaxFunctionArgs {
				return invalidInput("The field %q has %d arguments; at most %d are allowed.", field("arguments"), len(items), MaxFunctionArgs)
			}
			p.args = make([]string, len(items))
			for i, it := range items {
				a, err := decodeString(fmt.Sprintf("%s[%d]", field("arguments"), i), it, MaxFunctionArgBytes)
				if err != nil {
					return err
				}
				p.args[i] = a
			}
			return nil
		},
		"exportedFunctionName": func(raw json.RawMessage) error {
			name, err := decodeString(field("exportedFunctionName"), raw, appbundle.MaxNameBytes)
			if err != nil {
				return err
			}
			if name != "" {
				p.export = name
			}
			return nil
		},
		"runtimeOptions": func(raw json.RawMessage) (err error) {
			p.options, err = decodeRuntimeOptions(raw, field("runtimeOptions"))
			return err
		},
	})
	return p, err
}

// decodeRuntimeOptions decodes a JSRuntimeOptions object for one
// execution: a limit absent or 0 (as the spec's examples send) takes
// CCF's default; others must be within appbundle's bounds.
// max_cached_interpreters caps the function's pool of runtimes: at most
// that many stay idle between runs (absent or 0: the default, 10). A
// pooled runtime is reset between runs (appjs.Pool), so no state survives
// from one run to the next whatever the option: a function has no
// metadata to opt in to interpreter reuse.
func decodeRuntimeOptions(raw json.RawMessage, where string) (appbundle.RuntimeOptions, error) {
	o := udfDefaultOptions
	if len(raw) == 0 || raw[0] != '{' {
		return o, invalidInput("The field %q must be an object, not %s.", where, jsonType(raw))
	}
	num := func(name string, dst *uint64) func(json.RawMessage) error {
		return func(raw json.RawMessage) error {
			n, err := strconv.ParseUint(string(raw), 10, 64)
			if err != nil {
				return invalidInput("The field %q must be a non-negative integer, not %s.", where+"."+name, clip(string(raw)))
			}
			if n != 0 {
				*dst = n
			}
			return nil
		}
	}
	boolean := func(name string, dst *bool) func(json.RawMessage) error {
		return func(raw json.RawMessage) error {
			switch string(raw) {
			case "true":
				*dst = true
			case "false":
				*dst = false
			default:
				return invalidInput("The field %q must be true or false, not %s.", where+"."+name, clip(string(raw)))
			}
			return nil
		}
	}
	err := decodeObject(raw, map[string]func(json.RawMessage) error{
		"max_heap_bytes":           num("max_heap_bytes", &o.MaxHeapBytes),
		"max_stack_bytes":          num("max_stack_bytes", &o.MaxStackBytes),
		"max_execution_time_ms":    num("max_execution_time_ms", &o.MaxExecutionTimeMs),
		"max_cached_interpreters":  num("max_cached_interpreters", &o.MaxCachedInterpreters),
		"log_exception_details":    boolean("log_exception_details", &o.LogExceptionDetails),
		"return_exception_details": boolean("return_exception_details", &o.ReturnExceptionDetails),
	})
	if err != nil {
		return o, err
	}
	if err := o.Check(); err != nil {
		return o, invalidInput("%s: %v", where, err)
	}
	return o, nil
}

// limits are the sandbox limits of the options.
func limitsOf(o appbundle.RuntimeOptions) appjs.Limits {
	return appjs.Limits{Time: o.ExecutionTime(), Memory: int64(o.MaxHeapBytes), StackDepth: o.StackDepth()}
}

// stateView is what a run reads of a node state (*node.State).
type stateView interface {
	Get(table string, key []byte) ([]byte, bool)
	Range(table string, fn func(k, v []byte) bool)
}

// stateReader is appjs.Reader over a node state.
type stateReader struct{ st stateView }

func (r stateReader) Get(table string, key []byte) ([]byte, bool) { return r.st.Get(table, key) }
func (r stateReader) ForEach(table string, fn func(k, v []byte) bool) {
	r.st.Range(table, fn)
}

// mapWrites turns a run's or call's write set into the transaction's
// writes, one MapWrites per table (the set is ordered by table).
func mapWrites(ws []appjs.Write) []ledger.MapWrites {
	var out []ledger.MapWrites
	for _, w := range ws {
		if len(out) == 0 || out[len(out)-1].Name != w.Table {
			out = append(out, ledger.MapWrites{Name: w.Table})
		}
		m := &out[len(out)-1]
		if w.Deleted {
			m.Removes = append(m.Removes, w.Key)
		} else {
			m.Writes = append(m.Writes, ledger.KV{Key: w.Key, Value: w.Value})
		}
	}
	return out
}

// funcRun is one function to run: its id and execution properties.
type funcRun struct {
	id    string
	props execProps
}

// noContext are the globals of an execution: context is null.
var noContext = map[string]any{"context": nil}

// runFunctions runs fns in order against st, each seeing the writes of
// those before it and the global context (hookCtx, a hook's; nil: null), and returns their results and the combined write set.
// It stops at the first failure: failed is its index, err its error (a
// *appjs.ScriptError, a limit error, or a 4xx for a function that does
// not exist or does not compile).
//
// timeCap, if not 0, bounds the whole run's time besides each function's
// own limit (see lockedCap).
func runFunctions(ctx context.Context, st stateView, fns []funcRun, hookCtx map[string]any, timeCap time.Duration) (results []*appjs.Result, writes []appjs.Write, failed int, err error) {
	tx := jsrt.NewTx(readKV{stateReader{st}})
	deadline := time.Now().Add(timeCap)
	// context is always set (null for an execution), so that a reused
	// runtime never shows one run's entry to the next.
	globals := noContext
	if hookCtx != nil {
		globals = map[string]any{"context": hookCtx}
	}
	for i, f := range fns {
		limits := limitsOf(f.props.options)
		if timeCap > 0 {
			rem := time.Until(deadline)
			if rem <= 0 {
				return nil, nil, i, fmt.Errorf("appjs: %w (the run under the executor's lock took longer than %v)", appjs.ErrTimeLimit, timeCap)
			}
			limits.Time = min(limits.Time, rem)
		}
		code, ok := st.Get(tables.UserFunctionsMap, []byte(f.id))
		if !ok {
			return nil, nil, i, invalidInput("No user defined function %q.", clip(f.id))
		}
		fn, err := compileFunction(code)
		if err != nil {
			return nil, nil, i, err
		}
		var args []any
		if len(f.props.args) > 0 {
			args = make([]any, len(f.props.args))
			for j, a := range f.props.args {
				args[j] = a
			}
		}
		fn.runs.Add(1)
		res, err := fn.pool.Run(ctx, appjs.Call{Function: f.props.export, Args: args, Globals: globals,
			State: tx, Limits: limits}, int(f.props.options.MaxCachedInterpreters))
		if err != nil {
			return nil, nil, i, err
		}
		for _, w := range res.Writes {
			if w.Deleted {
				tx.Delete(w.Table, w.Key)
			} else {
				tx.Set(w.Table, w.Key, w.Value)
			}
		}
		results = append(results, res)
	}
	return results, tx.Writes(), -1, nil
}

// lockedCap bounds a run under the executor's lock (node.Exec), which
// holds every other Exec: twice what the same run took outside the lock,
// plus 100 ms. So code that wrote quickly the first time cannot hold the
// executor for its whole time limit the second.
func lockedCap(first time.Duration) time.Duration { return 2*first + 100*time.Millisecond }

// readKV is a jsrt.KV over an appjs.Reader; the Tx over it is never
// committed.
type readKV struct{ r appjs.Reader }

func (k readKV) Get(t string, key []byte) ([]byte, bool)     { return k.r.Get(t, key) }
func (k readKV) ForEach(t string, fn func(k, v []byte) bool) { k.r.ForEach(t, fn) }
func (readKV) Set(string, []byte, []byte)                    { panic("api: write to a read-only state") }
func (readKV) Delete(string, []byte)                         { panic("api: write to a read-only state") }

// executionJSON is the answer of an execution (the swagger's
// UserDefinedFunctionExecutionResponse).
type executionJSON struct {
	Error  *executionError  `json:"error,omitempty"`
	Result *executionResult `json:"result,omitempty"`
	Status string           `json:"status"`
}

type executionError struct {
	Message string `json:"message"`
}

type executionResult struct {
	ReturnValue string `json:"returnValue"`
}

// returnValue is the string an execution answers for a result: "" for no
// value, a string itself, anything else as JSON.
func returnValue(v json.RawMessage) string {
	if v == nil {
		return ""
	}
	if v[0] == '"' {
		var s string
		if json.Unmarshal(v, &s) == nil {
			return s
		}
	}
	return string(v)
}

// failureMessage is what a failed run tells its caller: the exception
// (with its JavaScript stack when the options ask for exception details),
// or which limit stopped it.
func failureMessage(err error, details bool) string {
	var se *appjs.ScriptError
	switch {
	case errors.As(err, &se):
		if details && se.Stack != "" {
			return se.Stack
		}
		return se.Message
	case errors.Is(err, appjs.ErrTimeLimit), errors.Is(err, appjs.ErrMemoryLimit), errors.Is(err, appjs.ErrStackLimit):
		return strings.TrimPrefix(err.Error(), "appjs: ")
	}
	return "The function could not be run."
}

// scriptFailure reports whether err is the function's own failure (it
// threw, or a limit stopped it) rather than the server's.
func scriptFailure(err error) bool {
	var se *appjs.ScriptError
	return errors.As(err, &se) || errors.Is(err, appjs.ErrTimeLimit) ||
		errors.Is(err, appjs.ErrMemoryLimit) || errors.Is(err, appjs.ErrStackLimit)
}

// executeFunction serves POST /app/userDefinedFunctions/{functionId}:execute.
// It answers 200 with status Succeeded and the return value, or status
// Failed and the error when the function threw or a limit stopped it; 404
// for an unknown function. A run that writes through ccf.kv commits its
// writes as one transaction, whose id is the answer's
// x-ms-ccf-transaction-id (sequenced, not yet committed, as for an
// append); a run that writes nothing answers the committed id it read at.
func (s *Server) executeFunction(c *call) error {
	raw := c.r.PathValue("functionId")
	id, ok := strings.CutSuffix(raw, ":execute")
	if !ok {
		return newError(http.StatusNotFound, codeResourceNotFound,
			"No such endpoint: POST /app/userDefinedFunctions/%s; executing a function is POST /app/userDefinedFunctions/{functionId}:execute.", clip(raw))
	}
	if err := checkFunctionID(id); err != nil {
		return err
	}
	body, err := readBody(c, mediaJSON)
	if err != nil {
		return err
	}
	props, err := decodeExecProps(body, "")
	if err != nil {
		return err
	}
	if _, ok := s.reads.State().Get(tables.UserFunctionsMap, []byte(id)); !ok {
		return functionNotFound(id)
	}
	fns := []funcRun{{id: id, props: props}}
	ctx := c.r.Context()
	start := time.Now()
	reads := getReadSet(s.reads.State())
	defer putReadSet(reads) // after Exec, whose decide validates it
	results, writes, _, err := runFunctions(ctx, reads, fns, nil, 0)
	first := time.Since(start)
	txid := c.served
	if err == nil && len(writes) > 0 {
		// It writes: under the executor's lock, its writes apply as they
		// are if the state still holds what it read (readSet); else it runs
		// again there, against the state its writes will apply to (as CCF
		// retries a transaction that conflicts).
		var runErr error
		txid, err = s.node.Exec(ctx, node.UntilExecuted, func(st *node.State) ([]ledger.MapWrites, error) {
			if reads.unchanged(st) {
				return mapWrites(writes), nil
			}
			results, writes, _, runErr = runFunctions(ctx, st, fns, nil, lockedCap(first))
			if runErr != nil {
				return nil, runErr
			}
			return mapWrites(writes), nil
		})
		switch {
		case err != nil && err == runErr:
		case err != nil:
			return fmt.Errorf("couldn't write the function's changes: %w", err)
		case len(writes) == 0:
			txid = c.served
		}
	}
	if err != nil {
		if !scriptFailure(err) {
			return err
		}
		logUserFailure(s.log, props.options, err, "user-defined function", "function_id", id)
		return c.reply(http.StatusOK, c.served, executionJSON{Status: "Failed",
			Error: &executionError{Message: failureMessage(err, props.options.ReturnExceptionDetails)}})
	}
	return c.reply(http.StatusOK, txid, executionJSON{Status: "Succeeded",
		Result: &executionResult{ReturnValue: returnValue(results[0].Value)}})
}

// entryHooks are the hooks of one ledger write.
type entryHooks struct {
	pre, post []funcRun
	// log, if set, logs a hook's failure (logUserFailure).
	log *slog.Logger
}

func (h *entryHooks) empty() bool { return h == nil || len(h.pre)+len(h.post) == 0 }

// decodeHooks decodes a preHooks or postHooks array (the swagger's
// UserDefinedFunctionHooks) of at most MaxHooks hooks.
func decodeHooks(raw json.RawMessage, field string) ([]funcRun, error) {
	if len(raw) == 0 || raw[0] != '[' {
		return nil, invalidInput("The field %q must be an array of hooks, not %s.", field, jsonType(raw))
	}
	items := jsonArrayItems(raw)
	if len(items) > MaxHooks {
		return nil, invalidInput("The field %q has %d hooks; at most %d are allowed.", field, len(items), MaxHooks)
	}
	out := make([]funcRun, len(items))
	for i, it := range items {
		where := fmt.Sprintf("%s[%d]", field, i)
		var has bool
		out[i].props = execProps{export: "main", options: udfDefaultOptions}
		err := decodeObject(it, map[string]func(json.RawMessage) error{
			"functionId": func(raw json.RawMessage) (err error) {
				out[i].id, err = decodeString(where+".functionId", raw, MaxFunctionIDBytes)
				has = err == nil
				return err
			},
			"properties": func(raw json.RawMessage) (err error) {
				if len(raw) == 0 || raw[0] != '{' {
					return invalidInput("The field %q must be an object, not %s.", where+".properties", jsonType(raw))
				}
				out[i].props, err = decodeExecProps(raw, where+".properties.")
				return err
			},
		})
		if err != nil {
			return nil, err
		}
		if !has {
			return nil, invalidInput("The hook %s has no \"functionId\".", where)
		}
		if err := checkFunctionID(out[i].id); err != nil {
			return nil, invalidInput("%s.functionId: %s", where, err.(*apiError).message)
		}
	}
	return out, nil
}

// run runs the hooks of an entry against st: the pre-hooks, then the
// post-hooks, each seeing the context {contents, collectionId} and the
// writes of the hooks before it. A failing hook fails the write: a 400
// naming the hook.
//
// timeCap is runFunctions'.
func (h *entryHooks) run(ctx context.Context, st stateView, coll string, contents []byte, timeCap time.Duration) ([]appjs.Write, error) {
	hookCtx := map[string]any{"contents": string(contents), "collectionId": coll}
	fns := h.pre
	switch {
	case len(h.pre) == 0:
		fns = h.post
	case len(h.post) > 0:
		fns = append(slices.Clip(h.pre), h.post...)
	}
	_, writes, failed, err := runFunctions(ctx, st, fns, hookCtx, timeCap)
	if err == nil {
		return writes, nil
	}
	kind, n := "pre-hook", failed
	if failed >= len(h.pre) {
		kind, n = "post-hook", failed-len(h.pre)
	}
	if !scriptFailure(err) {
		var ae *apiError
		if errors.As(err, &ae) {
			return nil, newError(ae.status, ae.code, "The %s %d (function %q) cannot run: %s", kind, n, clip(fns[failed].id), ae.message)
		}
		return nil, err
	}
	if h.log != nil {
		logUserFailure(h.log, fns[failed].props.options, err, "user-defined function", "hook", kind, "index", n, "function_id", fns[failed].id)
	}
	refused := newError(http.StatusBadRequest, codeFunctionFailed, "The %s %d (function %q) failed, so nothing was written: %s",
		kind, n, clip(fns[failed].id), failureMessage(err, fns[failed].props.options.ReturnExceptionDetails))
	refused.userCode = true
	return nil, refused
}
