package api_test

import (
	"strings"
	"testing"
)

// The worked examples: a validation pre-hook, an enrichment post-hook and
// a query function, written to ACL's documented shape (export function
// main, hook arguments as strings, the entry in the global context,
// ccf.kv with ccf.strToBuf/bufToStr).
const (
	validationHook = `export function main() {
  const entry = JSON.parse(context.contents);
  if (typeof entry.amount !== "number" || entry.amount <= 0) {
    throw new Error("Invalid amount: " + entry.amount);
  }
}`
	enrichmentHook = `export function main(tag) {
  const table = ccf.kv["entryMetadata"];
  const key = ccf.strToBuf(context.collectionId);
  const previous = table.get(key);
  const count = previous === undefined ? 0 : JSON.parse(ccf.bufToStr(previous)).count;
  table.set(key, ccf.strToBuf(JSON.stringify({ count: count + 1, last: context.contents, tag: tag })));
}`
	queryFunction = `export function main(collectionId) {
  const value = ccf.kv["entryMetadata"].get(ccf.strToBuf(collectionId));
  if (value === undefined) {
    return "No metadata for " + collectionId;
  }
  return ccf.bufToStr(value);
}`
)

func hook(id string, args ...string) map[string]any {
	h := map[string]any{"functionId": id}
	if args != nil {
		h["properties"] = map[string]any{"arguments": args}
	}
	return h
}

// TestHooks: the worked examples run as written; a rejecting pre-hook
// fails the write with a 400 and writes nothing (neither the entry nor any
// hook's writes); hooks' writes go into the entry's transaction.
func TestHooks(t *testing.T) {
	e := newEnv(t, envOptions{})
	putUDF(t, e, "validate", validationHook)
	putUDF(t, e, "enrich", enrichmentHook)
	putUDF(t, e, "query", queryFunction)

	post := func(contents string, pre, post []any) *response {
		body := map[string]any{"contents": contents}
		if pre != nil {
			body["preHooks"] = pre
		}
		if post != nil {
			body["postHooks"] = post
		}
		return e.contributor.post(q("/app/transactions", v2024, "collectionId", "payments"), body)
	}
	r := post(`{"amount": 10}`, []any{hook("validate")}, []any{hook("enrich", "first")}).expect(200, "")
	id := r.txid()
	e.commit(id)
	x, _ := execUDF(e, e.contributor, "query", map[string]any{"arguments": []string{"payments"}})
	if x.Status != "Succeeded" || x.Result.ReturnValue != `{"count":1,"last":"{\"amount\": 10}","tag":"first"}` {
		t.Fatalf("query = %+v", x)
	}
	// The hook's write is in the entry's transaction: the entry and the
	// metadata are one transaction id.
	entry := e.reader.get(q("/app/transactions/"+id.String(), v2024, "collectionId", "payments")).object()
	if entry["state"] != "Ready" {
		t.Fatalf("entry %v", entry)
	}

	// A rejected write: 400, no entry, no hook writes (the post-hook would
	// have counted it).
	r = post(`{"amount": -5}`, []any{hook("validate")}, []any{hook("enrich", "second")}).expect(400, "UserDefinedFunctionFailed")
	if msg := r.errorMessage(); !strings.Contains(msg, "Invalid amount: -5") || !strings.Contains(msg, "pre-hook 0") {
		t.Errorf("message %q", msg)
	}
	cur := e.reader.get(q("/app/transactions/current", v2024, "collectionId", "payments")).object()
	if cur["contents"] != `{"amount": 10}` {
		t.Errorf("current entry after a rejected write: %v", cur)
	}
	x, _ = execUDF(e, e.contributor, "query", map[string]any{"arguments": []string{"payments"}})
	if !strings.Contains(x.Result.ReturnValue, `"count":1`) {
		t.Errorf("metadata after a rejected write: %+v", x)
	}

	// A failing post-hook fails the write too (same transaction).
	putUDF(t, e, "failpost", `export function main() { ccf.kv["entryMetadata"].set(ccf.strToBuf("x"), ccf.strToBuf("y")); throw new Error("post no"); }`)
	post(`{"amount": 1}`, nil, []any{hook("failpost")}).expect(400, "UserDefinedFunctionFailed")
	cur = e.reader.get(q("/app/transactions/current", v2024, "collectionId", "payments")).object()
	if cur["contents"] != `{"amount": 10}` {
		t.Errorf("current entry after a failed post-hook: %v", cur)
	}

	// Five hooks of each kind at most; hooks must name existing functions.
	six := []any{hook("validate"), hook("validate"), hook("validate"), hook("validate"), hook("validate"), hook("validate")}
	post(`{"amount": 1}`, six, nil).expect(400, "InvalidInput")
	post(`{"amount": 1}`, nil, six).expect(400, "InvalidInput")
	post(`{"amount": 1}`, six[:5], six[:5]).expect(200, "")
	post(`{"amount": 1}`, []any{hook("nope")}, nil).expect(400, "InvalidInput")
	for name, body := range map[string]any{
		"hooks not an array":   map[string]any{"contents": "x", "preHooks": "validate"},
		"hook not an object":   map[string]any{"contents": "x", "preHooks": []any{"validate"}},
		"no functionId":        map[string]any{"contents": "x", "preHooks": []any{map[string]any{}}},
		"bad properties":       map[string]any{"contents": "x", "preHooks": []any{map[string]any{"functionId": "validate", "properties": 1}}},
		"both spellings":       map[string]any{"contents": "x", "preHooks": []any{}, "preOperationHooks": []any{}},
		"argument not strings": map[string]any{"contents": "x", "postHooks": []any{map[string]any{"functionId": "enrich", "properties": map[string]any{"arguments": []any{1}}}}},
	} {
		if r := e.contributor.post(q("/app/transactions", v2024, "collectionId", "payments"), body); r.status != 400 || r.errorCode() != "InvalidInput" {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}
	// Before 2024-12-09-preview, hooks are unknown fields.
	e.contributor.post(q("/app/transactions", "2024-08-22-preview", "collectionId", "payments"),
		map[string]any{"contents": "x", "preHooks": []any{hook("validate")}}).expect(400, "InvalidInput")

	// A looping pre-hook: stopped by its limit, the write refused.
	putUDF(t, e, "loop", "export function main() { for (;;) {} }")
	r = post(`{"amount": 1}`, []any{map[string]any{"functionId": "loop", "properties": map[string]any{"runtimeOptions": map[string]any{"max_execution_time_ms": 100}}}}, nil).expect(400, "UserDefinedFunctionFailed")
	if !strings.Contains(r.errorMessage(), "time limit") {
		t.Errorf("loop: %q", r.errorMessage())
	}
	// The spelling of the spec's example works too.
	e.contributor.post(q("/app/transactions", v2024, "collectionId", "payments"),
		map[string]any{"contents": `{"amount": 2}`, "preOperationHooks": []any{hook("validate")}, "postOperationHooks": []any{hook("enrich", "third")}}).expect(200, "")
	x, _ = execUDF(e, e.contributor, "query", map[string]any{"arguments": []string{"payments"}})
	if !strings.Contains(x.Result.ReturnValue, `"tag":"third"`) {
		t.Errorf("after preOperationHooks: %+v", x)
	}
}

// TestHookFunctionReplaced: a hook runs the function's code as the latest
// state holds it, whatever ran before: replaced between two appends, the
// new code decides the next one (also when it is code that ran before, and
// whose runtimes and kept module are pooled); deleted, the next append is
// refused. Every version is a module that only declares, so its exports
// are kept between calls (appjs/kept.go).
func TestHookFunctionReplaced(t *testing.T) {
	e := newEnv(t, envOptions{})
	const accept = `export function main() { }`
	const reject = `export function main() { throw new Error("v2 rejects"); }`
	path := q("/app/transactions", v2024, "collectionId", "gate")
	body := map[string]any{"contents": "x", "preHooks": []any{hook("gate")}}
	put := func(code string, status int) {
		t.Helper()
		e.admin.do("PUT", udfPath("gate"), map[string]string{"code": code}).expect(status, "")
	}
	put(accept, 201)
	for range 3 {
		e.contributor.post(path, body).expect(200, "")
	}
	put(reject, 200)
	if r := e.contributor.post(path, body).expect(400, "UserDefinedFunctionFailed"); !strings.Contains(r.errorMessage(), "v2 rejects") {
		t.Errorf("after the replacement: %q", r.errorMessage())
	}
	put(accept, 200)
	e.contributor.post(path, body).expect(200, "")
	e.admin.do("DELETE", udfPath("gate"), nil).expect(204, "")
	e.contributor.post(path, body).expect(400, "InvalidInput")
}
