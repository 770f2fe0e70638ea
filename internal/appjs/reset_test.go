package appjs

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestPoolFresh: without a reuse key a pooled runtime is indistinguishable
// from a fresh one. Each case's first call leaves state behind (module
// variables, globals, intrinsics, the ccf objects); the second call, on the
// same pool, must not see it. Every case must reuse the pool's one runtime
// (or the test would pass without a pool); a call that changes an
// intrinsic, which the locked pooled runtime refuses, must be run again on
// a fresh runtime and succeed there (the first call returns 0).
func TestPoolFresh(t *testing.T) {
	p := compile(t, `
let n = 0;
export function count() { return ++n; }
export function clean() { return 1; }
export function setGlobal(s) { globalThis.secret = s; globalThis.x = s; return 0; }
export function getGlobal() { return [typeof secret, typeof globalThis.x]; }
export function replaceGlobal(s) { globalThis.JSON = { stringify: () => s, parse: () => s }; return 0; }
export function getJSON() { return JSON.stringify({a: 1}); }
export function deleteGlobal() { delete globalThis.Math; return 0; }
export function getMath() { return typeof Math; }
export function patchProto(s) { Array.prototype.leak = s; return 0; }
export function getProto() { return typeof [].leak; }
export function patchHidden(s) { Object.defineProperty(Object.prototype, "hidden", { value: s, enumerable: false, configurable: true }); return 0; }
export function getHidden() { return typeof ({}).hidden; }
export function replaceMethod(s) { Array.prototype.join = function() { return s; }; return 0; }
export function getJoin() { return [1, 2].join("-"); }
export function patchIterator(s) { Object.getPrototypeOf([][Symbol.iterator]()).leak = s; return 0; }
export function getIterator() { return typeof Object.getPrototypeOf([][Symbol.iterator]()).leak; }
export function patchMathFn(s) { Math.max.leak = s; return 0; }
export function getMathFn() { return typeof Math.max.leak; }
export function freeze() { Object.freeze(Array.prototype); return 0; }
export function addToArrayProto() { Array.prototype.ok = 1; return [].ok; }
export function setProto(s) { Object.setPrototypeOf(Array.prototype, { leak: s }); return 0; }
export function setCcf(s) { ccf.leak = s; console.leak = s; ccf.strToBuf.leak = s; return 0; }
export function getCcf() { return [typeof ccf.leak, typeof console.leak, typeof ccf.strToBuf.leak]; }
export function setTable(s) { ccf.kv["public:t"].leak = s; ccf.crypto.leak = s; return 0; }
export function getTable() { return [typeof ccf.kv["public:t"].leak, typeof ccf.crypto.leak]; }
export function setSymbol(s) { globalThis[Symbol.for("k")] = s; return 0; }
export function getSymbol() { return typeof globalThis[Symbol.for("k")]; }
`)
	ctx := context.Background()
	for _, tc := range []struct {
		name        string
		first, then string
		want        string
		retried     bool // the first call must be run again on a fresh runtime
	}{
		{"module variable", "count", "count", "1", false},
		{"added globals", "setGlobal", "getGlobal", `["undefined","undefined"]`, true},
		{"replaced global", "replaceGlobal", "getJSON", `"{\"a\":1}"`, true},
		{"deleted global", "deleteGlobal", "getMath", `"object"`, true},
		{"Array.prototype property", "patchProto", "getProto", `"undefined"`, true},
		{"non-enumerable Object.prototype property", "patchHidden", "getHidden", `"undefined"`, true},
		{"replaced method", "replaceMethod", "getJoin", `"1-2"`, true},
		{"iterator prototype", "patchIterator", "getIterator", `"undefined"`, true},
		{"property of a built-in function", "patchMathFn", "getMathFn", `"undefined"`, true},
		{"frozen prototype", "freeze", "addToArrayProto", "1", false}, // Array.prototype is locked already; addToArrayProto is run again
		{"replaced prototype", "setProto", "getProto", `"undefined"`, true},
		{"ccf and console", "setCcf", "getCcf", `["undefined","undefined","undefined"]`, false},
		{"table and crypto objects", "setTable", "getTable", `["undefined","undefined"]`, false},
		{"global symbol", "setSymbol", "getSymbol", `"undefined"`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool := p.NewPool()
			run := func(fn string) string {
				t.Helper()
				res, err := pool.Run(ctx, Call{Function: fn, Args: []any{"secret"}}, 1)
				if err != nil {
					t.Fatalf("%s: %v", fn, err)
				}
				return string(res.Value)
			}
			if got := run(tc.first); got != "0" && tc.first != "count" {
				t.Fatalf("%s: %s, want 0", tc.first, got)
			}
			if retried := pool.retries.Load() == 1; retried != tc.retried {
				t.Fatalf("%s run again on a fresh runtime: %v, want %v", tc.first, retried, tc.retried)
			}
			if got := run(tc.then); got != tc.want {
				t.Fatalf("%s after %s: %s, want %s", tc.then, tc.first, got, tc.want)
			}
			if got := run(tc.then); got != tc.want { // on the runtime the first call used
				t.Fatalf("%s again: %s, want %s", tc.then, got, tc.want)
			}
			if made := pool.made.Load(); made != 1 {
				t.Fatalf("%d runtimes made, want 1: the pooled runtime must be reused", made)
			}
		})
	}
}

// TestPoolThrown: a call that throws leaves nothing behind either (what it
// set on ccf and the per-call globals before throwing is gone, and its
// runtime is reused), and a TypeError of the code's own is still the
// call's error after the run on a fresh runtime.
func TestPoolThrown(t *testing.T) {
	p := compile(t, `
export function setThenThrow(s) { ccf.secret = s; context.secret = s; throw new Error("no"); }
export function get() { return [typeof ccf.secret, typeof context]; }
export function bug() { return null.x; }`)
	pool := p.NewPool()
	ctx := context.Background()
	globals := map[string]any{"context": map[string]any{"contents": "x"}}
	if _, err := pool.Run(ctx, Call{Function: "setThenThrow", Args: []any{"s"}, Globals: globals}, 1); err == nil || err.Error() != "Error: no" {
		t.Fatalf("setThenThrow: %v", err)
	}
	res, err := pool.Run(ctx, Call{Function: "get"}, 1)
	if err != nil || string(res.Value) != `["undefined","undefined"]` {
		t.Fatalf("get: %v %s", err, res.Value)
	}
	_, err = pool.Run(ctx, Call{Function: "bug"}, 1)
	var se *ScriptError
	if !errors.As(err, &se) || !strings.HasPrefix(se.Message, "TypeError") {
		t.Fatalf("bug: %v, want its TypeError", err)
	}
	if made, retries := pool.made.Load(), pool.retries.Load(); made != 1 || retries != 1 {
		t.Fatalf("%d runtimes made, %d calls run again; want 1 and 1", made, retries)
	}
}

// BenchmarkLockdown is the cost of making a locked pooled runtime (paid
// at most max_cached_interpreters times per program, plus once per
// runtime discarded by a limit).
func BenchmarkLockdown(b *testing.B) {
	p, err := Compile(Module{Name: "app.js", Source: "export function f() {}"})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		s := &sandbox{prog: p}
		s.init(Limits{}.WithDefaults())
		if err := s.lockdown(nil); err != nil {
			b.Fatal(err)
		}
	}
}

// TestPoolLockedCap: at most keep locked runtimes exist; a call beyond
// them runs on a fresh runtime instead of locking another (locking costs
// milliseconds). Two calls in flight with keep 1: the second does not
// lock a runtime.
func TestPoolLockedCap(t *testing.T) {
	p := compile(t, `export function f() { return 1; }`)
	pool := p.NewPool()
	ctx := context.Background()
	// Hold the one locked runtime as a busy call would.
	if _, err := pool.Run(ctx, Call{Function: "f"}, 1); err != nil {
		t.Fatal(err)
	}
	busy := <-pool.idle
	res, err := pool.Run(ctx, Call{Function: "f"}, 1)
	if err != nil || string(res.Value) != "1" {
		t.Fatalf("second call: %v %s", err, res.Value)
	}
	if made := pool.made.Load(); made != 1 {
		t.Fatalf("%d locked runtimes made with keep 1, want 1", made)
	}
	pool.idle <- busy
	if _, err := pool.Run(ctx, Call{Function: "f"}, 1); err != nil || pool.made.Load() != 1 {
		t.Fatalf("after: %v, %d made", err, pool.made.Load())
	}
}
