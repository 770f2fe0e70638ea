package appjs

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/dop251/goja"
	"github.com/ledgerd/ledgerd/internal/jsrt"
)

// Limits bound every call (time, live-heap growth, call depth); see
// jsrt.Limits for exactly what is bounded. A zero field takes its default
// (1 s, 100 MiB, depth 1024).
type Limits = jsrt.Limits

// Errors of a call stopped by a limit or its context (test with errors.Is).
var (
	ErrTimeLimit   = jsrt.ErrTimeLimit
	ErrMemoryLimit = jsrt.ErrMemoryLimit
	ErrStackLimit  = jsrt.ErrStackLimit
	ErrCanceled    = jsrt.ErrCanceled
)

// ScriptError is a JavaScript exception thrown by user code (Message is the
// thrown value as a string: for an Error, "Error: message"; Stack adds
// where), or a call that could not be made (no such exported function, a
// return value that is not JSON-compatible).
type ScriptError struct {
	Message string
	Stack   string
}

func (e *ScriptError) Error() string { return e.Message }

// Module is one ES module of a program: its name (a path such as
// "endpoints/app.js"; imports between modules are resolved against it) and
// its source text.
type Module struct {
	Name   string
	Source string
}

// Program is compiled user code: one or several ES modules. It is
// immutable and safe for concurrent use; every call runs in a fresh
// runtime.
type Program struct {
	modules map[string]*goja.Program // by normalised name
	// kept are the variants of the modules that a locked runtime
	// evaluates once (kept.go), by name.
	kept   map[string]*goja.Program
	first  string // the first module's name: the default entry
	digest [32]byte
	evals  atomic.Int64 // module evaluations (tests)
}

// Compile compiles modules (at least one; names unique). Nothing runs:
// a module's top-level code runs in each call, when it is first imported.
func Compile(modules ...Module) (*Program, error) {
	if len(modules) == 0 {
		return nil, errors.New("appjs: no module")
	}
	p := &Program{modules: map[string]*goja.Program{}}
	h := sha256.New()
	for i, m := range modules {
		name := normalise(m.Name)
		if name == "" {
			return nil, fmt.Errorf("appjs: module %d has no name", i)
		}
		if _, dup := p.modules[name]; dup {
			return nil, fmt.Errorf("appjs: module %q given twice", name)
		}
		script, err := jsrt.ModuleScript(m.Source, jsrt.ModuleOptions{Imports: true, What: "a module"})
		if err != nil {
			return nil, &ScriptError{Message: fmt.Sprintf("%s: %v", name, err)}
		}
		prog, err := goja.Compile(name, script, true)
		if err != nil {
			return nil, &ScriptError{Message: fmt.Sprintf("%s: %v", name, err)}
		}
		p.modules[name] = prog
		variant, err := keptVariant(m.Source, script)
		if err != nil {
			return nil, &ScriptError{Message: fmt.Sprintf("%s: %v", name, err)}
		}
		if variant != "" {
			kp, err := goja.Compile(name, variant, true)
			if err != nil {
				return nil, &ScriptError{Message: fmt.Sprintf("%s: %v", name, err)}
			}
			if p.kept == nil {
				p.kept = map[string]*goja.Program{}
			}
			p.kept[name] = kp
		}
		if i == 0 {
			p.first = name
		}
		fmt.Fprintf(h, "%d:%s\x00%d:%s\x00", len(name), name, len(m.Source), m.Source)
	}
	copy(p.digest[:], h.Sum(nil))
	return p, nil
}

// normalise makes a module name canonical: slash-separated, cleaned, no
// leading "/" or "./".
func normalise(name string) string {
	name = strings.TrimLeft(path.Clean("/"+name), "/")
	if name == "." {
		return ""
	}
	return name
}

// Modules returns the names of the program's modules, the entry first.
func (p *Program) Modules() []string {
	out := []string{p.first}
	for n := range p.modules {
		if n != p.first {
			out = append(out, n)
		}
	}
	return out
}

// Reader is the state ccf.kv reads: the node's latest executed state of
// the application's tables.
type Reader interface {
	// Get returns the value of key in table and whether it is present.
	Get(table string, key []byte) ([]byte, bool)
	// ForEach calls fn for every entry of table until fn returns false.
	ForEach(table string, fn func(key, value []byte) bool)
}

// Write is one write of a call's write set: a Set, or a Delete when
// Deleted.
type Write = jsrt.Write

// Call is one call into a program.
type Call struct {
	// Module is the module whose export is called; "" is the program's
	// first module.
	Module string
	// Function is the exported function's name.
	Function string
	// Args are the arguments, each turned into a JavaScript value:
	// json.RawMessage is parsed as JSON; []byte becomes an ArrayBuffer;
	// string, bool, numbers and nil are themselves; anything else is
	// encoded with encoding/json and parsed.
	Args []any
	// Globals are global variables defined before the modules run, each
	// value converted as an argument is (e.g. a hook's context).
	Globals map[string]any
	// State is what ccf.kv reads (nil: every table is empty).
	State Reader
	// Limits bound the call.
	Limits Limits
	// MaxLog bounds the captured console output in bytes (default 64 KiB);
	// output beyond it is dropped and Result.LogTruncated set.
	MaxLog int
	// ReadOnly makes ccf.kv writes throw (a readonly endpoint).
	ReadOnly bool
	// Reuse, with Pool.Run, is an interpreter_reuse key: calls with the
	// same key share runtimes that keep their module state (see Pool).
	// "" (the default): every call sees a fresh runtime.
	Reuse string
	// Response reads the return value as CCF's response object
	// (endpoint.go) into Result.Response instead of Result.Value.
	Response bool
}

// Result is what a successful call returned.
type Result struct {
	// Value is the return value as JSON (JSON.stringify of it), or nil when
	// the function returned undefined (or a function or symbol).
	Value json.RawMessage
	// Writes is the call's ccf.kv write set, ordered by table then key.
	Writes []Write
	// Logs is what the call printed with console.log and friends, one
	// entry per call of them.
	Logs         []string
	LogTruncated bool
	// Response is the response object, with Call.Response.
	Response *Response
	// ApplyWrites is what the call set with ccf.rpc.setApplyWrites (nil
	// if it did not call it): whether its writes apply whatever its
	// response's status.
	ApplyWrites *bool
	// ClaimsDigest is what the call set with ccf.rpc.setClaimsDigest (32
	// bytes; nil if it did not call it): the claims digest of the
	// transaction of its writes.
	ClaimsDigest []byte
}

// DefaultMaxLog is Call.MaxLog's default.
const DefaultMaxLog = 64 << 10

// Run calls c.Function, exported by c.Module, with c.Args in a fresh
// runtime under c.Limits. A call that throws, is stopped by a limit or
// returns a value JSON cannot encode returns an error and no writes: its
// ccf.kv writes are discarded. A limit's error wraps ErrTimeLimit,
// ErrMemoryLimit, ErrStackLimit or ErrCanceled; a thrown exception is a
// *ScriptError.
func (p *Program) Run(ctx context.Context, c Call) (*Result, error) {
	mod := p.first
	if c.Module != "" {
		mod = normalise(c.Module)
		if _, ok := p.modules[mod]; !ok {
			return nil, &ScriptError{Message: fmt.Sprintf("module %q not found", c.Module)}
		}
	}
	if c.MaxLog <= 0 {
		c.MaxLog = DefaultMaxLog
	}
	l := c.Limits.WithDefaults()
	s := &sandbox{prog: p, state: c.State, maxLog: c.MaxLog, maps: map[string]*goja.Object{}, readOnly: c.ReadOnly}
	s.tx = jsrt.NewTx(readOnly{c.State})
	var res *Result
	var err error
	onWorker(func() { res, err = s.run(ctx, l, mod, c) })
	if errors.Is(err, ErrMemoryLimit) {
		// Collect the failed call's heap now, so that it does not count in
		// the baseline of the next call.
		s.rt, s.maps, s.exports = nil, nil, nil
		runtime.GC()
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

// readOnly is a jsrt.KV over a Reader that never writes (a Tx over it is
// never committed).
type readOnly struct{ r Reader }

func (k readOnly) Get(table string, key []byte) ([]byte, bool) {
	if k.r == nil {
		return nil, false
	}
	return k.r.Get(table, key)
}
func (k readOnly) ForEach(table string, fn func(key, value []byte) bool) {
	if k.r != nil {
		k.r.ForEach(table, fn)
	}
}
func (readOnly) Set(string, []byte, []byte) { panic("appjs: write to the read-only base") }
func (readOnly) Delete(string, []byte)      { panic("appjs: write to the read-only base") }

// Cache holds compiled programs by a caller's key (e.g. a function id and
// the digest of its code), so that repeated calls compile once. It is
// bounded: when full it starts over. Safe for concurrent use.
type Cache struct {
	mu    sync.Mutex
	max   int
	progs map[string]*Program
}

// NewCache returns a cache of at most max programs (default 1024).
func NewCache(max int) *Cache {
	if max <= 0 {
		max = 1024
	}
	return &Cache{max: max}
}

// Get returns the program cached under key, compiling modules() and
// caching the result when there is none. Errors are not cached.
func (c *Cache) Get(key string, modules func() []Module) (*Program, error) {
	c.mu.Lock()
	p, ok := c.progs[key]
	c.mu.Unlock()
	if ok {
		return p, nil
	}
	p, err := Compile(modules()...)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.progs == nil || len(c.progs) >= c.max {
		c.progs = map[string]*Program{}
	}
	c.progs[key] = p
	return p, nil
}

// Forget drops key from the cache.
func (c *Cache) Forget(key string) {
	c.mu.Lock()
	delete(c.progs, key)
	c.mu.Unlock()
}
