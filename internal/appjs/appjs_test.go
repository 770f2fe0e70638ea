package appjs

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dop251/goja"
	"github.com/ledgerd/ledgerd/internal/jsrt"
)

func compile(t *testing.T, src string) *Program {
	t.Helper()
	p, err := Compile(Module{Name: "main.js", Source: src})
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return p
}

func run(t *testing.T, p *Program, c Call) (*Result, error) {
	t.Helper()
	if c.Function == "" {
		c.Function = "main"
	}
	return p.Run(context.Background(), c)
}

func TestReturnValueAndArgs(t *testing.T) {
	p := compile(t, `export function main(a, b) { return { sum: Number(a) + Number(b), a: a }; }
export const arrow = (x) => x.n * 2;
export default function dflt() { return "d"; }
export function nothing() {}
export async function later() { return 7; }`)
	res, err := run(t, p, Call{Args: []any{"1", "2"}})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Value) != `{"sum":3,"a":"1"}` {
		t.Errorf("Value = %s", res.Value)
	}
	res, err = run(t, p, Call{Function: "arrow", Args: []any{json.RawMessage(`{"n":21}`)}})
	if err != nil || string(res.Value) != "42" {
		t.Errorf("arrow = %v, %v", res, err)
	}
	res, err = run(t, p, Call{Function: "default"})
	if err != nil || string(res.Value) != `"d"` {
		t.Errorf("default = %v, %v", res, err)
	}
	res, err = run(t, p, Call{Function: "nothing"})
	if err != nil || res.Value != nil {
		t.Errorf("nothing = %v, %v; want no value", res, err)
	}
	res, err = run(t, p, Call{Function: "later"})
	if err != nil || string(res.Value) != "7" {
		t.Errorf("later = %v, %v", res, err)
	}
	_, err = run(t, p, Call{Function: "missing"})
	var se *ScriptError
	if !errors.As(err, &se) || !strings.Contains(se.Message, "not an exported function") {
		t.Errorf("missing = %v", err)
	}
}

func TestThrow(t *testing.T) {
	p := compile(t, `export function main() {
  ccf.kv["records"].set(ccf.strToBuf("k"), ccf.strToBuf("v"));
  throw new Error("bad input");
}
export function str() { throw "plain"; }
export async function rej() { throw new Error("async no"); }`)
	res, err := run(t, p, Call{})
	var se *ScriptError
	if !errors.As(err, &se) || se.Message != "Error: bad input" || res != nil {
		t.Fatalf("main = %v, %v; want ScriptError \"Error: bad input\" and no result", res, err)
	}
	if !strings.Contains(se.Stack, "main.js:3") {
		t.Errorf("Stack = %q; want the line", se.Stack)
	}
	if _, err := run(t, p, Call{Function: "str"}); !errors.As(err, &se) || se.Message != "plain" {
		t.Errorf("str = %v", err)
	}
	if _, err := run(t, p, Call{Function: "rej"}); !errors.As(err, &se) || se.Message != "Error: async no" {
		t.Errorf("rej = %v", err)
	}
}

// state is a Reader over a MemKV.
type state struct{ jsrt.MemKV }

func TestKV(t *testing.T) {
	st := state{jsrt.NewMemKV()}
	st.Set("records", []byte("a"), []byte("1"))
	st.Set("records", []byte("b"), []byte("2"))
	p := compile(t, `export function main() {
  const t = ccf.kv["records"];
  const out = { a: ccf.bufToStr(t.get(ccf.strToBuf("a"))), hasZ: t.has(ccf.strToBuf("z")), size: t.size };
  t.set(ccf.strToBuf("c"), ccf.jsonCompatibleToBuf({ x: 1 }));
  t.delete(ccf.strToBuf("a"));
  const keys = [];
  t.forEach((v, k) => keys.push(ccf.bufToStr(k)));
  out.keys = keys;
  out.c = ccf.bufToJsonCompatible(t.get(ccf.strToBuf("c")));
  out.sizeAfter = t.size;
  ccf.kv["public:audit"].set(ccf.strToBuf("n"), ccf.strToBuf("1"));
  console.log("hello", 1, { a: 1 });
  return out;
}`)
	res, err := run(t, p, Call{State: st})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"a":"1","hasZ":false,"size":2,"keys":["b","c"],"c":{"x":1},"sizeAfter":2}`
	if string(res.Value) != want {
		t.Errorf("Value = %s\nwant    %s", res.Value, want)
	}
	var got []string
	for _, w := range res.Writes {
		got = append(got, w.Table+"/"+string(w.Key)+"="+string(w.Value)+map[bool]string{true: " deleted"}[w.Deleted])
	}
	if strings.Join(got, ";") != `public:audit/n=1;records/a= deleted;records/c={"x":1}` {
		t.Errorf("Writes = %v", got)
	}
	if len(res.Logs) != 1 || res.Logs[0] != "hello 1 [object Object]" {
		t.Errorf("Logs = %q", res.Logs)
	}
	// The state itself is untouched: writes are only returned.
	if v, _ := st.Get("records", []byte("a")); string(v) != "1" {
		t.Error("Run wrote to its state")
	}
}

// User code cannot reach CCF's or ledgerd's tables, for reading or writing.
func TestKVIsolation(t *testing.T) {
	st := state{jsrt.NewMemKV()}
	st.Set("public:ledgerd.users", []byte("u"), []byte(`{"assignedRole":"Reader"}`))
	p := compile(t, `export function write(table) {
  ccf.kv[table].set(ccf.strToBuf("mallory"), ccf.jsonCompatibleToBuf({ assignedRole: "Administrator" }));
}
export function read(table) { return ccf.kv[table].size; }`)
	for _, table := range []string{"public:ledgerd.users", "public:ccf.gov.members.certs", "public:ccf.internal.signatures",
		"ledgerd.entries", "ledgerd.entries.tags", "ccf.internal.x", "public:ledgerd.udfs", "", "public:"} {
		for _, fn := range []string{"write", "read"} {
			res, err := run(t, p, Call{Function: fn, Args: []any{table}, State: st})
			var se *ScriptError
			if !errors.As(err, &se) || !strings.Contains(se.Message, "not an application table") || res != nil {
				t.Errorf("%s(%q) = %v, %v; want refused", fn, table, res, err)
			}
		}
	}
	for _, table := range []string{"records", "public:records", "public:ccfx", "ccfx"} {
		if _, err := run(t, p, Call{Function: "write", Args: []any{table}, State: st}); err != nil {
			t.Errorf("write(%q) = %v; want allowed", table, err)
		}
	}
}

var hostile = map[string]struct {
	body   string
	limits Limits
	want   error
}{
	"loop":      {`for (;;) {}`, Limits{Time: 100 * time.Millisecond}, ErrTimeLimit},
	"catchloop": {`for (;;) { try { for (;;) {} } catch (e) {} }`, Limits{Time: 100 * time.Millisecond}, ErrTimeLimit},
	"recursion": {`function f(n) { return f(n + 1) + 1; } f(0);`, Limits{Time: 5 * time.Second}, ErrStackLimit},
	// The time limit is far off, so only the memory limit can stop it.
	"allocation": {`let a = []; for (;;) a.push(new Array(1e6));`, Limits{Time: 10 * time.Minute, Memory: 64 << 20}, ErrMemoryLimit},
}

func TestLimits(t *testing.T) {
	for name, tc := range hostile {
		t.Run(name, func(t *testing.T) {
			p := compile(t, `export function main() { ccf.kv["records"].set(ccf.strToBuf("k"), ccf.strToBuf("v")); `+tc.body+` }`)
			start := time.Now()
			res, err := run(t, p, Call{Limits: tc.limits})
			if !errors.Is(err, tc.want) || res != nil {
				t.Fatalf("err = %v, res %v; want %v", err, res, tc.want)
			}
			if tc.want == ErrTimeLimit {
				if took := time.Since(start); took > tc.limits.Time+2*time.Second {
					t.Errorf("took %v", took)
				}
			}
			// The program still runs afterwards.
			q := compile(t, `export function main() { return 1; }`)
			if res, err := run(t, q, Call{}); err != nil || string(res.Value) != "1" {
				t.Errorf("next call = %v, %v", res, err)
			}
		})
	}
}

func TestCancel(t *testing.T) {
	p := compile(t, `export function main() { for (;;) {} }`)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := p.Run(ctx, Call{Function: "main", Limits: Limits{Time: time.Minute}})
	if !errors.Is(err, ErrCanceled) {
		t.Errorf("err = %v; want ErrCanceled", err)
	}
}

// A bundle: modules importing each other by relative path, named, default
// and namespace imports, over several lines.
func TestBundleImports(t *testing.T) {
	p, err := Compile(
		Module{Name: "endpoints/app.js", Source: `import {
  double,
  triple as three,
} from "../lib/math.js";
import greet, * as ns from "./greet";
import "../lib/side.js";
export function main(x) { return [double(x), three(x), greet("a"), ns.default("b"), globalThis.sideEffect]; }`},
		Module{Name: "lib/math.js", Source: `export function double(x) { return 2 * x; }
export const triple = (x) => 3 * x;`},
		Module{Name: "endpoints/greet.js", Source: `import { double } from "../lib/math.js";
export default function greet(n) { return "hi " + n + double(1); }`},
		Module{Name: "lib/side.js", Source: `globalThis.sideEffect = "ran";`},
	)
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Run(context.Background(), Call{Module: "endpoints/app.js", Function: "main", Args: []any{5}})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Value) != `[10,15,"hi a2","hi b2","ran"]` {
		t.Errorf("Value = %s", res.Value)
	}
	_, err = Compile(Module{Name: "a.js", Source: "import { x } from \"./nope.js\";\nexport function main() { return x; }"})
	if err != nil {
		t.Fatalf("Compile: %v (imports are resolved when run)", err)
	}
	q, _ := Compile(Module{Name: "a.js", Source: "import { x } from \"./nope.js\";\nexport function main() { return x; }"})
	if _, err := q.Run(context.Background(), Call{Function: "main"}); err == nil || !strings.Contains(err.Error(), `cannot find module "./nope.js"`) {
		t.Errorf("missing import: %v", err)
	}
}

func TestCompileErrors(t *testing.T) {
	for name, src := range map[string]string{
		"syntax":   "export function main( {",
		"reexport": `export { a } from "./b.js";`,
		"twice":    "export function main() {}\nexport function main() {}",
	} {
		if _, err := Compile(Module{Name: "m.js", Source: src}); err == nil {
			t.Errorf("%s: compiled", name)
		}
	}
	if _, err := Compile(); err == nil {
		t.Error("no module: compiled")
	}
	if _, err := Compile(Module{Name: "a.js"}, Module{Name: "./a.js"}); err == nil {
		t.Error("duplicate module: compiled")
	}
}

func TestLogBounded(t *testing.T) {
	p := compile(t, `export function main() { for (let i = 0; i < 1000; i++) console.log("0123456789"); }`)
	res, err := run(t, p, Call{MaxLog: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Logs) != 10 || !res.LogTruncated {
		t.Errorf("Logs: %d lines, truncated %v; want 10, true", len(res.Logs), res.LogTruncated)
	}
}

func TestCache(t *testing.T) {
	c := NewCache(2)
	n := 0
	mods := func() []Module { n++; return []Module{{Name: "m.js", Source: "export function main() { return 1; }"}} }
	a, err := c.Get("k", mods)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := c.Get("k", mods)
	if a != b || n != 1 {
		t.Errorf("cached program compiled %d times", n)
	}
	c.Forget("k")
	c.Get("k", mods)
	if n != 2 {
		t.Errorf("Forget: compiled %d times", n)
	}
}

func BenchmarkTrivialCall(b *testing.B) {
	p, _ := Compile(Module{Name: "m.js", Source: "export function main(c) { return true; }"})
	ctx := context.Background()
	for b.Loop() {
		if _, err := p.Run(ctx, Call{Function: "main", Args: []any{"x"}}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestGlobals(t *testing.T) {
	p := compile(t, `export function main() { return context.contents + "/" + context.collectionId; }`)
	res, err := run(t, p, Call{Globals: map[string]any{"context": map[string]string{"contents": "c", "collectionId": "x"}}})
	if err != nil || string(res.Value) != `"c/x"` {
		t.Errorf("= %v, %v", res, err)
	}
}

// The lazy ccf object knows every property installCrypto sets.
func TestCryptoPropsComplete(t *testing.T) {
	s := &sandbox{rt: goja.New()}
	o := s.rt.NewObject()
	s.installCrypto(o)
	got := o.Keys()
	sort.Strings(got)
	want := append([]string(nil), cryptoProps...)
	sort.Strings(want)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("installCrypto sets %v; cryptoProps lists %v", got, want)
	}
	// And user code sees them, and may add its own properties.
	p := compile(t, `export function main() { ccf.extra = 1; return [typeof ccf.crypto.digest, typeof ccf.pemToId, typeof ccf.strToBuf, ccf.extra, Object.keys(console).length]; }`)
	res, err := run(t, p, Call{})
	if err != nil || string(res.Value) != `["function","function","function",1,5]` {
		t.Errorf("= %v, %v", res, err)
	}
}
