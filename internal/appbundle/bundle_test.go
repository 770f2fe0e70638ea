package appbundle

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// sample is written to the shape of ACL's sample bundle
// (azureconfidentialledger-app-samples, "UDE Sample bundle"): a module
// that imports another by a relative path.
const sample = `{
  "metadata": {"endpoints": {
    "/content": {"get": {"js_module": "test.js", "js_function": "content", "forwarding_required": "never",
      "redirection_strategy": "none", "authn_policies": ["no_auth"], "mode": "readonly", "openapi": {}}},
    "/account/{account_name}": {"put": {"js_module": "/endpoints/banking.js", "js_function": "createAccount",
      "forwarding_required": "always", "authn_policies": ["any_cert", "jwt"]}}
  }},
  "modules": [
    {"name": "test.js", "module": "import { foo } from \"./baz/baz.js\";\nexport function content(request) { return { body: { payload: foo() } }; }"},
    {"name": "baz/baz.js", "module": "export function foo() { return \"Test content\"; }"},
    {"name": "endpoints/banking.js", "module": "export function createAccount() { return {}; }"}
  ]
}`

func TestParseSample(t *testing.T) {
	b, err := Parse([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	ep := b.Metadata.Endpoints["/account/{account_name}"]["put"]
	if ep.Mode != ModeReadWrite {
		t.Fatalf("default mode %q, want readwrite (CCF's default)", ep.Mode)
	}
	if m, ok := b.Module("/baz/baz.js"); !ok || !strings.Contains(m.Module, "Test content") {
		t.Fatalf("module lookup with a leading /: %v %v", m, ok)
	}
	// The canonical encoding parses to the same bundle.
	again, err := Parse(b.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again, b) {
		t.Fatalf("re-parsed bundle differs:\n%+v\n%+v", again, b)
	}
	// The swagger's ModuleDef_array is typed "object": one module object is
	// accepted as a list of one.
	one := `{"metadata":{"endpoints":{"/x":{"get":{"js_module":"a.js","js_function":"f","forwarding_required":"never","authn_policies":["no_auth"]}}}},"modules":{"name":"a.js","module":"export function f(){}"}}`
	if _, err := Parse([]byte(one)); err != nil {
		t.Fatal(err)
	}
}

func TestParseRefusals(t *testing.T) {
	ep := func(props string) string {
		return `{"metadata":{"endpoints":{"/x":{"get":{` + props + `}}}},"modules":[{"name":"a.js","module":"export function f(){}"}]}`
	}
	ok := `"js_module":"a.js","js_function":"f","forwarding_required":"never","authn_policies":["user_cert"]`
	if _, err := Parse([]byte(ep(ok))); err != nil {
		t.Fatalf("the base case must parse: %v", err)
	}
	cases := []struct{ name, bundle, want string }{
		{"not json", `{"metadata":`, "not valid JSON"},
		{"no modules", `{"metadata":{"endpoints":{}}}`, `no "modules"`},
		{"unknown top field", `{"metadata":{"endpoints":{}},"modules":[],"x":1}`, `Unknown field "x"`},
		{"unknown module", ep(strings.Replace(ok, `"a.js"`, `"b.js"`, 1)), `module "b.js" is not in the bundle`},
		{"no function", ep(strings.Replace(ok, `"js_function":"f",`, "", 1)), `"js_function" is missing`},
		{"bad function name", ep(strings.Replace(ok, `"f"`, `"f()"`, 1)), "not a JavaScript identifier"},
		{"bad method", strings.Replace(ep(ok), `"get"`, `"fetch"`, 1), `method "fetch" is not supported`},
		{"upper-case method", strings.Replace(ep(ok), `"get"`, `"GET"`, 1), `method "GET" is not supported`},
		{"bad mode", ep(ok + `,"mode":"writeonly"`), `"mode" "writeonly"`},
		{"no forwarding", ep(strings.Replace(ok, `"forwarding_required":"never",`, "", 1)), `"forwarding_required" is missing`},
		{"no policies", ep(strings.Replace(ok, `"user_cert"`, "", 1)), `"authn_policies" is missing or empty`},
		{"empty policy object", ep(strings.Replace(ok, `"user_cert"`, `{}`, 1)), "not supported"},
		{"all_of of an unknown policy", ep(strings.Replace(ok, `"user_cert"`, `{"all_of":["user_cert","user_cose_sign1"]}`, 1)), `"user_cose_sign1" is not supported`},
		{"all_of twice a policy", ep(strings.Replace(ok, `"user_cert"`, `{"all_of":["jwt","user_cert","jwt"]}`, 1)), `lists "jwt" twice`},
		{"all_of empty", ep(strings.Replace(ok, `"user_cert"`, `{"all_of":[]}`, 1)), "non-empty array"},
		{"all_of nested", ep(strings.Replace(ok, `"user_cert"`, `{"all_of":[{"all_of":["jwt"]}]}`, 1)), "non-empty array of policy names"},
		{"all_of and more", ep(strings.Replace(ok, `"user_cert"`, `{"all_of":["jwt"],"x":1}`, 1)), "not supported"},
		{"all_of listed twice", ep(strings.Replace(ok, `"user_cert"`, `{"all_of":["jwt","user_cert"]},{"all_of":["user_cert","jwt"]}`, 1)), `"jwt+user_cert" is listed twice`},
		{"unknown policy", ep(strings.Replace(ok, `"user_cert"`, `"user_cose_sign1"`, 1)), `"user_cose_sign1" is not supported`},
		{"policy twice", ep(strings.Replace(ok, `"user_cert"`, `"jwt","jwt"`, 1)), "listed twice"},
		{"unknown property", ep(ok + `,"js_modul":"a.js"`), `unknown property "js_modul"`},
		{"duplicate method key", `{"metadata":{"endpoints":{"/x":{"get":{` + ok + `},"get":{` + ok + `}}}},"modules":[{"name":"a.js","module":""}]}`, `member "get" twice`},
		{"duplicate path key", `{"metadata":{"endpoints":{"/x":{"get":{` + ok + `}},"/x":{"get":{` + ok + `}}}},"modules":[{"name":"a.js","module":""}]}`, `member "/x" twice`},
		{"same route", `{"metadata":{"endpoints":{"/x/{a}":{"get":{` + ok + `}},"/x/{b}":{"get":{` + ok + `}}}},"modules":[{"name":"a.js","module":""}]}`, "same route"},
		{"relative path", strings.Replace(ep(ok), `"/x"`, `"x"`, 1), `must start with "/"`},
		{"trailing slash", strings.Replace(ep(ok), `"/x"`, `"/x/"`, 1), "empty segment"},
		{"partial param", strings.Replace(ep(ok), `"/x"`, `"/x{id}"`, 1), "whole segment"},
		{"param twice", strings.Replace(ep(ok), `"/x"`, `"/{id}/{id}"`, 1), "twice"},
		{"query in path", strings.Replace(ep(ok), `"/x"`, `"/x?y"`, 1), "may not hold"},
		{"duplicate module", `{"metadata":{"endpoints":{}},"modules":[{"name":"a.js","module":""},{"name":"/a.js","module":""}]}`, "appears twice"},
		{"dotdot module", `{"metadata":{"endpoints":{}},"modules":[{"name":"../a.js","module":""}]}`, "clean relative path"},
		{"module without source", `{"metadata":{"endpoints":{}},"modules":[{"name":"a.js"}]}`, `has no "module"`},
		{"too large", `{"metadata":{"endpoints":{}},"modules":[{"name":"a.js","module":"` + strings.Repeat("x", MaxBundleBytes) + `"}]}`, "at most"},
		{"no method", strings.Replace(ep(ok), `{"get":{`+ok+`}}`, `{}`, 1), "declares no method"},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.bundle))
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		if _, isBundleErr := err.(*Error); !isBundleErr || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an *Error containing %q", c.name, err, c.want)
		}
	}
}

func TestRouter(t *testing.T) {
	props := `{"js_module":"a.js","js_function":"f","forwarding_required":"never","authn_policies":["no_auth"]}`
	paths := []string{"/a/b", "/a/{x}", "/a/{x}/c", "/a/b/{y}", "/{z}/b/c", "/"}
	var eps []string
	for _, p := range paths {
		eps = append(eps, `"`+p+`":{"get":`+props+`}`)
	}
	b, err := Parse([]byte(`{"metadata":{"endpoints":{` + strings.Join(eps, ",") + `}},"modules":[{"name":"a.js","module":""}]}`))
	if err != nil {
		t.Fatal(err)
	}
	r := NewRouter(b)
	cases := []struct {
		path, route string
		params      map[string]string
	}{
		{"/a/b", "/a/b", nil},
		{"/a/hello%20world", "/a/{x}", map[string]string{"x": "hello world"}},
		{"/a/b/c", "/a/b/{y}", map[string]string{"y": "c"}}, // the literal b beats {x}, and /a/b/{y} beats /{z}/b/c
		{"/a/q/c", "/a/{x}/c", map[string]string{"x": "q"}},
		{"/q/b/c", "/{z}/b/c", map[string]string{"z": "q"}},
		{"/", "/", nil},
		{"/a", "", nil},
		{"/a/", "", nil}, // an empty segment is no parameter value
		{"/a/b/c/d", "", nil},
	}
	for _, c := range cases {
		rt, params, ok := r.Match(c.path)
		if c.route == "" {
			if ok {
				t.Errorf("%s matched %s", c.path, rt.Path)
			}
			continue
		}
		if !ok || rt.Path != c.route || !reflect.DeepEqual(params, c.params) {
			t.Errorf("%s: got %v %v %v, want %s %v", c.path, rt, params, ok, c.route, c.params)
		}
	}
	if rt, _, _ := r.Match("/a/b"); !reflect.DeepEqual(rt.Allowed(), []string{"GET"}) {
		t.Errorf("allowed %v", rt.Allowed())
	}
}

func TestRuntimeOptions(t *testing.T) {
	// The spec's UpdateRuntimeOptions example, on the defaults.
	o, err := DefaultRuntimeOptions.Patch([]byte(`{"log_exception_details": false, "max_execution_time_ms": 1200}`))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultRuntimeOptions
	want.MaxExecutionTimeMs = 1200
	if o != want {
		t.Fatalf("%+v", o)
	}
	// The how-to's full options, with its 1024-byte heap and stack.
	o, err = o.Patch([]byte(`{"max_heap_bytes":1024,"max_stack_bytes":1024,"max_execution_time_ms":2000,"log_exception_details":false,"return_exception_details":true,"max_cached_interpreters":1024}`))
	if err != nil || o.MaxHeapBytes != 1024 || !o.ReturnExceptionDetails {
		t.Fatalf("%+v %v", o, err)
	}
	// null resets to the default.
	o, err = o.Patch([]byte(`{"max_heap_bytes":null,"return_exception_details":null}`))
	if err != nil || o.MaxHeapBytes != DefaultRuntimeOptions.MaxHeapBytes || o.ReturnExceptionDetails {
		t.Fatalf("%+v %v", o, err)
	}
	var back RuntimeOptions
	if err := json.Unmarshal(o.Encode(), &back); err != nil || back != o {
		t.Fatalf("round trip %+v %v", back, err)
	}
	for body, want := range map[string]string{
		`{"max_execution_time_ms":0}`:             "between",
		`{"max_execution_time_ms":60001}`:         "between",
		`{"max_heap_bytes":2147483648}`:           "between",
		`{"max_heap_bytes":-1}`:                   "non-negative integer",
		`{"max_heap_bytes":1.5}`:                  "non-negative integer",
		`{"return_exception_details":"yes"}`:      "true or false",
		`{"max_cached_interpreters":1025}`:        "between",
		`{"max_threads":1}`:                       "Unknown runtime option",
		`[1]`:                                     "JSON object",
		`{"max_heap_bytes":1024} {}`:              "after its JSON object",
		`{"max_heap_bytes":1,"max_heap_bytes":2}`: "twice",
	} {
		if _, err := DefaultRuntimeOptions.Patch([]byte(body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", body, err, want)
		}
	}
}

// CCF's all_of policy: parsed, validated, and written back as given; its
// scheme name is its sorted names joined with "+".
func TestAllOfPolicy(t *testing.T) {
	raw := `{"metadata":{"endpoints":{"/x":{"get":{"js_module":"a.js","js_function":"f","forwarding_required":"never",` +
		`"authn_policies":[{"all_of":["user_cert","jwt"]},"member_cert"]}}}},"modules":[{"name":"a.js","module":"export function f(){}"}]}`
	b, err := Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	ep := b.Metadata.Endpoints["/x"]["get"]
	if got := ep.PolicyNames(); !slices.Equal(got, []string{"jwt+user_cert", "member_cert"}) {
		t.Errorf("policies %v", got)
	}
	if got := ep.AuthnPolicies[0].Sorted(); !slices.Equal(got, []string{"jwt", "user_cert"}) {
		t.Errorf("sorted %v", got)
	}
	out, err := json.Marshal(ep.AuthnPolicies)
	if err != nil || string(out) != `[{"all_of":["user_cert","jwt"]},"member_cert"]` {
		t.Errorf("written back as %s (%v)", out, err)
	}
}
