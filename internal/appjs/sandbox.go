package appjs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/dop251/goja"
	"github.com/ledgerd/ledgerd/internal/jsrt"
)

// reservedPrefixes are the table names user code may not touch: CCF's
// governance and internal tables and ledgerd's own.
var reservedPrefixes = []string{"public:ccf.", "ccf.", "public:ledgerd.", "ledgerd."}

// MaxTableName bounds a table name's length in bytes.
const MaxTableName = 256

// AppTable reports whether name is an application table, one user code
// may read and write through ccf.kv: any non-empty name of at most
// MaxTableName bytes that does not start with "public:ccf.", "ccf.",
// "public:ledgerd." or "ledgerd." (CCF's and ledgerd's tables). As in CCF,
// a name starting with "public:" is written in the clear in the ledger;
// any other is private (encrypted with the ledger secret).
func AppTable(name string) bool {
	if name == "" || name == "public:" || len(name) > MaxTableName || !utf8.ValidString(name) {
		return false
	}
	for _, p := range reservedPrefixes {
		if strings.HasPrefix(name, p) {
			return false
		}
	}
	return true
}

// sandbox is one call's runtime.
type sandbox struct {
	prog    *Program
	state   Reader
	tx      *jsrt.Tx
	rt      *goja.Runtime
	maps    map[string]*goja.Object
	exports map[string]*goja.Object // modules loaded in this call (or, reused, this runtime)
	loading map[string]bool
	// factories are the modules' factories in this runtime: calling one
	// evaluates the module's top-level code again.
	factories map[string]goja.Callable
	// ccf and console are the lazy objects behind the globals ccf and
	// console; cryptoHolder holds ccf.crypto, ccf.rpc and ccf.pemToId
	// once made.
	ccf, console *lazyObject
	cryptoHolder *goja.Object
	// slots are a locked pooled runtime's per-call globals (reset.go);
	// nil: the runtime is not locked.
	slots   []string
	logs    []string
	logSize int
	maxLog  int
	logCut  bool
	// readOnly: ccf.kv writes throw (Call.ReadOnly).
	readOnly bool
	// cur is the request of the call (endpoint.go); reqBody the
	// request.body object of this runtime, whose methods read cur.
	cur     *Request
	reqBody *goja.Object
	// applyWrites is what ccf.rpc.setApplyWrites set (nil: not called).
	applyWrites *bool
	// claimsDigest is what ccf.rpc.setClaimsDigest set (nil: not called).
	claimsDigest []byte
	// kept are the modules a locked runtime evaluated once (kept.go);
	// used those the current call loaded; freeze freezes them.
	kept   map[string]*keptModule
	used   []*keptModule
	freeze goja.Callable
}

func (s *sandbox) run(ctx context.Context, l Limits, mod string, c Call) (res *Result, err error) {
	s.init(l)
	return s.call(ctx, l, mod, c)
}

// init creates the sandbox's runtime and its globals.
func (s *sandbox) init(l Limits) {
	s.rt = goja.New()
	s.rt.SetMaxCallStackSize(l.StackDepth)
	s.exports = map[string]*goja.Object{}
	s.loading = map[string]bool{}
	s.factories = map[string]goja.Callable{}
	s.install()
}

// call runs one call in the sandbox's runtime (a fresh one from run, or a
// pooled one from Pool.Run, whose modules stay loaded).
func (s *sandbox) call(ctx context.Context, l Limits, mod string, c Call) (res *Result, err error) {
	stop := jsrt.Watch(ctx, s.rt, l)
	defer stop()

	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				res, err = nil, callError(e)
				return
			}
			res, err = nil, &ScriptError{Message: fmt.Sprint(r)}
		}
	}()
	for name, g := range c.Globals {
		v, err := s.value(g)
		if err != nil {
			return nil, fmt.Errorf("appjs: global %s: %w", name, err)
		}
		if err := s.rt.Set(name, v); err != nil {
			return nil, fmt.Errorf("appjs: global %s: %w", name, err)
		}
	}
	exports, err := s.load(mod)
	if err != nil {
		return nil, callError(err)
	}
	var fn goja.Callable
	var ok bool
	if k := s.kept[mod]; k != nil && k.exports == exports {
		fn, ok = k.function(c.Function)
	} else {
		fn, ok = goja.AssertFunction(exports.Get(c.Function))
	}
	if !ok {
		return nil, &ScriptError{Message: fmt.Sprintf("%q is not an exported function of %s", c.Function, mod)}
	}
	args := make([]goja.Value, len(c.Args))
	for i, a := range c.Args {
		if args[i], err = s.value(a); err != nil {
			return nil, fmt.Errorf("appjs: argument %d: %w", i, err)
		}
	}
	v, err := fn(goja.Undefined(), args...)
	if err != nil {
		return nil, callError(err)
	}
	if p, ok := v.Export().(*goja.Promise); ok {
		switch p.State() {
		case goja.PromiseStateFulfilled:
			v = p.Result()
		case goja.PromiseStateRejected:
			return nil, (&ScriptError{}).with(p.Result())
		default:
			return nil, &ScriptError{Message: "the function returned a promise that did not settle"}
		}
	}
	if c.Response {
		resp, err := s.response(v)
		if err != nil {
			return nil, err
		}
		return &Result{Response: resp, ApplyWrites: s.applyWrites, ClaimsDigest: s.claimsDigest, Writes: s.tx.Writes(), Logs: s.logs, LogTruncated: s.logCut}, nil
	}
	out, err := s.stringify(v)
	if err != nil {
		return nil, err
	}
	return &Result{Value: out, Writes: s.tx.Writes(), Logs: s.logs, LogTruncated: s.logCut}, nil
}

// with returns a ScriptError for a thrown (or rejected) value v.
func (e *ScriptError) with(v goja.Value) *ScriptError {
	e.Message = valueMessage(v)
	return e
}

// valueMessage is the message of a thrown value: an Error's "Name: message",
// anything else as String(v).
func valueMessage(v goja.Value) string {
	if v == nil {
		return "undefined"
	}
	return v.String()
}

// callError turns what goja returned or panicked with into a call's error.
func callError(err error) error {
	if e := jsrt.Interrupted(err); e != nil {
		return fmt.Errorf("appjs: %w", e)
	}
	var ex *goja.Exception
	if errors.As(err, &ex) {
		se := &ScriptError{Stack: ex.String()}
		if ex.Value() != nil {
			return se.with(ex.Value())
		}
		return se
	}
	var se *ScriptError
	if errors.As(err, &se) {
		return se
	}
	return &ScriptError{Message: err.Error()}
}

// load runs module name (once per runtime) and returns its exports.
func (s *sandbox) load(name string) (*goja.Object, error) {
	if e, ok := s.exports[name]; ok {
		return e, nil
	}
	if s.loading[name] {
		return nil, &ScriptError{Message: fmt.Sprintf("import cycle through %q", name)}
	}
	prog, ok := s.prog.modules[name]
	if !ok {
		return nil, &ScriptError{Message: fmt.Sprintf("module %q not found", name)}
	}
	s.loading[name] = true
	defer delete(s.loading, name)
	if kp := s.prog.kept[name]; kp != nil && s.slots != nil {
		e, err := s.loadKept(name, kp)
		if err != nil {
			return nil, err
		}
		s.exports[name] = e
		return e, nil
	}
	factory := s.factories[name]
	if factory == nil {
		f, err := s.rt.RunProgram(prog)
		if err != nil {
			return nil, err
		}
		if factory, ok = goja.AssertFunction(f); !ok {
			return nil, &ScriptError{Message: name + ": not a module"}
		}
		s.factories[name] = factory
	}
	s.prog.evals.Add(1)
	v, err := factory(goja.Undefined(), s.importer(name))
	if err != nil {
		return nil, err
	}
	e, ok := v.(*goja.Object)
	if !ok {
		return nil, &ScriptError{Message: name + ": the module has no exports"}
	}
	s.exports[name] = e
	return e, nil
}

// importer is the __import function of module name: it loads a module
// the name imports.
func (s *sandbox) importer(name string) goja.Value {
	return s.rt.ToValue(func(c goja.FunctionCall) goja.Value {
		spec := c.Argument(0).String()
		target, ok := s.resolve(name, spec)
		if !ok {
			panic(s.rt.NewGoError(fmt.Errorf("%s: cannot find module %q", name, spec)))
		}
		e, err := s.load(target)
		if err != nil {
			panic(err)
		}
		return e
	})
}

// resolve finds the module spec names when imported from module from:
// relative to from's directory when spec starts with "./" or "../", else
// from the bundle's root; as given, then with ".js", then "/index.js".
func (s *sandbox) resolve(from, spec string) (string, bool) {
	base := spec
	if strings.HasPrefix(spec, "./") || strings.HasPrefix(spec, "../") {
		base = path.Join(path.Dir(from), spec)
	}
	base = normalise(base)
	for _, cand := range []string{base, base + ".js", base + "/index.js"} {
		if _, ok := s.prog.modules[cand]; ok {
			return cand, true
		}
	}
	return "", false
}

// value turns a Go argument into a JavaScript value (see Call.Args).
func (s *sandbox) value(a any) (goja.Value, error) {
	switch v := a.(type) {
	case nil:
		return goja.Null(), nil
	case json.RawMessage:
		return s.parse(v)
	case map[string]any:
		// A flat object of strings (a hook's context) is built directly;
		// anything else goes through JSON.
		o := s.rt.NewObject()
		for k, e := range v {
			str, ok := e.(string)
			if !ok {
				return s.viaJSON(v)
			}
			_ = o.Set(k, str)
		}
		return o, nil
	case *Request:
		return s.request(v), nil
	case []byte:
		return s.buf(v), nil
	case string, bool, int, int64, uint64, float64:
		return s.rt.ToValue(v), nil
	default:
		return s.viaJSON(v)
	}
}

func (s *sandbox) viaJSON(v any) (goja.Value, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return s.parse(b)
}

func (s *sandbox) parse(b []byte) (goja.Value, error) {
	parse, _ := goja.AssertFunction(s.rt.Get("JSON").ToObject(s.rt).Get("parse"))
	return parse(goja.Undefined(), s.rt.ToValue(string(b)))
}

// stringify is JSON.stringify(v): nil for undefined.
func (s *sandbox) stringify(v goja.Value) (json.RawMessage, error) {
	if v == nil || goja.IsUndefined(v) {
		return nil, nil
	}
	// Primitives are encoded here, without JSON.stringify.
	if _, isObj := v.(*goja.Object); !isObj {
		switch x := v.Export().(type) {
		case bool, string, int64:
			b, err := json.Marshal(x)
			if err == nil {
				return b, nil
			}
		case nil:
			return json.RawMessage("null"), nil
		}
	}
	str, _ := goja.AssertFunction(s.rt.Get("JSON").ToObject(s.rt).Get("stringify"))
	out, err := str(goja.Undefined(), v)
	if err != nil {
		se, _ := callError(err).(*ScriptError)
		if se == nil {
			return nil, callError(err)
		}
		se.Message = "the return value is not JSON-compatible: " + se.Message
		return nil, se
	}
	if goja.IsUndefined(out) {
		return nil, nil
	}
	return json.RawMessage(out.String()), nil
}

func (s *sandbox) throw(format string, args ...any) {
	panic(s.rt.NewGoError(fmt.Errorf(format, args...)))
}

func (s *sandbox) typeError(format string, args ...any) { jsrt.TypeError(s.rt, format, args...) }

// bytes reads an ArrayBuffer (or a typed array of bytes) argument.
func (s *sandbox) bytes(v goja.Value, what string) []byte { return jsrt.Bytes(s.rt, v, what) }

func (s *sandbox) buf(b []byte) goja.Value { return jsrt.Buf(s.rt, b) }

// install defines the globals ccf and console.
func (s *sandbox) install() {
	rt := s.rt
	// ccf and console are lazy objects: each function is created the first
	// time a call reads it, so a call pays only for what it uses (most
	// hooks read one or two; creating every native function up front was
	// two thirds of a trivial call).
	ccf := newLazy(s)
	ccf.lazy("strToBuf", func(c goja.FunctionCall) goja.Value {
		str, ok := c.Argument(0).Export().(string)
		if !ok {
			s.typeError("strToBuf: argument must be a string")
		}
		return s.buf([]byte(str))
	})
	ccf.lazy("bufToStr", func(c goja.FunctionCall) goja.Value {
		b := s.bytes(c.Argument(0), "bufToStr: argument")
		if !utf8.Valid(b) {
			s.typeError("bufToStr: buffer is not UTF-8")
		}
		return rt.ToValue(string(b))
	})
	ccf.lazy("jsonCompatibleToBuf", func(c goja.FunctionCall) goja.Value {
		out, err := s.stringify(c.Argument(0))
		if err != nil {
			s.typeError("jsonCompatibleToBuf: %v", err)
		}
		if out == nil {
			s.typeError("jsonCompatibleToBuf: value is not JSON-compatible")
		}
		return s.buf(out)
	})
	ccf.lazy("bufToJsonCompatible", func(c goja.FunctionCall) goja.Value {
		b := s.bytes(c.Argument(0), "bufToJsonCompatible: argument")
		v, err := s.parse(b)
		if err != nil {
			panic(err)
		}
		return v
	})
	ccf.lazyValue("kv", func() goja.Value { return rt.NewDynamicObject(kvObject{s}) })
	// installCrypto's properties (cryptoProps) are made together, on the
	// first read of any of them.
	for _, name := range cryptoProps {
		ccf.lazyValue(name, func() goja.Value {
			if s.cryptoHolder == nil {
				s.cryptoHolder = rt.NewObject()
				s.installCrypto(s.cryptoHolder)
			}
			return s.cryptoHolder.Get(name)
		})
	}
	ccf.seal()
	s.ccf = ccf
	_ = rt.Set("ccf", rt.NewDynamicObject(ccf))

	console := newLazy(s)
	for _, name := range []string{"log", "info", "warn", "error", "debug"} {
		console.lazy(name, func(c goja.FunctionCall) goja.Value {
			parts := make([]string, len(c.Arguments))
			for i, a := range c.Arguments {
				parts[i] = a.String()
			}
			s.log(strings.Join(parts, " "))
			return goja.Undefined()
		})
	}
	console.seal()
	s.console = console
	_ = rt.Set("console", rt.NewDynamicObject(console))
}

// cryptoProps are the properties installCrypto sets on ccf.
var cryptoProps = append([]string{"crypto", "pemToId", "rpc"}, deprecatedCryptoAliases...)

// lazyObject is a goja.DynamicObject whose properties are made on first
// read; properties set on it (by the sandbox or by user code) are plain
// values. It holds a handful of properties, so slices beat maps.
type lazyObject struct {
	s     *sandbox
	props []lazyProp
	// initial is props as installed (seal), dirty whether props differ
	// from it (a property made, set or deleted): restore goes back.
	initial []lazyProp
	dirty   bool
}

// seal records the installed properties for restore.
func (o *lazyObject) seal() { o.initial = slices.Clone(o.props) }

// restore drops every property made, set or deleted since seal, so that
// the next read makes a new one (a pooled runtime's next call sees none of
// this call's objects).
func (o *lazyObject) restore() {
	if o.dirty {
		o.props = append(o.props[:0], o.initial...)
		o.dirty = false
	}
}

type lazyProp struct {
	name  string
	make  func() goja.Value // nil once made or set
	value goja.Value
}

func newLazy(s *sandbox) *lazyObject {
	return &lazyObject{s: s, props: make([]lazyProp, 0, 8)}
}

// lazy adds a native function property.
func (o *lazyObject) lazy(name string, f func(goja.FunctionCall) goja.Value) {
	o.lazyValue(name, func() goja.Value { return o.s.rt.ToValue(f) })
}

// lazyValue adds a property whose value make returns on first read.
func (o *lazyObject) lazyValue(name string, make func() goja.Value) {
	if p := o.find(name); p != nil {
		p.make, p.value = make, nil
		return
	}
	o.props = append(o.props, lazyProp{name: name, make: make})
}

func (o *lazyObject) find(name string) *lazyProp {
	for i := range o.props {
		if o.props[i].name == name {
			return &o.props[i]
		}
	}
	return nil
}

func (o *lazyObject) Get(name string) goja.Value {
	p := o.find(name)
	if p == nil {
		return nil
	}
	if p.make != nil {
		p.value, p.make = p.make(), nil
		o.dirty = true
	}
	return p.value
}

func (o *lazyObject) Set(name string, v goja.Value) bool {
	o.dirty = true
	if p := o.find(name); p != nil {
		p.make, p.value = nil, v
		return true
	}
	o.props = append(o.props, lazyProp{name: name, value: v})
	return true
}

func (o *lazyObject) Has(name string) bool { return o.find(name) != nil }

func (o *lazyObject) Delete(name string) bool {
	o.dirty = true
	for i := range o.props {
		if o.props[i].name == name {
			o.props = append(o.props[:i:i], o.props[i+1:]...)
			break
		}
	}
	return true
}

func (o *lazyObject) Keys() []string {
	keys := make([]string, len(o.props))
	for i, p := range o.props {
		keys[i] = p.name
	}
	return keys
}

// log records one line of console output, within maxLog bytes.
func (s *sandbox) log(line string) {
	if s.logCut {
		return
	}
	if s.logSize+len(line) > s.maxLog {
		s.logCut = true
		return
	}
	s.logSize += len(line)
	s.logs = append(s.logs, line)
}

// kvObject is ccf.kv: any property name is a table.
type kvObject struct{ s *sandbox }

func (k kvObject) Get(name string) goja.Value  { return k.s.table(name) }
func (k kvObject) Set(string, goja.Value) bool { return false }
func (k kvObject) Has(string) bool             { return true }
func (k kvObject) Delete(string) bool          { return false }
func (k kvObject) Keys() []string              { return nil }

// table returns the object for ccf.kv[name], with CCF's KvMap methods:
// get, has, set, delete, clear, forEach and size. A name that is not an
// application table (AppTable) throws on first use.
func (s *sandbox) table(name string) goja.Value {
	if o, ok := s.maps[name]; ok {
		return o
	}
	check := func() {
		if !AppTable(name) {
			s.throw("ccf.kv[%q]: not an application table (names starting with public:ccf., ccf., public:ledgerd. or ledgerd. are reserved)", clip(name))
		}
	}
	o := jsrt.NewKVMap(s.rt, jsrt.Table{
		CheckRead:  check,
		CheckWrite: func() { check(); s.checkWritable(name) },
		Get:        func(key []byte) ([]byte, bool) { return s.tx.Get(name, key) },
		Set:        func(key, value []byte) { s.tx.Set(name, key, value) },
		Delete:     func(key []byte) { s.tx.Delete(name, key) },
		ForEach:    func(fn func(k, v []byte) bool) { s.tx.ForEach(name, fn) },
	})
	s.maps[name] = o
	return o
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
