package appjs

import (
	"context"
	"testing"
)

// TestKeptModules: a module that only declares at its top level is
// evaluated once per locked runtime and its exports kept (kept.go), and a
// call still sees a fresh module: each case's calls answer on the pool
// (keep 1: always the same runtime) exactly what they answer each on a
// fresh runtime, whatever the call before left behind. Each case says
// whether the module must be kept (evaluated once over all the calls), and
// whether its calls must be run again on a fresh runtime (they changed a
// frozen function). Without the binding check (checkKept), "let changed",
// "function rebound", "eval", "-0" and "__import rebound" answer what the
// previous call left; without the freezing, "function property",
// "prototype", "__import property" and the bundle cases do.
func TestKeptModules(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		modules []Module
		want    string
		kept    bool // evaluated once in all the calls
		retried bool // run again on a fresh runtime
	}{
		{name: "declarations only", want: "6", kept: true, modules: []Module{{"main.js", `"use strict";
const LIMIT = 3, NAME = "x"; let off = -0; var none;
function helper(x) { return x * 2 + off; }
export function main() { return helper(LIMIT); }
;`}}},
		{name: "hook shape", want: "", kept: true, modules: []Module{{"main.js",
			`export function main() { if (context.contents.length > 100000) throw new Error("too long"); }`}}},
		{name: "let changed", want: "1", modules: []Module{{"main.js", `let n = 0;
export function main() { return ++n; }`}}},
		{name: "function rebound", want: "1", modules: []Module{{"main.js",
			`function helper() { return 1; }
export function main() { const r = helper(); helper = function () { return 2; }; return r; }`}}},
		{name: "export rebound", want: "1", modules: []Module{{"main.js",
			`export function main() { main = function () { return 2; }; return 1; }`}}},
		{name: "eval", want: "0", modules: []Module{{"main.js",
			`let n = 0;
export function main() { const r = n; eval("n = 5"); return r; }`}}},
		{name: "-0", want: "false", modules: []Module{{"main.js",
			`let z = 0;
export function main() { const r = Object.is(z, -0); z = -0; return r; }`}}},
		{name: "__import rebound", want: `"function"`, modules: []Module{{"main.js",
			`export function main() { const r = typeof __import; __import = 5; return r; }`}}},
		{name: "function property", want: "1", kept: true, retried: true, modules: []Module{{"main.js",
			`export function main() { main.count = (main.count || 0) + 1; return main.count; }`}}},
		{name: "prototype", want: "1", kept: true, retried: true, modules: []Module{{"main.js",
			`function P() {}
export function main() { const r = P.prototype.x === undefined ? 1 : 2; P.prototype.x = 1; return r; }`}}},
		{name: "__import property", want: `"undefined"`, kept: true, retried: true, modules: []Module{{"main.js",
			`export function main() { const r = typeof __import.x; __import.x = 1; return r; }`}}},
		{name: "top-level object", want: "1", modules: []Module{{"main.js",
			`const seen = [];
export function main() { seen.push(1); return seen.length; }`}}},
		{name: "top-level call", want: "1", modules: []Module{{"main.js",
			`let n = 0; n++;
export function main() { return n; }`}}},
		{name: "bundle namespace", want: `"undefined"`, retried: true, modules: []Module{
			{"main.js", `import * as lib from "./lib.js";
export function main() { const r = typeof lib.leak; lib.leak = 1; return r; }`},
			{"lib.js", `export function f() { return 1; }`}}},
		{name: "bundle getter", want: `"undefined"`, retried: true, modules: []Module{
			{"main.js", `import * as lib from "./lib.js";
export function main() { const g = Object.getOwnPropertyDescriptor(lib, "f").get; const r = typeof g.leak; g.leak = 1; return r; }`},
			{"lib.js", `export function f() { return 1; }`}}},
		{name: "bundle imported function", want: "1", retried: true, modules: []Module{
			{"main.js", `import { f } from "./lib.js";
export function main() { f.n = (f.n || 0) + 1; return f.n; }`},
			{"lib.js", `export function f() { return 1; }`}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Compile(tc.modules...)
			if err != nil {
				t.Fatal(err)
			}
			const calls = 4
			globals := map[string]any{"context": map[string]any{"contents": "x", "collectionId": "c"}}
			for i := range calls { // the semantics: a fresh runtime each
				res, err := p.Run(ctx, Call{Function: "main", Globals: globals})
				if err != nil || string(res.Value) != tc.want {
					t.Fatalf("fresh call %d: %v %s, want %s", i, err, res.Value, tc.want)
				}
			}
			pool := p.NewPool()
			evals := p.evals.Load()
			for i := range calls {
				res, err := pool.Run(ctx, Call{Function: "main", Globals: globals}, 1)
				if err != nil || string(res.Value) != tc.want {
					t.Fatalf("pooled call %d: %v %s, want %s", i, err, res.Value, tc.want)
				}
			}
			if made := pool.made.Load(); made != 1 {
				t.Fatalf("%d runtimes made, want 1", made)
			}
			if retried := pool.retries.Load() > 0; retried != tc.retried {
				t.Fatalf("run again on a fresh runtime: %v, want %v", retried, tc.retried)
			}
			n := p.evals.Load() - evals
			if tc.retried {
				n -= pool.retries.Load() * int64(len(tc.modules)) // the fresh runtimes' evaluations
			}
			if kept := n == 1; kept != tc.kept {
				t.Fatalf("main.js and its imports evaluated %d times by the pooled calls; kept: %v, want %v", n, kept, tc.kept)
			}
		})
	}
}
