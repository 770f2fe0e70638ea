package api_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/internal/appbundle"
	"github.com/ledgerd/ledgerd/internal/node"
	"github.com/ledgerd/ledgerd/internal/tables"
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
