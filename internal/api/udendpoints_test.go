package api_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/api"
	"github.com/ledgerd/ledgerd/internal/appbundle"
	"github.com/ledgerd/ledgerd/internal/auth"
	"github.com/ledgerd/ledgerd/internal/auth/authtest"
	"github.com/ledgerd/ledgerd/internal/node"
	"github.com/ledgerd/ledgerd/internal/tables"
	"github.com/ledgerd/ledgerd/receipt"
)

const ude = "/app/userDefinedEndpoints"

// sampleBundle is written to the shape of ACL's sample bundle
// (azureconfidentialledger-app-samples, "UDE Sample bundle"): /content
// answers {"payload": foo()} from a module imported by a relative path.
const sampleBundle = `{
  "metadata": {"endpoints": {
    "/content": {"get": {"js_module": "test.js", "js_function": "content", "forwarding_required": "never",
      "redirection_strategy": "none", "authn_policies": ["no_auth"], "mode": "readonly", "openapi": {}}}
  }},
  "modules": [
    {"name": "test.js", "module": "import { foo } from \"./baz/baz.js\";\n\nexport function content(request) {\n  return {\n    statusCode: 200,\n    body: { payload: foo() },\n  };\n}"},
    {"name": "baz/baz.js", "module": "export function foo() {\n  return \"Test content\";\n}"}
  ]
}`

// TestUserDefinedEndpointsManagement: an Administrator installs a bundle
// (answered 201 once committed, stored in the public bundle map), reads it
// and its modules back, and replaces it; readers read, but only an
// Administrator installs; runtime options are merge-patched within bounds;
// the routes exist from 2024-08-22-preview on.
func TestUserDefinedEndpointsManagement(t *testing.T) {
	e := newEnv(t, envOptions{})
	empty := e.reader.get(q(ude, v2024)).expect(200, "")
	if string(empty.body) != `{"metadata":{"endpoints":{}},"modules":[]}` {
		t.Fatalf("no bundle: %s", empty.body)
	}
	e.reader.do("PUT", q(ude, v2024), sampleBundle).expect(403, "NotAllowed")
	e.contributor.do("PUT", q(ude, v2024), sampleBundle).expect(403, "NotAllowed")
	e.anonymous.do("PUT", q(ude, v2024), sampleBundle).expect(401, "InvalidAuthenticationInfo")
	e.admin.do("PUT", q(ude, v2022), sampleBundle).expect(400, "UnsupportedApiVersionValue")

	put := e.admin.do("PUT", q(ude, v2024), sampleBundle).expect(201, "")
	id := put.txid()
	if !(e.node.Reader.Status(id) == node.StatusCommitted) {
		t.Fatalf("PUT answered before %s committed", id)
	}
	stored, ok := e.node.Reader.State().Get(tables.AppBundleMap, []byte(tables.AppBundleKey))
	if !ok {
		t.Fatal("the bundle is not in " + tables.AppBundleMap)
	}
	got := e.reader.get(q(ude, "2024-08-22-preview")).expect(200, "")
	if string(got.body) != string(stored) {
		t.Fatalf("GET answers %s, the ledger holds %s", got.body, stored)
	}
	want, _ := appbundle.Parse([]byte(sampleBundle))
	var back appbundle.Bundle
	got.decode(&back)
	if !reflect.DeepEqual(back.Metadata, want.Metadata) || !reflect.DeepEqual(back.Modules, want.Modules) {
		t.Fatalf("GET answers %s", got.body)
	}

	// Modules, by name with or without the leading "/".
	for _, name := range []string{"baz/baz.js", "/baz/baz.js"} {
		m := e.reader.get(q(ude+"/modules", v2024, "module_name", name)).expect(200, "").object()
		if m["name"] != "baz/baz.js" || !strings.Contains(m["module"].(string), "Test content") {
			t.Fatalf("module %s: %v", name, m)
		}
	}
	e.reader.get(q(ude+"/modules", v2024, "module_name", "nope.js")).expect(404, "ResourceNotFound")
	e.reader.get(q(ude+"/modules", v2024)).expect(400, "InvalidQueryParameterValue")

	// Installing replaces: the old module is gone.
	replacement := `{"metadata":{"endpoints":{"/u/x":{"get":{"js_module":"x.js","js_function":"x","forwarding_required":"never","authn_policies":["user_cert"]}}}},"modules":[{"name":"x.js","module":"export function x() { return {body: 'x'}; }"}]}`
	e.admin.do("PUT", q(ude, v2024), replacement).expect(201, "")
	e.reader.get(q(ude+"/modules", v2024, "module_name", "baz/baz.js")).expect(404, "ResourceNotFound")
	// An empty bundle uninstalls.
	e.admin.do("PUT", q(ude, v2024), `{"metadata":{"endpoints":{}},"modules":[]}`).expect(201, "")
	if got := e.reader.get(q(ude, v2024)).expect(200, ""); string(got.body) != string(empty.body) {
		t.Fatalf("after uninstalling: %s", got.body)
	}
}

// TestUserDefinedEndpointsBadBundles: bundles that are not valid are
// refused with 400 InvalidBundle and a message saying why, and nothing is
// installed.
func TestUserDefinedEndpointsBadBundles(t *testing.T) {
	e := newEnv(t, envOptions{})
	mod := `[{"name":"a.js","module":"export function f(request) { return {}; }"}]`
	ep := func(props string) string {
		return `{"metadata":{"endpoints":{"/u/a":{"get":{` + props + `}}}},"modules":` + mod + `}`
	}
	ok := `"js_module":"a.js","js_function":"f","forwarding_required":"never","authn_policies":["user_cert"]`
	for name, c := range map[string]struct{ bundle, want string }{
		"unknown module":  {ep(strings.Replace(ok, `"a.js"`, `"b.js"`, 1)), `module "b.js" is not in the bundle`},
		"bad method":      {strings.Replace(ep(ok), `"get"`, `"trace"`, 1), `method "trace" is not supported`},
		"duplicate paths": {`{"metadata":{"endpoints":{"/u/a":{"get":{` + ok + `}},"/u/a":{"get":{` + ok + `}}}},"modules":` + mod + `}`, "twice"},
		"unknown policy":  {ep(strings.Replace(ok, "user_cert", "member_cose_sign1", 1)), "not supported"},
		// The swagger's CreateUserDefinedEndpoint example names no module
		// or function: it is not a bundle that could run.
		"spec example":  {`{"metadata":{"endpoints":{"/content":{"get":{"forwarding_required":"always","authn_policies":[{}]}}}},"modules":{"name":"test.js","module":"TESTJS"}}`, "not supported"},
		"not an object": {`[]`, "JSON object"},
	} {
		r := e.admin.do("PUT", q(ude, v2024), c.bundle).expect(400, "InvalidBundle")
		if !strings.Contains(r.errorMessage(), c.want) {
			t.Errorf("%s: %q, want %q", name, r.errorMessage(), c.want)
		}
	}
	// Larger than the bundle limit: refused from Content-Length, unread.
	big := `{"metadata":{"endpoints":{}},"modules":[{"name":"a.js","module":"` + strings.Repeat("x", appbundle.MaxBundleBytes) + `"}]}`
	e.admin.do("PUT", q(ude, v2024), big).expect(http.StatusRequestEntityTooLarge, "RequestBodyTooLarge")
	if _, ok := e.node.Reader.State().Get(tables.AppBundleMap, []byte(tables.AppBundleKey)); ok {
		t.Fatal("a refused bundle was stored")
	}
}

// TestRuntimeOptions: GET answers the defaults, PATCH merges (the spec's
// example), null resets, values out of bounds are refused, and only an
// Administrator changes them. Both spellings of the path are served.
func TestRuntimeOptions(t *testing.T) {
	e := newEnv(t, envOptions{})
	var o appbundle.RuntimeOptions
	e.reader.get(q(ude+"/runtimeOptions", v2024)).expect(200, "").decode(&o)
	if o != appbundle.DefaultRuntimeOptions {
		t.Fatalf("defaults %+v", o)
	}
	patch := `{"log_exception_details": false, "max_execution_time_ms": 1200}`
	e.reader.do("PATCH", q(ude+"/runtimeOptions", v2024), patch, "Content-Type", "application/merge-patch+json").expect(403, "NotAllowed")
	r := e.admin.do("PATCH", q(ude+"/runtimeOptions", v2024), patch, "Content-Type", "application/merge-patch+json").expect(200, "")
	r.decode(&o)
	want := appbundle.DefaultRuntimeOptions
	want.MaxExecutionTimeMs = 1200
	if o != want || !(e.node.Reader.Status(r.txid()) == node.StatusCommitted) {
		t.Fatalf("patched %+v (committed %v)", o, (e.node.Reader.Status(r.txid()) == node.StatusCommitted))
	}
	e.reader.get(q(ude+"/runTimeOptions", v2024)).expect(200, "").decode(&o)
	if o != want {
		t.Fatalf("runTimeOptions %+v", o)
	}
	for _, bad := range []string{`{"max_execution_time_ms": 0}`, `{"max_heap_bytes": 4294967296}`, `{"nope": 1}`, `{"return_exception_details": 1}`} {
		e.admin.do("PATCH", q(ude+"/runtimeOptions", v2024), bad).expect(400, "InvalidBundle")
	}
	e.admin.do("PATCH", q(ude+"/runtimeOptions", v2024), `{"max_execution_time_ms": null}`).expect(200, "").decode(&o)
	if o != appbundle.DefaultRuntimeOptions {
		t.Fatalf("reset %+v", o)
	}
	var raw map[string]json.RawMessage
	e.reader.get(q(ude+"/runtimeOptions", v2024)).decode(&raw)
	for _, k := range []string{"max_heap_bytes", "max_stack_bytes", "max_execution_time_ms", "log_exception_details", "return_exception_details", "max_cached_interpreters"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("GET runtimeOptions lacks %q: %v", k, raw)
		}
	}
}

// serveBundle exercises the request and response objects, modes, policies
// and limits. Its endpoints live under /u/ (bundlePaths).
var serveBundle = func() string {
	ep := func(module, fn, mode string, policies ...string) map[string]any {
		return map[string]any{"js_module": module, "js_function": fn, "mode": mode, "forwarding_required": "sometimes", "authn_policies": policies}
	}
	b := map[string]any{
		"metadata": map[string]any{"endpoints": map[string]any{
			"/content":               map[string]any{"get": ep("test.js", "content", "readonly", "no_auth")},
			"/u/echo/{name}":         map[string]any{"post": ep("app.js", "echo", "readonly", "user_cert")},
			"/u/counter/{key}":       map[string]any{"put": ep("app.js", "increment", "readwrite", "user_cert"), "get": ep("app.js", "counter", "readonly", "user_cert", "jwt")},
			"/u/sneaky":              map[string]any{"get": ep("app.js", "sneaky", "readonly", "user_cert")},
			"/u/admin-only":          map[string]any{"get": ep("app.js", "adminOnly", "readonly", "user_cert")},
			"/u/members":             map[string]any{"get": ep("app.js", "hello", "readonly", "member_cert")},
			"/u/throw":               map[string]any{"get": ep("app.js", "boom", "readonly", "no_auth")},
			"/u/loop":                map[string]any{"get": ep("app.js", "loop", "readonly", "no_auth")},
			"/u/bin":                 map[string]any{"get": ep("app.js", "bin", "readonly", "any_cert")},
			"/u/refused-write/{key}": map[string]any{"put": ep("app.js", "refusedWrite", "readwrite", "user_cert")},
			"/transactions":          map[string]any{"get": ep("app.js", "hello", "readonly", "no_auth")},
			"/u/forced-write/{key}":  map[string]any{"put": ep("app.js", "forcedWrite", "readwrite", "user_cert")},
			"/u/claims":              map[string]any{"put": ep("app.js", "claims", "readwrite", "user_cert")},
			"/u/bad-claims":          map[string]any{"put": ep("app.js", "badClaims", "readwrite", "user_cert")},
			"/u/whoami-rw":           map[string]any{"put": ep("app.js", "whoamiWrite", "readwrite", "user_cert")},
		}},
		"modules": []map[string]string{
			{"name": "test.js", "module": "import { foo } from \"./baz/baz.js\";\nexport function content(request) {\n  return { statusCode: 200, body: { payload: foo() } };\n}"},
			{"name": "baz/baz.js", "module": "export function foo() {\n  return \"Test content\";\n}"},
			{"name": "app.js", "module": appModule},
		},
	}
	data, _ := json.Marshal(b)
	return string(data)
}()

const appModule = `
const counters = "public:app.counters";
const rolesTable = "public:confidentialledger.roles.user_roles_mapping";

function callerUserId(request) {
  // ACL's banking sample: the user id is the certificate's fingerprint,
  // upper-case and colon-separated.
  const hex = ccf.pemToId(request.caller.cert).toUpperCase();
  return hex.match(/.{2}/g).join(":");
}

export function echo(request) {
  return { statusCode: 201, headers: { "x-echo": request.params.name },
    body: { name: request.params.name, query: request.query, method: request.method, route: request.route,
      path: request.path, json: request.body.json(), text: request.body.text(),
      bytes: request.body.arrayBuffer().byteLength, policy: request.caller.policy, id: request.caller.id,
      certId: ccf.pemToId(request.caller.cert), contentType: request.headers["content-type"] } };
}

function read(key) {
  const v = ccf.kv[counters].get(ccf.strToBuf(key));
  return v === undefined ? 0 : Number(ccf.bufToStr(v));
}

export function increment(request) {
  const n = read(request.params.key) + 1;
  ccf.kv[counters].set(ccf.strToBuf(request.params.key), ccf.strToBuf(String(n)));
  return { body: { value: n } };
}

export function counter(request) {
  return { body: { value: read(request.params.key), policy: request.caller.policy } };
}

export function sneaky(request) {
  ccf.kv[counters].set(ccf.strToBuf("sneaky"), ccf.strToBuf("1"));
  return { body: "wrote" };
}

export function refusedWrite(request) {
  ccf.kv[counters].set(ccf.strToBuf(request.params.key), ccf.strToBuf("99"));
  return { statusCode: 400, body: "refused" };
}

export function adminOnly(request) {
  const id = callerUserId(request);
  const roles = ccf.kv[rolesTable].get(ccf.strToBuf(JSON.stringify(id)));
  if (roles === undefined || !JSON.parse(ccf.bufToStr(roles)).includes("Administrator")) {
    return { statusCode: 403, body: { error: { code: "Forbidden", message: "Administrators only" } } };
  }
  return { body: { ok: true, roles: JSON.parse(ccf.bufToStr(roles)) } };
}

export function forcedWrite(request) {
  ccf.kv[counters].set(ccf.strToBuf(request.params.key), ccf.strToBuf("7"));
  ccf.rpc.setApplyWrites(true);
  return { statusCode: 409, body: "conflict, but written" };
}

export function whoamiWrite(request) {
  return { body: { certId: ccf.pemToId(request.caller.cert), id: request.caller.id } };
}

export function claims(request) {
  const claim = request.body.text();
  ccf.kv[counters].set(ccf.strToBuf("claimed"), ccf.strToBuf(claim));
  ccf.rpc.setClaimsDigest(ccf.crypto.digest("SHA-256", ccf.strToBuf(claim)));
  return { body: "claimed" };
}

export function badClaims(request) {
  ccf.kv[counters].set(ccf.strToBuf("bad-claims"), ccf.strToBuf("1"));
  ccf.rpc.setClaimsDigest(ccf.crypto.digest("SHA-384", ccf.strToBuf("x")));
  return { body: "unreachable" };
}

export function hello(request) { return { body: { hello: request.caller.policy } }; }

export function boom(request) { throw new Error("boom: secret detail"); }

export function loop(request) { for (;;) {} }

export function bin(request) {
  const b = new Uint8Array([0, 1, 2, 255]);
  return { body: b.buffer };
}
`

// TestUserDefinedEndpointsServe: an installed bundle's endpoints are
// served under /app with the request object (params, query, body, caller)
// and the response object (status, headers, JSON/text/binary body); a
// readwrite endpoint's ccf.kv writes commit as one transaction whose id it
// answers and a readonly endpoint sees them; a readonly endpoint cannot
// write; each endpoint admits only callers of its policies; a role check
// in the bundle refuses a caller without the role; a throwing or looping
// function is answered 500 and the node keeps serving; built-in routes win.
func TestUserDefinedEndpointsServe(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.admin.do("PUT", q(ude, v2024), serveBundle).expect(201, "")

	// ACL's sample: no_auth, an imported module.
	r := e.anonymous.get("/app/content").expect(200, "")
	if string(r.body) != `{"payload":"Test content"}` || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("/app/content: %s %q", r.body, r.header.Get("Content-Type"))
	}

	// The request object.
	r = e.reader.do("POST", "/app/u/echo/alice%20b?x=1&y=2", `{"a":[1,2]}`).expect(201, "")
	var echo map[string]any
	r.decode(&echo)
	wantID := strings.ToLower(strings.ReplaceAll(e.reader.id, ":", ""))
	for k, want := range map[string]any{"name": "alice b", "query": "x=1&y=2", "method": "POST", "route": "/app/u/echo/{name}",
		"path": "/app/u/echo/alice b", "text": `{"a":[1,2]}`, "bytes": float64(11), "policy": "user_cert", "id": wantID,
		"certId": wantID, "contentType": "application/json"} {
		if !reflect.DeepEqual(echo[k], want) {
			t.Errorf("request.%s = %#v, want %#v", k, echo[k], want)
		}
	}
	if !reflect.DeepEqual(echo["json"], map[string]any{"a": []any{float64(1), float64(2)}}) || r.header.Get("x-echo") != "alice b" {
		t.Errorf("echo %v, x-echo %q", echo, r.header.Get("x-echo"))
	}

	// Policies: user_cert admits users only; member_cert members only;
	// any_cert any certificate.
	e.stranger.do("POST", "/app/u/echo/x", `{}`).expect(401, "InvalidAuthenticationInfo")
	e.anonymous.do("POST", "/app/u/echo/x", `{}`).expect(401, "InvalidAuthenticationInfo")
	e.reader.get("/app/u/members").expect(401, "InvalidAuthenticationInfo")
	if got := e.member.get("/app/u/members").expect(200, "").object(); got["hello"] != "member_cert" {
		t.Errorf("member: %v", got)
	}
	r = e.stranger.get("/app/u/bin").expect(200, "")
	if !reflect.DeepEqual(r.body, []byte{0, 1, 2, 255}) || r.header.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("bin: %v %q", r.body, r.header.Get("Content-Type"))
	}
	e.anonymous.get("/app/u/bin").expect(401, "InvalidAuthenticationInfo")

	// A readwrite endpoint's write is one transaction, visible to a
	// readonly endpoint.
	r = e.contributor.do("PUT", "/app/u/counter/a", nil).expect(200, "")
	first := r.txid()
	if got := r.object()["value"]; got != float64(1) {
		t.Fatalf("first increment: %v", got)
	}
	r = e.reader.do("PUT", "/app/u/counter/a", nil).expect(200, "")
	if got := r.object()["value"]; got != float64(2) || r.txid().Seqno <= first.Seqno {
		t.Fatalf("second increment: %v at %s after %s", got, r.txid(), first)
	}
	e.commit(r.txid())
	if v, ok := e.node.Reader.State().Get("public:app.counters", []byte("a")); !ok || string(v) != "2" {
		t.Fatalf("the ledger's state holds %q %v", v, ok)
	}
	if got := e.reader.get("/app/u/counter/a").expect(200, "").object(); got["value"] != float64(2) || got["policy"] != "user_cert" {
		t.Fatalf("readonly read: %v", got)
	}
	// A readonly endpoint cannot write; an error answer writes nothing.
	e.reader.get("/app/u/sneaky").expect(500, "InternalError")
	e.reader.do("PUT", "/app/u/refused-write/a", nil).expect(400, "")
	if got := e.reader.get("/app/u/counter/a").object()["value"]; got != float64(2) {
		t.Fatalf("after refused writes: %v", got)
	}
	if _, ok := e.node.Reader.State().Get("public:app.counters", []byte("sneaky")); ok {
		t.Fatal("a readonly endpoint wrote")
	}

	// A role check in the bundle (ACL's role tables): a Reader is refused,
	// an Administrator served.
	e.reader.get("/app/u/admin-only").expect(403, "Forbidden")
	e.contributor.get("/app/u/admin-only").expect(403, "Forbidden")
	if got := e.admin.get("/app/u/admin-only").expect(200, "").object(); got["ok"] != true {
		t.Fatalf("admin-only: %v", got)
	}

	// A thrown exception: 500, details only when asked for.
	r = e.anonymous.get("/app/u/throw").expect(500, "InternalError")
	if strings.Contains(r.errorMessage(), "secret detail") {
		t.Fatalf("exception details returned by default: %s", r.errorMessage())
	}
	e.admin.do("PATCH", q(ude+"/runtimeOptions", v2024), `{"return_exception_details":true,"max_execution_time_ms":200}`).expect(200, "")
	if r = e.anonymous.get("/app/u/throw").expect(500, "InternalError"); !strings.Contains(r.errorMessage(), "boom: secret detail") {
		t.Fatalf("with return_exception_details: %s", r.errorMessage())
	}
	// A loop is stopped at max_execution_time_ms; the node keeps serving.
	start := time.Now()
	if r = e.anonymous.get("/app/u/loop").expect(500, "InternalError"); !strings.Contains(r.errorMessage(), "too long") {
		t.Fatalf("loop: %s", r.errorMessage())
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("the loop ran %v", d)
	}
	e.anonymous.get("/app/content").expect(200, "")
	e.contributor.do("PUT", "/app/u/counter/b", nil).expect(200, "")

	// Routing: a wrong method is 405 with the route's methods; a path the
	// bundle does not declare is 404; built-in routes win.
	r = e.reader.do("DELETE", "/app/u/counter/a", nil).expect(405, "UnsupportedHttpVerb")
	if r.header.Get("Allow") != "GET, PUT" {
		t.Errorf("Allow %q", r.header.Get("Allow"))
	}
	e.reader.get("/app/u/nope").expect(404, "ResourceNotFound")
	e.reader.get("/app/u/echo/a/b").expect(404, "ResourceNotFound")
	if got := e.reader.get(q("/app/transactions", v2022)).expect(200, "").object(); got["hello"] != nil {
		t.Fatalf("the bundle's /transactions shadowed the built-in route: %v", got)
	}
}

// TestUserDefinedEndpointsMissingExport: a bundle whose endpoint names a
// function its module does not export, or whose module does not compile,
// is refused with 400 and nothing is installed.
func TestUserDefinedEndpointsMissingExport(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := func(src string) string {
		data, _ := json.Marshal(map[string]any{
			"metadata": map[string]any{"endpoints": map[string]any{"/u/x": map[string]any{"get": map[string]any{
				"js_module": "a.js", "js_function": "f", "forwarding_required": "never", "authn_policies": []string{"no_auth"}}}}},
			"modules": []map[string]string{{"name": "a.js", "module": src}},
		})
		return string(data)
	}
	for src, want := range map[string]string{
		"export function g() {}":         `does not export a function "f"`,
		"export const f = 1;":            `does not export a function "f"`,
		"export function f( {":           "do not compile",
		"import { h } from './nope.js';": "does not load",
		"throw new Error('at load');":    "does not load",
	} {
		r := e.admin.do("PUT", q(ude, v2024), b(src)).expect(400, "InvalidBundle")
		if !strings.Contains(r.errorMessage(), want) {
			t.Errorf("%s: %q, want %q", src, r.errorMessage(), want)
		}
	}
	e.anonymous.get("/app/u/x").expect(404, "ResourceNotFound")
}

// TestUserDefinedEndpointsConcurrentWrites: concurrent calls of a readwrite
// endpoint that reads a counter and writes it plus one lose no update:
// each call reads and writes in one transaction of the executor (it would
// lose updates if the function ran against the state outside node.Exec).
func TestUserDefinedEndpointsConcurrentWrites(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.admin.do("PUT", q(ude, v2024), serveBundle).expect(201, "")
	const workers, each = 4, 10
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if r := e.contributor.do("PUT", "/app/u/counter/shared", nil); r.status != 200 {
					t.Errorf("increment: %d %s", r.status, r.body)
				}
			}
		}()
	}
	wg.Wait()
	if got := e.reader.get("/app/u/counter/shared").expect(200, "").object()["value"]; got != float64(workers*each) {
		t.Fatalf("counter %v after %d increments", got, workers*each)
	}
}

// TestUserDefinedEndpointsJWT: the jwt policy admits a valid bearer token
// of a trusted issuer and gives the function its claims
// (request.caller.jwt); a token that does not verify, or none, is 401.
func TestUserDefinedEndpointsJWT(t *testing.T) {
	issuer := authtest.NewIssuer(t, "ES256")
	v, err := auth.NewJWTVerifier([]auth.IssuerConfig{{Issuer: authtest.IssuerURL, Audience: authtest.Audience, JWKSFile: issuer.JWKSFile(t)}},
		auth.JWTOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{jwt: v})
	bundle := `{"metadata":{"endpoints":{"/u/whoami":{"get":{"js_module":"a.js","js_function":"whoami","mode":"readonly","forwarding_required":"never","authn_policies":["jwt"]}}}},` +
		`"modules":[{"name":"a.js","module":"export function whoami(request) {\n  const j = request.caller.jwt;\n  return { body: { policy: request.caller.policy, oid: j.payload.oid, iss: j.keyIssuer, alg: j.header.alg } };\n}"}]}`
	e.admin.do("PUT", q(ude, v2024), bundle).expect(201, "")
	const oid = "6696d1bc-6012-47da-8556-ab4c747999c9"
	c := authtest.Claims(authtest.IssuerURL, authtest.Audience, oid, time.Now())
	got := e.withBearer(issuer.Sign(c)).get("/app/u/whoami").expect(200, "").object()
	want := map[string]any{"policy": "jwt", "oid": oid, "iss": authtest.IssuerURL, "alg": "ES256"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("caller %v, want %v", got, want)
	}
	c["aud"] = "someone-else"
	e.withBearer(issuer.Sign(c)).get("/app/u/whoami").expect(401, "InvalidAuthenticationInfo")
	e.anonymous.get("/app/u/whoami").expect(401, "InvalidAuthenticationInfo")
	e.reader.get("/app/u/whoami").expect(401, "InvalidAuthenticationInfo") // a certificate is not a token
}

// TestForwardedUserDefinedEndpoint: a backup forwards a bundle endpoint's
// request with the principal it authenticated and the client's
// certificate, so the primary's function sees request.caller.cert; a
// certificate that is not the principal's is refused, and without one the
// id is still the principal's.
func TestForwardedUserDefinedEndpoint(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.admin.do("PUT", q(ude, v2024), serveBundle).expect(201, "")
	b := forwardingPeer(t, e)
	forward := func(cred *credential, certDER []byte) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequest("POST", api.ForwardedPrefix+"/app/u/echo/fwd", strings.NewReader(`{"a":1}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Ledgerd-Forwarded-Principal", `{"kind":"certificate","id":"`+cred.userID()+`"}`)
		if certDER != nil {
			req.Header.Set("X-Ledgerd-Forwarded-Cert", base64.StdEncoding.EncodeToString(certDER))
		}
		resp, err := b.Do(t.Context(), 1, req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	readerCred := e.reader.cred
	status, body := forward(readerCred, readerCred.der)
	wantID := strings.ToLower(strings.ReplaceAll(readerCred.userID(), ":", ""))
	if status != 201 || body["certId"] != wantID || body["id"] != wantID || body["policy"] != "user_cert" {
		t.Fatalf("forwarded with the certificate: %d %v", status, body)
	}
	if status, body := forward(readerCred, e.admin.cred.der); status != 401 {
		t.Fatalf("forwarded with another's certificate: %d %v", status, body)
	}
	// Without the certificate the principal still identifies the user, but
	// a function that reads the certificate throws.
	if status, _ := forward(readerCred, nil); status != 500 {
		t.Fatalf("forwarded without the certificate: %d", status)
	}
}

// TestHowToRuntimeOptions: the runtime options ACL's how-to PATCHes
// (max_heap_bytes and max_stack_bytes 1024, 2,000 ms) are accepted, and a
// bundle's endpoints keep answering under them, concurrently with writes.
func TestHowToRuntimeOptions(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.admin.do("PUT", q(ude, v2024), serveBundle).expect(201, "")
	howTo := `{"max_heap_bytes":1024,"max_stack_bytes":1024,"max_execution_time_ms":2000,"log_exception_details":false,"return_exception_details":false,"max_cached_interpreters":1024}`
	e.admin.do("PATCH", q(ude+"/runTimeOptions", "2024-08-22-preview"), howTo, "Content-Type", "application/merge-patch+json").expect(200, "")
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				if r := e.contributor.do("PUT", "/app/u/counter/howto", nil); r.status != 200 {
					t.Errorf("increment: %d %s", r.status, r.body)
				}
				if r := e.anonymous.do("GET", "/app/content", nil); r.status != 200 {
					t.Errorf("content: %d %s", r.status, r.body)
				}
			}
		}()
	}
	wg.Wait()
}

// TestHowToRoles: the roles ACL's user-defined endpoint how-to creates, two
// in one PUT /app/roles, are created (each role was a write of the roles
// map, and a write set that names a map twice could not be serialised:
// 500 without mergeWrites).
func TestHowToRoles(t *testing.T) {
	e := newEnv(t, envOptions{})
	roleActions := `{"roles":[{"role_name":"manager","role_actions":["/banking/accounts/post","/banking/accounts/put","/banking/accounts/get","/banking/accounts/patch"]},{"role_name":"teller","role_actions":["/banking/accounts/put","/banking/accounts/get","/banking/accounts/patch"]}]}`
	e.admin.do("PUT", q("/app/roles", "2024-08-22-preview"), roleActions).expect(200, "")
	for _, name := range []string{"manager", "teller"} {
		if r := e.admin.get(q("/app/roles", "2024-08-22-preview", "roleName", name)); r.status != 200 || !strings.Contains(string(r.body), name) {
			t.Errorf("role %s: %d %s", name, r.status, r.body)
		}
	}
}

// TestApplyWrites: ccf.rpc.setApplyWrites(true) applies a readwrite call's
// writes although it answers an error status (CCF's rule otherwise: writes
// of 2xx answers only).
func TestApplyWrites(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.admin.do("PUT", q(ude, v2024), serveBundle).expect(201, "")
	e.reader.do("PUT", "/app/u/forced-write/f", nil).expect(409, "")
	if got := e.reader.get("/app/u/counter/f").expect(200, "").object()["value"]; got != float64(7) {
		t.Fatalf("after setApplyWrites(true) and a 409: %v", got)
	}
}

// TestSetClaimsDigest: a readwrite endpoint's ccf.rpc.setClaimsDigest sets
// its transaction's claims digest (CCF's claims): the receipt of the
// transaction id it answers verifies (receipt.Verify) with that digest as
// leafComponents.claimsDigest, the SHA-256 of the claim the endpoint
// hashed, and has no applicationClaims (it writes no ledger entry). A
// digest that is not 32 bytes fails the call (500, the message with
// return_exception_details) and writes nothing.
func TestSetClaimsDigest(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.admin.do("PUT", q(ude, v2024), serveBundle).expect(201, "")
	const claim = "alice sent 5 to bob"
	r := e.reader.do("PUT", "/app/u/claims", claim).expect(200, "")
	id, err := node.ParseTxID(r.header.Get("x-ms-ccf-transaction-id"))
	if err != nil {
		t.Fatal(err)
	}
	e.commit(id)
	body := e.reader.get(q("/app/transactions/"+id.String()+"/receipt", v2024)).expect(200, "").body
	rc, err := receipt.Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := receipt.ParseCertificatePEM(e.ids.Service.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Verify(cert); err != nil {
		t.Fatalf("receipt of the endpoint's transaction: %v", err)
	}
	want := sha256.Sum256([]byte(claim))
	if err := rc.VerifyClaimsDigest(want); err != nil {
		t.Fatalf("claims digest %s: %v", rc.LeafComponents.ClaimsDigest, err)
	}
	if err := rc.VerifyClaimsDigest(sha256.Sum256([]byte("alice sent 6 to bob"))); !errors.Is(err, receipt.ErrClaimsMismatch) {
		t.Fatalf("another claim: %v, want ErrClaimsMismatch", err)
	}
	if _, ok := e.reader.get(q("/app/transactions/"+id.String()+"/receipt", v2024)).object()["applicationClaims"]; ok {
		t.Fatalf("applicationClaims for a transaction without a ledger entry: %s", body)
	}

	// A wrong-length digest: the call fails and writes nothing.
	e.admin.do("PATCH", q(ude+"/runtimeOptions", v2024), `{"return_exception_details":true}`).expect(200, "")
	r = e.reader.do("PUT", "/app/u/bad-claims", nil).expect(500, "InternalError")
	if msg := r.errorMessage(); !strings.Contains(msg, "setClaimsDigest: the digest is 48 bytes, a claims digest is 32") {
		t.Fatalf("wrong-length digest: %s", msg)
	}
	if got := e.reader.get("/app/u/counter/bad-claims").expect(200, "").object()["value"]; got != float64(0) {
		t.Fatalf("the failed call wrote: %v", got)
	}
}

// TestForwardedLargeBundle: a bundle larger than MaxBodyBytes, forwarded
// by a backup as an Administrator's PUT, is installed by the primary.
func TestForwardedLargeBundle(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := forwardingPeer(t, e)
	big := `{"metadata":{"endpoints":{"/u/big":{"get":{"js_module":"a.js","js_function":"f","mode":"readonly","forwarding_required":"never","authn_policies":["no_auth"]}}}},` +
		`"modules":[{"name":"a.js","module":"// ` + strings.Repeat("x", api.MaxBodyBytes+1000) + `\nexport function f() { return { body: 'big' }; }"}]}`
	req, err := http.NewRequest("PUT", api.ForwardedPrefix+q(ude, v2024), strings.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Ledgerd-Forwarded-Principal", `{"kind":"certificate","id":"`+e.admin.id+`"}`)
	resp, err := b.Do(t.Context(), 1, req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("forwarded large bundle: %d", resp.StatusCode)
	}
	if r := e.anonymous.get("/app/u/big").expect(200, ""); string(r.body) != "big" {
		t.Fatalf("big: %s", r.body)
	}
}

// TestUserDefinedEndpointsInCluster: in a three-node network, a bundle
// installed on the primary is served by a backup; a readwrite call made to
// the backup is forwarded to the primary (with the caller's certificate,
// which the function reads) and answered with the primary's transaction
// id, and the same connection reads its write back.
func TestUserDefinedEndpointsInCluster(t *testing.T) {
	w := newCluster3(t)
	primary, backup := w.envs[0], w.envs[2]
	waitFor(t, "node 1 to lead", primary.node.IsPrimary)
	waitFor(t, "node 3 to know the primary", func() bool { return backup.node.Reader.RaftInfo().Leader == 1 })
	id := primary.admin.do("PUT", q(ude, v2024), serveBundle).expect(201, "").txid()
	backup.commit(id)

	backup.anonymous.get("/app/content").expect(200, "") // readonly: the backup serves it
	r := backup.contributor.do("PUT", "/app/u/counter/net", nil).expect(200, "")
	if got := r.object()["value"]; got != float64(1) {
		t.Fatalf("forwarded increment: %v", got)
	}
	// The answer's transaction id is the primary's: it commits there, in
	// that view. (Not LastSeqno: the primary answers once it has sequenced
	// the write, before its own ledger append, which it overlaps with
	// replication.)
	primary.commit(r.txid())
	if got := backup.contributor.get("/app/u/counter/net").expect(200, "").object()["value"]; got != float64(1) {
		t.Fatalf("read back on the same connection: %v", got)
	}
	who := backup.reader.do("PUT", "/app/u/whoami-rw", nil).expect(200, "").object()
	wantID := strings.ToLower(strings.ReplaceAll(backup.reader.id, ":", ""))
	if who["certId"] != wantID || who["id"] != wantID {
		t.Fatalf("the forwarded caller: %v, want %s", who, wantID)
	}
}

// TestUserDefinedEndpointsInterpreterReuse: CCF's semantics. An endpoint
// without interpreter_reuse sees a fresh interpreter in every request (a
// module-level counter is 1 every time, a global or patched intrinsic set
// by one request is not seen by the next), though runtimes are pooled; the
// endpoints declaring "interpreter_reuse": {"key": "k"} share the state of
// their runtime (sequential requests take the one idle runtime, so the
// counter goes on); max_cached_interpreters 0 is a fresh runtime per call
// even for them.
func TestUserDefinedEndpointsInterpreterReuse(t *testing.T) {
	e := newEnv(t, envOptions{})
	ep := func(fn string, reuse any) map[string]any {
		m := map[string]any{"js_module": "app.js", "js_function": fn, "mode": "readonly", "forwarding_required": "never", "authn_policies": []string{"no_auth"}}
		if reuse != nil {
			m["interpreter_reuse"] = reuse
		}
		return m
	}
	bundle := map[string]any{
		"metadata": map[string]any{"endpoints": map[string]any{
			"/fresh":   map[string]any{"get": ep("count", nil)},
			"/reused":  map[string]any{"get": ep("count", map[string]any{"key": "k"})},
			"/reused2": map[string]any{"get": ep("count", map[string]any{"key": "k"})},
		}},
		"modules": []map[string]string{{"name": "app.js", "module": `let n = 0;
export function count(request) {
  n++;
  const seen = [typeof globalThis.secret, typeof [].leak].join(",");
  globalThis.secret = request.path;
  Array.prototype.leak = request.path;
  return { body: { v: n + ":" + seen } };
}`}},
	}
	e.admin.do("PUT", q(ude, v2024), bundle).expect(201, "")
	get := func(path string) string {
		t.Helper()
		v, _ := e.anonymous.get(path).expect(200, "").object()["v"].(string)
		return v
	}
	for range 3 {
		if got := get("/app/fresh"); got != "1:undefined,undefined" {
			t.Fatalf("/app/fresh: %s, want 1:undefined,undefined every time", got)
		}
	}
	if a, b, c := get("/app/reused"), get("/app/reused2"), get("/app/reused"); a != "1:undefined,undefined" || b != "2:string,string" || c != "3:string,string" {
		t.Fatalf("reused: %s %s %s, want the state shared by the key", a, b, c)
	}
	if got := get("/app/fresh"); got != "1:undefined,undefined" {
		t.Fatalf("/app/fresh after the reused ones: %s", got)
	}
	e.admin.do("PATCH", q(ude+"/runtimeOptions", v2024), map[string]any{"max_cached_interpreters": 0}).expect(200, "")
	if a, b := get("/app/reused"), get("/app/reused"); a != "1:undefined,undefined" || b != a {
		t.Fatalf("reused with max_cached_interpreters 0: %s %s, want fresh runtimes", a, b)
	}
}
