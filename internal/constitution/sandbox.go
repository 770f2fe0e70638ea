package constitution

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"unicode/utf8"

	"github.com/dop251/goja"
	"github.com/ledgerd/ledgerd/internal/jsrt"
)

// kvMode is what a call may do with ccf.kv.
type kvMode int

const (
	modeNone  kvMode = iota // validate and module checks: no ccf.kv
	modeRead                // resolve, ballots: read public tables
	modeWrite               // apply: read public tables, write governance tables
)

// Effect is a request apply made of the node through ccf.node.* or the JWT
// key functions, recorded in call order for the caller to carry out in the
// same transaction once apply has succeeded. Name is the JavaScript name
// ("node.triggerLedgerRekey", "setJwtPublicSigningKeys", ...); Args are
// the arguments as goja exports them (ArrayBuffers as []byte).
type Effect struct {
	Name string
	Args []any
}

// Host is what an apply call needs from the node for the ccf.network.*
// functions whose result the constitution uses. Without a Host (see
// Constitution.WithHost) they throw.
type Host interface {
	// GenerateNetworkCertificate renews the service certificate.
	GenerateNetworkCertificate(validFrom string, validityDays int64) (string, error)
	// GenerateEndorsedCertificate endorses a node's CSR with the service key.
	GenerateEndorsedCertificate(csrPEM, validFrom string, validityDays int64) (string, error)
	// LatestLedgerSecretSeqno is the seqno the latest ledger secret applies from.
	LatestLedgerSecretSeqno() (int64, error)
}

// effectFuncs are the functions that record an Effect, by the object they
// hang on ("" for ccf itself).
var effectFuncs = map[string][]string{
	"node": {"triggerLedgerRekey", "triggerRecoverySharesRefresh", "transitionServiceToOpen",
		"triggerSnapshot", "triggerLedgerChunk", "triggerACMERefresh"},
	"": {"setJwtPublicSigningKeys", "removeJwtPublicSigningKeys", "refreshAppBytecodeCache"},
}

// sandbox is one call's runtime and what its ccf globals reach.
type sandbox struct {
	rt      *goja.Runtime
	kv      KV
	mode    kvMode
	host    Host
	effects []Effect
	maps    map[string]*goja.Object
}

func newSandbox(kv KV, mode kvMode, host Host) *sandbox {
	return &sandbox{kv: kv, mode: mode, host: host, maps: map[string]*goja.Object{}}
}

// run runs prog (a module script) in a fresh runtime under limits and calls
// body with its exports. Everything that can run JavaScript, body's reading
// of returned values included, happens while the watchdog watches.
func (s *sandbox) run(ctx context.Context, prog *goja.Program, l Limits, fn string, body func(exports *goja.Object) error) error {
	err := s.runIn(ctx, prog, l, fn, body)
	if errors.Is(err, ErrMemoryLimit) {
		// Collect the failed call's heap now, so that it does not count in
		// the baseline of the next call.
		s.rt, s.maps = nil, nil
		runtime.GC()
	}
	return err
}

func (s *sandbox) runIn(ctx context.Context, prog *goja.Program, l Limits, fn string, body func(exports *goja.Object) error) (err error) {
	s.rt = goja.New()
	s.rt.SetMaxCallStackSize(l.StackDepth)
	if err := s.install(); err != nil {
		return fmt.Errorf("constitution: installing ccf globals: %w", err)
	}
	stop := watch(ctx, s.rt, l)
	defer stop()
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				err = callError(fn, e)
				return
			}
			err = &ScriptError{Func: fn, Message: fmt.Sprint(r)}
		}
	}()
	v, err := s.rt.RunProgram(prog)
	if err != nil {
		return callError("module", err)
	}
	exports, ok := v.(*goja.Object)
	if !ok {
		return &ScriptError{Func: "module", Message: "the module has no exports"}
	}
	if err := body(exports); err != nil {
		return callError(fn, err)
	}
	return nil
}

// call calls the exported function name with args.
func (s *sandbox) call(exports *goja.Object, name string, args ...goja.Value) (goja.Value, error) {
	f, ok := goja.AssertFunction(exports.Get(name))
	if !ok {
		return nil, &ScriptError{Func: name, Message: "not an exported function"}
	}
	return f(goja.Undefined(), args...)
}

// throw throws a JavaScript Error with msg.
func (s *sandbox) throw(format string, args ...any) {
	panic(s.rt.NewGoError(fmt.Errorf(format, args...)))
}

func (s *sandbox) typeError(format string, args ...any) { jsrt.TypeError(s.rt, format, args...) }

// bytes reads an ArrayBuffer (or a typed array of bytes) argument.
func (s *sandbox) bytes(v goja.Value, what string) []byte { return jsrt.Bytes(s.rt, v, what) }

func (s *sandbox) buf(b []byte) goja.Value { return jsrt.Buf(s.rt, b) }

// install defines the globals: ccf (see the package documentation) and a
// console whose functions do nothing (a constitution's logging has nowhere
// safe to go: it could carry member data).
func (s *sandbox) install() error {
	rt := s.rt
	ccf := rt.NewObject()
	set := func(o *goja.Object, name string, f func(goja.FunctionCall) goja.Value) {
		_ = o.Set(name, f)
	}
	set(ccf, "strToBuf", func(c goja.FunctionCall) goja.Value {
		str, ok := c.Argument(0).Export().(string)
		if !ok {
			s.typeError("strToBuf: argument must be a string")
		}
		return s.buf([]byte(str))
	})
	set(ccf, "bufToStr", func(c goja.FunctionCall) goja.Value {
		b := s.bytes(c.Argument(0), "bufToStr: argument")
		if !utf8.Valid(b) {
			s.typeError("bufToStr: buffer is not UTF-8")
		}
		return rt.ToValue(string(b))
	})
	set(ccf, "pemToId", func(c goja.FunctionCall) goja.Value {
		id, err := pemToID(c.Argument(0).String())
		if err != nil {
			s.throw("pemToId: %v", err)
		}
		return rt.ToValue(id)
	})

	crypto := rt.NewObject()
	set(crypto, "isValidX509CertBundle", func(c goja.FunctionCall) goja.Value {
		str, ok := c.Argument(0).Export().(string)
		return rt.ToValue(ok && validCertBundle(str))
	})
	set(crypto, "digest", func(c goja.FunctionCall) goja.Value {
		if alg := c.Argument(0).String(); alg != "SHA-256" {
			s.throw("digest: unsupported algorithm %q (only SHA-256)", alg)
		}
		sum := sha256.Sum256(s.bytes(c.Argument(1), "digest: data"))
		return s.buf(sum[:])
	})
	_ = ccf.Set("crypto", crypto)

	node := rt.NewObject()
	_ = ccf.Set("node", node)
	for on, names := range effectFuncs {
		obj, prefix := ccf, ""
		if on != "" {
			obj, prefix = node, on+"."
		}
		for _, name := range names {
			full := prefix + name
			set(obj, name, func(c goja.FunctionCall) goja.Value {
				if s.mode != modeWrite {
					s.throw("ccf.%s is only available in apply", full)
				}
				args := make([]any, len(c.Arguments))
				for i, a := range c.Arguments {
					args[i] = a.Export()
					if b, ok := args[i].(goja.ArrayBuffer); ok {
						args[i] = append([]byte(nil), b.Bytes()...)
					}
				}
				s.effects = append(s.effects, Effect{Name: full, Args: args})
				return goja.Undefined()
			})
		}
	}

	network := rt.NewObject()
	hostOnly := func(name string) Host {
		if s.mode != modeWrite {
			s.throw("ccf.network.%s is only available in apply", name)
		}
		if s.host == nil {
			s.throw("ccf.network.%s is not available: no node attached to this constitution", name)
		}
		return s.host
	}
	set(network, "generateNetworkCertificate", func(c goja.FunctionCall) goja.Value {
		h := hostOnly("generateNetworkCertificate")
		cert, err := h.GenerateNetworkCertificate(c.Argument(0).String(), c.Argument(1).ToInteger())
		if err != nil {
			s.throw("generateNetworkCertificate: %v", err)
		}
		return rt.ToValue(cert)
	})
	set(network, "generateEndorsedCertificate", func(c goja.FunctionCall) goja.Value {
		h := hostOnly("generateEndorsedCertificate")
		cert, err := h.GenerateEndorsedCertificate(c.Argument(0).String(), c.Argument(1).String(), c.Argument(2).ToInteger())
		if err != nil {
			s.throw("generateEndorsedCertificate: %v", err)
		}
		return rt.ToValue(cert)
	})
	set(network, "getLatestLedgerSecretSeqno", func(c goja.FunctionCall) goja.Value {
		seqno, err := hostOnly("getLatestLedgerSecretSeqno").LatestLedgerSecretSeqno()
		if err != nil {
			s.throw("getLatestLedgerSecretSeqno: %v", err)
		}
		return rt.ToValue(seqno)
	})
	_ = ccf.Set("network", network)

	_ = ccf.Set("kv", rt.NewDynamicObject(kvObject{s}))
	if err := rt.Set("ccf", ccf); err != nil {
		return err
	}
	console := rt.NewObject()
	for _, name := range []string{"log", "info", "warn", "error", "debug"} {
		set(console, name, func(goja.FunctionCall) goja.Value { return goja.Undefined() })
	}
	if err := rt.Set("console", console); err != nil {
		return err
	}
	// The JSON helpers are JSON.stringify/parse over strToBuf/bufToStr, as
	// CCF defines them; written in JavaScript so that they use this
	// runtime's JSON.
	_, err := rt.RunProgram(jsonHelpers)
	return err
}

// jsonHelpers defines ccf.jsonCompatibleToBuf and ccf.bufToJsonCompatible,
// compiled once (every call's runtime runs it).
var jsonHelpers = goja.MustCompile("ccf-json.js", `(function () {
  "use strict";
  const strToBuf = ccf.strToBuf, bufToStr = ccf.bufToStr;
  ccf.jsonCompatibleToBuf = function (v) {
    const s = JSON.stringify(v);
    if (s === undefined) throw new TypeError("jsonCompatibleToBuf: value is not JSON-compatible");
    return strToBuf(s);
  };
  ccf.bufToJsonCompatible = function (b) { return JSON.parse(bufToStr(b)); };
})();`, true)

// kvObject is ccf.kv: any property name is a table.
type kvObject struct{ s *sandbox }

func (k kvObject) Get(name string) goja.Value { return k.s.table(name) }
func (k kvObject) Set(string, goja.Value) bool {
	return false
}
func (k kvObject) Has(string) bool    { return true }
func (k kvObject) Delete(string) bool { return false }
func (k kvObject) Keys() []string     { return nil }

// writable reports whether apply may write table: CCF's governance tables
// and ledgerd's own public tables (its users), but not ledgerd's internal
// ones.
func writable(table string) bool {
	return strings.HasPrefix(table, "public:ccf.gov.") ||
		(strings.HasPrefix(table, "public:ledgerd.") && !strings.HasPrefix(table, "public:ledgerd.internal."))
}

// table returns the object for ccf.kv[name], with CCF's map methods: get,
// has, set, delete, clear, forEach and size.
func (s *sandbox) table(name string) goja.Value {
	if o, ok := s.maps[name]; ok {
		return o
	}
	readable := func() {
		switch {
		case s.mode == modeNone:
			s.throw("ccf.kv is not available here (validate must not read the KV)")
		case !strings.HasPrefix(name, "public:"):
			s.throw("ccf.kv[%q]: only public tables can be read", name)
		}
	}
	o := jsrt.NewKVMap(s.rt, jsrt.Table{
		CheckRead: readable,
		CheckWrite: func() {
			readable()
			if s.mode != modeWrite {
				s.throw("ccf.kv[%q] is read-only here (only apply writes)", name)
			}
			if !writable(name) {
				s.throw("ccf.kv[%q] cannot be written by governance", name)
			}
		},
		Get: func(key []byte) ([]byte, bool) {
			if s.kv == nil {
				return nil, false
			}
			return s.kv.Get(name, key)
		},
		Set:    func(key, value []byte) { s.kv.Set(name, key, value) },
		Delete: func(key []byte) { s.kv.Delete(name, key) },
		// Sorted by key (a Tx over the KV), so the order is deterministic.
		ForEach: func(fn func(k, v []byte) bool) {
			if s.kv != nil {
				NewTx(s.kv).ForEach(name, fn)
			}
		},
	})
	s.maps[name] = o
	return o
}

// pemToID is CCF's pemToId: the lowercase hex SHA-256 of the DER of the
// first certificate in a PEM text.
func pemToID(text string) (string, error) {
	block, _ := pem.Decode([]byte(text))
	if block == nil || block.Type != "CERTIFICATE" {
		return "", fmt.Errorf("not a PEM certificate")
	}
	if _, err := x509.ParseCertificate(block.Bytes); err != nil {
		return "", err
	}
	sum := sha256.Sum256(block.Bytes)
	return hex.EncodeToString(sum[:]), nil
}

// validCertBundle reports whether text is one or more PEM certificates that
// parse as X.509 and nothing else but white space.
func validCertBundle(text string) bool {
	rest := []byte(text)
	n := 0
	for {
		block, r := pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return false
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return false
		}
		n++
		rest = r
	}
	return n > 0 && strings.TrimSpace(string(rest)) == ""
}
