package appjs

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/jsrt"
)

// TestEndpointRequestResponse: a *Request argument is CCF's request object
// (params, query, headers, body.text/json/arrayBuffer, caller); with
// Call.Response the return value is read as CCF's response object.
func TestEndpointRequestResponse(t *testing.T) {
	p := compile(t, `
export function echo(request) {
  return { statusCode: 202, headers: { "x-a": "b" }, body: {
    p: request.params.id, q: request.query, h: request.headers["x-h"], t: request.body.text(),
    j: request.body.json().k, n: request.body.arrayBuffer().byteLength, c: request.caller.policy,
    m: request.method, u: request.url, r: request.route } };
}
export function text() { return { body: "plain" }; }
export function bin() { return { body: new Uint8Array([1, 2]).buffer }; }
export function none() {}
export function badStatus() { return { statusCode: 99 }; }`)
	req := &Request{Method: "POST", URL: "/app/x/7?a=1", Route: "/x/{id}", Path: "/app/x/7", Query: "a=1",
		Params: map[string]string{"id": "7"}, Headers: map[string]string{"x-h": "v"}, Body: []byte(`{"k":3}`),
		Caller: json.RawMessage(`{"policy":"no_auth"}`)}
	res, err := run(t, p, Call{Function: "echo", Args: []any{req}, Response: true})
	if err != nil {
		t.Fatal(err)
	}
	r := res.Response
	var body map[string]any
	if err := json.Unmarshal(r.Body, &body); err != nil || r.Status != 202 || r.Headers["x-a"] != "b" || r.ContentType != "application/json" {
		t.Fatalf("%+v %v", r, err)
	}
	want := map[string]any{"p": "7", "q": "a=1", "h": "v", "t": `{"k":3}`, "j": float64(3), "n": float64(7), "c": "no_auth",
		"m": "POST", "u": "/app/x/7?a=1", "r": "/x/{id}"}
	if !reflect.DeepEqual(body, want) {
		t.Fatalf("body %v", body)
	}
	for fn, want := range map[string]Response{
		"text": {Status: 200, Body: []byte("plain"), ContentType: "text/plain"},
		"bin":  {Status: 200, Body: []byte{1, 2}, ContentType: "application/octet-stream"},
		"none": {Status: 200},
	} {
		res, err := run(t, p, Call{Function: fn, Response: true})
		if err != nil || !reflect.DeepEqual(*res.Response, want) {
			t.Errorf("%s: %+v %v", fn, res, err)
		}
	}
	if _, err := run(t, p, Call{Function: "badStatus", Response: true}); err == nil || !strings.Contains(err.Error(), "HTTP status") {
		t.Errorf("badStatus: %v", err)
	}
}

// TestReadOnlyCalls: with Call.ReadOnly every ccf.kv write throws; ACL's
// role tables are readable but never writable.
func TestReadOnlyCalls(t *testing.T) {
	p := compile(t, `
export function write(t) { ccf.kv[t].set(ccf.strToBuf("k"), ccf.strToBuf("v")); return 1; }
export function read(t) { const v = ccf.kv[t].get(ccf.strToBuf("k")); return v === undefined ? null : ccf.bufToStr(v); }`)
	st := jsrt.NewMemKV()
	st.Set("public:confidentialledger.roles.user_roles_mapping", []byte("k"), []byte("roles"))
	if _, err := run(t, p, Call{Function: "write", Args: []any{"public:app"}, ReadOnly: true}); err == nil || !strings.Contains(err.Error(), "readonly") {
		t.Fatalf("readonly write: %v", err)
	}
	if res, err := run(t, p, Call{Function: "write", Args: []any{"public:app"}}); err != nil || len(res.Writes) != 1 {
		t.Fatalf("write: %v %v", res, err)
	}
	if _, err := run(t, p, Call{Function: "write", Args: []any{"public:confidentialledger.roles.user_roles_mapping"}}); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("role table write: %v", err)
	}
	if res, err := run(t, p, Call{Function: "read", Args: []any{"public:confidentialledger.roles.user_roles_mapping"}, State: st}); err != nil || string(res.Value) != `"roles"` {
		t.Fatalf("role table read: %v %v", res, err)
	}
}

// TestCryptoSubset: ccf.crypto.digest and ccf.pemToId as CCF computes them.
func TestCryptoSubset(t *testing.T) {
	p := compile(t, `
export function d(s) { return Array.from(new Uint8Array(ccf.crypto.digest("SHA-256", ccf.strToBuf(s)))); }
export function id(pem) { return ccf.pemToId(pem); }
export function valid(pem) { return ccf.crypto.isValidX509CertBundle(pem); }
export function bad() { return ccf.crypto.digest("MD5", ccf.strToBuf("x")); }`)
	res, err := run(t, p, Call{Function: "d", Args: []any{"abc"}})
	sum := sha256.Sum256([]byte("abc"))
	var got []byte
	var ints []int
	if err == nil {
		err = json.Unmarshal(res.Value, &ints)
	}
	for _, i := range ints {
		got = append(got, byte(i))
	}
	if err != nil || !reflect.DeepEqual(got, sum[:]) {
		t.Fatalf("digest %v %v", ints, err)
	}
	if _, err := run(t, p, Call{Function: "bad"}); err == nil {
		t.Fatal("MD5 accepted")
	}
	der, certPEM := testCert(t)
	res, err = run(t, p, Call{Function: "id", Args: []any{certPEM}})
	want := sha256.Sum256(der)
	if err != nil || string(res.Value) != `"`+hex.EncodeToString(want[:])+`"` {
		t.Fatalf("pemToId %v %v", res, err)
	}
	if res, err := run(t, p, Call{Function: "valid", Args: []any{certPEM}}); err != nil || string(res.Value) != "true" {
		t.Fatalf("valid %v %v", res, err)
	}
	if res, err := run(t, p, Call{Function: "valid", Args: []any{"junk"}}); err != nil || string(res.Value) != "false" {
		t.Fatalf("junk %v %v", res, err)
	}
}

// TestExported lists a module's exported functions, its imports loaded.
func TestExported(t *testing.T) {
	p, err := Compile(Module{Name: "a.js", Source: "import { g } from \"./b.js\";\nexport function f() { return g(); }\nexport const n = 1;"},
		Module{Name: "b.js", Source: `export function g() { return 2; }`})
	if err != nil {
		t.Fatal(err)
	}
	funcs, err := p.Exported(context.Background(), "/a.js", Limits{})
	if err != nil || !reflect.DeepEqual(funcs, map[string]bool{"f": true}) {
		t.Fatalf("%v %v", funcs, err)
	}
	if _, err := p.Exported(context.Background(), "c.js", Limits{}); err == nil {
		t.Fatal("unknown module")
	}
}

// testCert returns a self-signed certificate's DER and PEM.
func testCert(t *testing.T) ([]byte, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "t"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// TestPool: with a reuse key (interpreter_reuse), a pooled runtime keeps
// its loaded modules (a module-level counter goes on), but not a call's
// writes or state; a failed call discards its runtime; keep 0 is a fresh
// runtime every call.
func TestPool(t *testing.T) {
	p := compile(t, `
let calls = 0;
export function count(t) {
  calls++;
  const before = ccf.kv[t].get(ccf.strToBuf("k"));
  ccf.kv[t].set(ccf.strToBuf("k"), ccf.strToBuf(String(calls)));
  return { calls: calls, before: before === undefined ? null : ccf.bufToStr(before) };
}
export function fail() { calls = 100; throw new Error("x"); }
export function loop() { for (;;) {} }`)
	pool := p.NewPool()
	ctx := context.Background()
	call := func(fn string, keep int) string {
		t.Helper()
		res, err := pool.Run(ctx, Call{Function: fn, Args: []any{"public:t"}, Reuse: "k"}, keep)
		if err != nil {
			return "error"
		}
		return string(res.Value)
	}
	if got := call("count", 1); got != `{"calls":1,"before":null}` {
		t.Fatalf("first: %s", got)
	}
	if got := call("count", 1); got != `{"calls":2,"before":null}` {
		t.Fatalf("reused runtime: %s (the write of the first call must not be seen)", got)
	}
	if call("fail", 1) != "error" {
		t.Fatal("fail did not fail")
	}
	// fail took the runtime that had counted 2 and discarded it.
	if got := call("count", 1); got != `{"calls":1,"before":null}` {
		t.Fatalf("after a failure: %s, want a fresh runtime", got)
	}
	// A call stopped by its time limit discards its runtime too, and the
	// next call is not interrupted.
	if _, err := pool.Run(ctx, Call{Function: "loop", Limits: Limits{Time: 50 * time.Millisecond}, Reuse: "k"}, 1); !errors.Is(err, ErrTimeLimit) {
		t.Fatalf("loop: %v", err)
	}
	if got := call("count", 1); got != `{"calls":1,"before":null}` {
		t.Fatalf("after a stopped call: %s, want a fresh runtime", got)
	}
	if got := call("count", 1); got != `{"calls":2,"before":null}` {
		t.Fatalf("reused again: %s", got)
	}
	if got := call("count", 0); got != `{"calls":1,"before":null}` { // not the idle runtime
		t.Fatalf("keep 0: %s", got)
	}
}
