package api_test

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// udfPath is the path of function id with api-version 2024-12-09-preview.
func udfPath(id string, kv ...string) string {
	return q("/app/userDefinedFunctions/"+id, v2024, kv...)
}

func putUDF(t *testing.T, e *env, id, code string) {
	t.Helper()
	e.admin.do("PUT", udfPath(id), map[string]string{"code": code}).expect(201, "")
}

type execution struct {
	Status string `json:"status"`
	Result *struct {
		ReturnValue string `json:"returnValue"`
	} `json:"result"`
	Error *struct {
		Message string `json:"message"`
	} `json:"error"`
}

func execUDF(e *env, c *client, id string, body any) (execution, *response) {
	e.t.Helper()
	r := c.post(udfPath(id+":execute"), body).expect(200, "")
	var x execution
	r.decode(&x)
	return x, r
}

// TestUserDefinedFunctionsLifecycle: PUT creates (201) and replaces (200)
// once committed, GET answers the function, the list pages, DELETE removes
// it (204, then 404), as the 2024-12-09-preview examples show.
func TestUserDefinedFunctionsLifecycle(t *testing.T) {
	e := newEnv(t, envOptions{})
	code := "export function main() { return true }"
	r := e.admin.do("PUT", udfPath("myFunction"), map[string]string{"id": "myFunction", "code": code}).expect(201, "")
	if got := r.object(); got["id"] != "myFunction" || got["code"] != code {
		t.Fatalf("PUT answered %v", got)
	}
	// Answered once committed: the transaction is Committed already.
	st := e.reader.get(q("/app/transactions/"+r.txid().String()+"/status", v2024)).object()
	if st["state"] != "Committed" {
		t.Errorf("PUT answered before commit: %v", st)
	}
	got := e.reader.get(udfPath("myFunction")).object()
	if got["id"] != "myFunction" || got["code"] != code {
		t.Errorf("GET = %v", got)
	}
	x, _ := execUDF(e, e.contributor, "myFunction", map[string]any{"arguments": []string{"arg1", "arg2"}, "exportedFunctionName": "main",
		"runtimeOptions": map[string]any{"log_exception_details": true, "max_cached_interpreters": 0, "max_execution_time_ms": 0,
			"max_heap_bytes": 0, "max_stack_bytes": 0, "return_exception_details": true}})
	if x.Status != "Succeeded" || x.Result == nil || x.Result.ReturnValue != "true" || x.Error != nil {
		t.Errorf("execute = %+v", x)
	}
	// Replacing answers 200.
	e.admin.do("PUT", udfPath("myFunction"), map[string]string{"code": "export function main() { return false }"}).expect(200, "")
	if x, _ := execUDF(e, e.contributor, "myFunction", nil); x.Result == nil || x.Result.ReturnValue != "false" {
		t.Errorf("after replace: %+v", x)
	}

	// The list pages by 100, in id order.
	for i := 0; i < 104; i++ {
		putUDF(t, e, fmt.Sprintf("f%03d", i), fmt.Sprintf("export function main() { return %d }", i))
	}
	var ids []string
	path := q("/app/userDefinedFunctions", v2024)
	pages := 0
	for path != "" {
		var page struct {
			Functions []struct{ ID, Code string } `json:"functions"`
			NextLink  string                      `json:"nextLink"`
		}
		e.reader.get(path).decode(&page)
		for _, f := range page.Functions {
			ids = append(ids, f.ID)
		}
		path, pages = page.NextLink, pages+1
	}
	if len(ids) != 105 || ids[0] != "f000" || ids[104] != "myFunction" || pages != 2 {
		t.Errorf("listed %d functions in %d pages: %v...", len(ids), pages, ids[:3])
	}

	e.admin.do("DELETE", udfPath("myFunction"), nil).expect(204, "")
	e.reader.get(udfPath("myFunction")).expect(404, "ResourceNotFound")
	e.admin.do("DELETE", udfPath("myFunction"), nil).expect(404, "ResourceNotFound")
	e.contributor.post(udfPath("myFunction:execute"), nil).expect(404, "ResourceNotFound")

	// Older api-versions do not have the API.
	e.reader.get(q("/app/userDefinedFunctions", "2024-08-22-preview")).expect(400, "")
}

// TestUserDefinedFunctionsRoles: only an Administrator manages functions;
// a Contributor executes them; a Reader reads them.
func TestUserDefinedFunctionsRoles(t *testing.T) {
	e := newEnv(t, envOptions{})
	code := map[string]string{"code": "export function main() { return 1 }"}
	e.reader.do("PUT", udfPath("f"), code).expect(403, "")
	e.contributor.do("PUT", udfPath("f"), code).expect(403, "")
	e.reader.get(udfPath("f")).expect(404, "ResourceNotFound")
	putUDF(t, e, "f", code["code"])
	e.reader.do("DELETE", udfPath("f"), nil).expect(403, "")
	e.contributor.do("DELETE", udfPath("f"), nil).expect(403, "")
	e.reader.post(udfPath("f:execute"), nil).expect(403, "")
	e.reader.get(udfPath("f")).expect(200, "")
	if x, _ := execUDF(e, e.contributor, "f", nil); x.Status != "Succeeded" {
		t.Errorf("contributor execute: %+v", x)
	}
	e.stranger.get(udfPath("f")).expect(403, "")
}

// TestUserDefinedFunctionsBadInput: wrong types, unknown fields, too
// large code (refused by its length before it is decoded), bad ids, code
// that does not compile: 400 with an ACL error body.
func TestUserDefinedFunctionsBadInput(t *testing.T) {
	e := newEnv(t, envOptions{})
	for name, body := range map[string]any{
		"code not a string": map[string]any{"code": 5},
		"no code":           map[string]any{},
		"unknown field":     map[string]any{"code": "export function main() {}", "codez": 1},
		"empty code":        map[string]any{"code": "  "},
		"syntax error":      map[string]any{"code": "export function main( {"},
		"other id":          map[string]any{"id": "g", "code": "export function main() {}"},
		"too large":         map[string]any{"code": "//" + strings.Repeat("x", 256<<10)},
		"not an object":     []string{"code"},
	} {
		r := e.admin.do("PUT", udfPath("f"), body).expect(400, "InvalidInput")
		if r.errorMessage() == "" {
			t.Errorf("%s: no message", name)
		}
	}
	e.admin.do("PUT", udfPath("bad%20id"), map[string]string{"code": "export function main() {}"}).expect(400, "InvalidInput")
	e.admin.do("PUT", udfPath(strings.Repeat("a", 129)), map[string]string{"code": "export function main() {}"}).expect(400, "InvalidInput")
	e.reader.get(udfPath("f")).expect(404, "ResourceNotFound")

	putUDF(t, e, "f", "export function main(a) { return a }")
	for name, body := range map[string]any{
		"arguments not strings":  map[string]any{"arguments": []any{1}},
		"arguments not an array": map[string]any{"arguments": "a"},
		"name not a string":      map[string]any{"exportedFunctionName": 1},
		"options not an object":  map[string]any{"runtimeOptions": 1},
		"option out of bounds":   map[string]any{"runtimeOptions": map[string]any{"max_execution_time_ms": 100_000_000}},
		"option wrong type":      map[string]any{"runtimeOptions": map[string]any{"max_heap_bytes": "a lot"}},
		"unknown option":         map[string]any{"runtimeOptions": map[string]any{"max_everything": 1}},
		"unknown field":          map[string]any{"argumentz": []string{}},
	} {
		if r := e.contributor.post(udfPath("f:execute"), body); r.status != 400 || r.errorCode() != "InvalidInput" {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}
	e.contributor.post(udfPath("f:run"), nil).expect(404, "ResourceNotFound")
}

// TestUserDefinedFunctionExecution: arguments, the exported function,
// Failed answers for a throw and for a loop (stopped by its time limit,
// the node serving on), writes committed as one transaction, a throwing
// function writing nothing, and governance tables out of reach.
func TestUserDefinedFunctionExecution(t *testing.T) {
	e := newEnv(t, envOptions{})
	putUDF(t, e, "counter", `export function main(name) {
  const t = ccf.kv["counters"];
  const k = ccf.strToBuf(name);
  const n = t.has(k) ? Number(ccf.bufToStr(t.get(k))) : 0;
  t.set(k, ccf.strToBuf(String(n + 1)));
  return n + 1;
}
export function get(name) {
  const v = ccf.kv["counters"].get(ccf.strToBuf(name));
  return v === undefined ? undefined : ccf.bufToStr(v);
}
export function boom(name) {
  ccf.kv["counters"].set(ccf.strToBuf(name), ccf.strToBuf("999"));
  throw new Error("boom " + name);
}
export function loop() { for (;;) {} }
export function grab() {
  ccf.kv["public:ledgerd.users"].set(ccf.strToBuf("mallory"), ccf.jsonCompatibleToBuf({ assignedRole: "Administrator" }));
}
export function obj() { return { a: [1, "x"] }; }
export function str() { return "plain"; }`)

	x, r := execUDF(e, e.contributor, "counter", map[string]any{"arguments": []string{"a"}})
	if x.Status != "Succeeded" || x.Result.ReturnValue != "1" {
		t.Fatalf("counter = %+v", x)
	}
	id := r.txid()
	e.commit(id)
	x, r2 := execUDF(e, e.contributor, "counter", map[string]any{"arguments": []string{"a"}})
	if x.Result.ReturnValue != "2" || r2.txid().Seqno <= id.Seqno {
		t.Errorf("second counter = %+v at %s (first at %s)", x, r2.txid(), id)
	}
	if x, _ := execUDF(e, e.contributor, "counter", map[string]any{"exportedFunctionName": "get", "arguments": []string{"a"}}); x.Result.ReturnValue != "2" {
		t.Errorf("get = %+v", x)
	}
	for fn, want := range map[string]string{"obj": `{"a":[1,"x"]}`, "str": "plain"} {
		if x, _ := execUDF(e, e.contributor, "counter", map[string]any{"exportedFunctionName": fn}); x.Result == nil || x.Result.ReturnValue != want {
			t.Errorf("%s = %+v; want %s", fn, x, want)
		}
	}
	if x, _ := execUDF(e, e.contributor, "counter", map[string]any{"exportedFunctionName": "get", "arguments": []string{"none"}}); x.Result == nil || x.Result.ReturnValue != "" {
		t.Errorf("undefined = %+v; want an empty returnValue", x)
	}

	// A throw: Failed with the message; its write is not made.
	x, _ = execUDF(e, e.contributor, "counter", map[string]any{"exportedFunctionName": "boom", "arguments": []string{"a"}})
	if x.Status != "Failed" || x.Error == nil || x.Error.Message != "Error: boom a" || x.Result != nil {
		t.Errorf("boom = %+v", x)
	}
	if x, _ := execUDF(e, e.contributor, "counter", map[string]any{"exportedFunctionName": "get", "arguments": []string{"a"}}); x.Result.ReturnValue != "2" {
		t.Errorf("after boom: %+v; the throwing function wrote", x)
	}

	// A governance table: Failed, nothing written, the user unchanged.
	x, _ = execUDF(e, e.contributor, "counter", map[string]any{"exportedFunctionName": "grab"})
	if x.Status != "Failed" || !strings.Contains(x.Error.Message, "not an application table") {
		t.Errorf("grab = %+v", x)
	}
	e.admin.get(q("/app/users/mallory", v2024)).expect(404, "")

	// A loop: Failed within its time limit; the node serves on.
	start := time.Now()
	x, _ = execUDF(e, e.contributor, "counter", map[string]any{"exportedFunctionName": "loop", "runtimeOptions": map[string]any{"max_execution_time_ms": 200}})
	if x.Status != "Failed" || !strings.Contains(x.Error.Message, "time limit") {
		t.Errorf("loop = %+v", x)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("loop answered after %v", took)
	}
	e.write(e.contributor, v2024, "", "still serving")

	// An export that does not exist: Failed.
	if x, _ := execUDF(e, e.contributor, "counter", map[string]any{"exportedFunctionName": "nope"}); x.Status != "Failed" {
		t.Errorf("nope = %+v", x)
	}
}

// Whatever max_cached_interpreters, every run sees a fresh interpreter:
// module state, globals and patched intrinsics of one run (or hook) never
// reach the next, though runs share pooled runtimes.
func TestUserDefinedFunctionReuse(t *testing.T) {
	e := newEnv(t, envOptions{})
	putUDF(t, e, "f", `let runs = 0;
export function main() {
  runs++;
  const seen = typeof globalThis.leak === "undefined" ? "clean" : "leaked";
  globalThis.leak = 1;
  Array.prototype.leak = 1;
  return runs + ":" + (context === null ? "none" : context.contents) + ":" + seen + ":" + [].leak;
}`)
	one := map[string]any{"runtimeOptions": map[string]any{"max_cached_interpreters": 1}}
	run := func(body any) string {
		x, _ := execUDF(e, e.contributor, "f", body)
		if x.Result == nil {
			t.Fatalf("%+v", x)
		}
		return x.Result.ReturnValue
	}
	for _, body := range []any{nil, one} {
		if a, b := run(body), run(body); a != "1:none:clean:1" || b != "1:none:clean:1" {
			t.Errorf("runs = %q, %q; want 1:none:clean:1 twice", a, b)
		}
	}
	// A hook, then an execution: no context, no state from the hook.
	e.contributor.post(q("/app/transactions", v2024, "collectionId", "reuse"), map[string]any{"contents": "secret entry",
		"preHooks": []any{map[string]any{"functionId": "f", "properties": one}}}).expect(200, "")
	if got := run(one); got != "1:none:clean:1" {
		t.Errorf("after a hook: %q; want 1:none:clean:1 (no context or state from the hook)", got)
	}
}
