package appjs

import (
	"errors"
	"strings"

	"github.com/dop251/goja"
	"github.com/dop251/goja/ast"
	"github.com/dop251/goja/parser"
	"github.com/dop251/goja/token"
	"github.com/ledgerd/ledgerd/internal/jsrt"
)

// Kept modules: a pooled, reset runtime (Pool without a reuse key) must
// show every call a fresh module, so it evaluates the module's top-level
// code again in every call (reset.go). Most user code (a hook, a query
// function, an endpoint's module) only declares at its top level:
// functions, and variables holding a primitive literal. Evaluating such a
// module again gives the same bindings as before, unless a call changed
// them; so a locked runtime evaluates it once and keeps its exports,
// provided that
//
//   - no call can change what the module's functions are: the top-level
//     functions, their prototype objects, the module's exports object and
//     its getters, and the __import function are frozen when the module
//     is first evaluated (a call that tries to change one gets a
//     TypeError, and is run again on a fresh runtime, as for the
//     intrinsics: reset.go);
//   - no call leaves a binding changed: after every call that used the
//     module, each top-level binding (functions, variables, __import) is
//     compared (Object.is) with its value after the first evaluation; if
//     one differs (an assignment, a ++ in a function, an eval), the kept
//     exports are dropped and the next call evaluates the module again.
//
// A module with any other top-level statement (a call, an object or
// array, a class, an import, an arrow or function expression) is
// evaluated in every call as before. What user code can observe of the
// difference: that its functions are frozen (Object.isFrozen), as the
// intrinsics are.

// keepPrefix starts the name of the check's parameter; a module that
// declares a name with it is not kept.
const keepPrefix = "__ledgerd_"

// keptVariant returns the script of module src that returns, besides its
// exports, the snapshot of its top-level bindings (an array) and the
// function that checks them against it, or
// "" if the module's top level does more than declare (see above). script
// is src as ModuleScript made it.
func keptVariant(src, script string) (string, error) {
	names, ok := declarationsOnly(script)
	if !ok {
		return "", nil
	}
	names = append(names, "__import")
	// Each binding is the snapshot's value: === and, for a number, the
	// same sign of zero (Object.is without a call; a snapshot is never
	// NaN, which no literal is).
	const snap = keepPrefix + "s"
	var check strings.Builder
	for i, n := range names {
		if i > 0 {
			check.WriteString(" && ")
		}
		v := snap + "[" + itoa(i) + "]"
		check.WriteString("(" + n + " === " + v + ` && (typeof ` + n + ` !== "number" || 1 / ` + n + " === 1 / " + v + "))")
	}
	extra := "((" + snap + ") => [" + snap + ", () => " + check.String() + "])([" + strings.Join(names, ", ") + "])"
	return jsrt.ModuleScript(src, jsrt.ModuleOptions{Imports: true, What: "a module", Extra: extra})
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// declarationsOnly reports whether the module body of script (the
// function ModuleScript wraps it in) has only declarations at its top
// level: function declarations, and var, let or const bindings of plain
// names to nothing or a primitive literal (and directives and empty
// statements); and returns the names they declare.
func declarationsOnly(script string) ([]string, bool) {
	prog, err := parser.ParseFile(nil, "", script, 0)
	if err != nil || len(prog.Body) != 1 {
		return nil, false
	}
	es, ok := prog.Body[0].(*ast.ExpressionStatement)
	if !ok {
		return nil, false
	}
	fn, ok := es.Expression.(*ast.FunctionLiteral)
	if !ok || fn.Body == nil || len(fn.Body.List) == 0 {
		return nil, false
	}
	body := fn.Body.List
	if _, ok := body[len(body)-1].(*ast.ReturnStatement); !ok {
		return nil, false
	}
	var names []string
	seen := map[string]bool{"__import": true}
	add := func(n string) bool {
		if strings.HasPrefix(n, keepPrefix) {
			return false
		}
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
		return true
	}
	bindings := func(list []*ast.Binding) bool {
		for _, b := range list {
			id, ok := b.Target.(*ast.Identifier)
			if !ok || !primitiveLiteral(b.Initializer) || !add(id.Name.String()) {
				return false
			}
		}
		return true
	}
	for _, st := range body[:len(body)-1] {
		switch st := st.(type) {
		case *ast.FunctionDeclaration:
			if st.Function.Name == nil || !add(st.Function.Name.Name.String()) {
				return nil, false
			}
		case *ast.VariableStatement:
			if !bindings(st.List) {
				return nil, false
			}
		case *ast.LexicalDeclaration:
			if !bindings(st.List) {
				return nil, false
			}
		case *ast.EmptyStatement:
		case *ast.ExpressionStatement:
			if _, ok := st.Expression.(*ast.StringLiteral); !ok {
				return nil, false
			}
		default:
			return nil, false
		}
	}
	return names, true
}

// primitiveLiteral reports whether e is absent or a string, number,
// boolean or null literal, or a signed number literal.
func primitiveLiteral(e ast.Expression) bool {
	switch e := e.(type) {
	case nil, *ast.StringLiteral, *ast.NumberLiteral, *ast.BooleanLiteral, *ast.NullLiteral:
		return true
	case *ast.UnaryExpression:
		_, num := e.Operand.(*ast.NumberLiteral)
		return num && !e.Postfix && (e.Operator == token.MINUS || e.Operator == token.PLUS)
	}
	return false
}

// keptModule is a module evaluated once in a locked runtime.
type keptModule struct {
	name    string
	exports *goja.Object
	check   goja.Callable // whether the bindings are those after the first evaluation
	// funcs are the exported functions called so far: while the module
	// is kept, its bindings, and so its exports, are those of its first
	// evaluation.
	funcs map[string]goja.Callable
}

// function returns the exported function name of a kept module.
func (k *keptModule) function(name string) (goja.Callable, bool) {
	if f, ok := k.funcs[name]; ok {
		return f, true
	}
	f, ok := goja.AssertFunction(k.exports.Get(name))
	if ok {
		if k.funcs == nil {
			k.funcs = map[string]goja.Callable{}
		}
		k.funcs[name] = f
	}
	return f, ok
}

// freezeScript freezes what a kept module's calls could change besides
// its bindings: the exports object and its getters, and every function
// among the bindings (with its prototype object). It runs in the global
// scope, whose Object and Reflect are the locked intrinsics.
const freezeScript = `(function (exports, values) {
  "use strict";
  const freeze = Object.freeze, desc = Object.getOwnPropertyDescriptor, keys = Reflect.ownKeys(exports);
  for (let i = 0; i < keys.length; i++) {
    const d = desc(exports, keys[i]);
    if (d.get !== undefined) freeze(d.get);
    if (d.set !== undefined) freeze(d.set);
  }
  freeze(exports);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v === "function") {
      freeze(v);
      const p = desc(v, "prototype");
      if (p !== undefined && typeof p.value === "object" && p.value !== null) freeze(p.value);
    }
  }
})`

var freezeProgram = goja.MustCompile("freeze.js", freezeScript, true)

// loadKept returns the exports of module name, whose kept variant is
// prog, in a locked runtime: those kept from an earlier call, or those of
// evaluating it now (then kept).
func (s *sandbox) loadKept(name string, prog *goja.Program) (*goja.Object, error) {
	if k := s.kept[name]; k != nil {
		s.used = append(s.used, k)
		return k.exports, nil
	}
	if s.freeze == nil {
		f, err := s.rt.RunProgram(freezeProgram)
		if err != nil {
			return nil, err
		}
		fn, ok := goja.AssertFunction(f)
		if !ok {
			return nil, errors.New("appjs: freeze is not a function")
		}
		s.freeze = fn
	}
	f, err := s.rt.RunProgram(prog)
	if err != nil {
		return nil, err
	}
	factory, ok := goja.AssertFunction(f)
	if !ok {
		return nil, &ScriptError{Message: name + ": not a module"}
	}
	s.prog.evals.Add(1)
	v, err := factory(goja.Undefined(), s.importer(name))
	if err != nil {
		return nil, err
	}
	pair, ok := v.(*goja.Object)
	if !ok {
		return nil, &ScriptError{Message: name + ": the module has no exports"}
	}
	exports, ok := pair.Get("0").(*goja.Object)
	if !ok {
		return nil, &ScriptError{Message: name + ": the module has no exports"}
	}
	fns, _ := pair.Get("1").(*goja.Object)
	if fns == nil {
		return nil, errors.New("appjs: a kept module without its checks")
	}
	snap := fns.Get("0")
	check, ok := goja.AssertFunction(fns.Get("1"))
	if !ok {
		return nil, errors.New("appjs: a kept module without its checks")
	}
	if _, err := s.freeze(goja.Undefined(), exports, snap); err != nil {
		return nil, err
	}
	k := &keptModule{name: name, exports: exports, check: check}
	if s.kept == nil {
		s.kept = map[string]*keptModule{}
	}
	s.kept[name] = k
	s.used = append(s.used, k)
	return exports, nil
}

// checkKept drops, after a call, the kept modules the call used whose
// bindings it changed, so that the next call evaluates them again.
func (s *sandbox) checkKept() {
	for _, k := range s.used {
		if s.kept[k.name] != k {
			continue
		}
		same, err := k.check(goja.Undefined())
		if err != nil || !same.ToBoolean() {
			delete(s.kept, k.name)
		}
	}
	clear(s.used)
	s.used = s.used[:0]
}
