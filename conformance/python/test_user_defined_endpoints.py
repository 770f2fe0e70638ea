"""User-defined endpoints (issue 12): a CCF JavaScript application bundle installed by an Administrator with
PUT /app/userDefinedEndpoints and served under /app, over real HTTPS with raw `requests` and client certificates,
shaped as ACL's how-to (advanced-user-defined-function.md: curl -X PUT .../app/userDefinedEndpoints -d @bundle.json)
and the 2024-12-09-preview swagger's examples send them. The bundle is written to the documented shape: ACL's
sample bundle ("UDE Sample bundle": /content importing ./baz/baz.js) plus endpoints that check a role the way ACL's
banking sample does (the caller's certificate fingerprint looked up in
public:confidentialledger.roles.user_roles_mapping)."""

import json
import time
import uuid

import ledgerd_support as ls

V = "2024-12-09-preview"
UDE = "/app/userDefinedEndpoints"

APP = r"""
const rolesTable = "public:confidentialledger.roles.user_roles_mapping";

function callerUserId(request) {
  // As ACL's banking sample: the caller's fingerprint, upper-case and colon-separated.
  return ccf.pemToId(request.caller.cert).toUpperCase().match(/.{2}/g).join(":");
}

function hasRole(request, role) {
  const roles = ccf.kv[rolesTable].get(ccf.strToBuf(JSON.stringify(callerUserId(request))));
  return roles !== undefined && JSON.parse(ccf.bufToStr(roles)).includes(role);
}

export function put(request) {
  if (!hasRole(request, "Contributor") && !hasRole(request, "Administrator")) {
    return { statusCode: 403, body: { error: { code: "Forbidden", message: "Contributors only" } } };
  }
  const body = request.body.json();
  ccf.kv[TABLE].set(ccf.strToBuf(request.params.key), ccf.strToBuf(JSON.stringify(body)));
  return { statusCode: 200, body: { key: request.params.key, stored: body } };
}

export function get(request) {
  const v = ccf.kv[TABLE].get(ccf.strToBuf(request.params.key));
  if (v === undefined) {
    return { statusCode: 404, body: { error: { code: "NotFound", message: "no such key" } } };
  }
  return { body: { key: request.params.key, value: JSON.parse(ccf.bufToStr(v)), caller: request.caller.policy,
                   query: request.query } };
}

export function text(request) { return { body: "plain " + request.params.key, headers: { "x-app": "1" } }; }

export function boom(request) { throw new Error("boom with a detail"); }

export function loop(request) { while (true) {} }
"""


def bundle(table):
    ep = lambda fn, mode, policies: {"js_module": "app.js", "js_function": fn, "forwarding_required": "sometimes",
                                     "authn_policies": policies, "mode": mode, "openapi": {}}
    return {
        "metadata": {"endpoints": {
            "/content": {"get": {"js_module": "test.js", "js_function": "content", "forwarding_required": "never",
                                 "redirection_strategy": "none", "authn_policies": ["no_auth"], "mode": "readonly",
                                 "openapi": {}}},
            "/records/{key}": {"put": ep("put", "readwrite", ["user_cert"]),
                               "get": ep("get", "readonly", ["user_cert", "jwt"])},
            "/text/{key}": {"get": ep("text", "readonly", ["any_cert"])},
            "/boom": {"get": ep("boom", "readonly", ["no_auth"])},
            "/loop": {"get": ep("loop", "readonly", ["no_auth"])},
        }},
        "modules": [
            {"name": "test.js", "module": "import { foo } from \"./baz/baz.js\";\n\nexport function content(request) {\n"
                                          "  return {\n    statusCode: 200,\n    body: { payload: foo() },\n  };\n}"},
            {"name": "baz/baz.js", "module": "export function foo() {\n  return \"Test content\";\n}"},
            {"name": "app.js", "module": f"const TABLE = {json.dumps(table)};\n" + APP},
        ],
    }


def call(ledger, method, path, pem=None, **kw):
    import requests  # a fresh connection per call: each call may present another certificate
    return requests.request(method, ledger.endpoint + path, cert=str(pem) if pem else None,
                            verify=str(ledger.service_pem), timeout=30, **kw)


def install(ledger, b, pem=None):
    return call(ledger, "PUT", UDE, pem or ledger.admin_pem, params={"api-version": V}, json=b)


def test_install_and_serve(ledger, users, certs_dir):
    table = "public:conformance.records." + uuid.uuid4().hex[:8]
    b = bundle(table)
    reader, contributor = users["Reader"], users["Contributor"]

    # Only an Administrator installs.
    refused = install(ledger, b, reader.pem_path)
    assert refused.status_code == 403 and ls.error_body(refused)["code"] == "NotAllowed", refused.text
    resp = install(ledger, b)
    assert resp.status_code == 201, resp.text
    assert resp.headers["x-ms-ccf-transaction-id"]

    got = call(ledger, "GET", UDE, reader.pem_path, params={"api-version": V})
    assert got.status_code == 200, got.text
    assert got.json()["metadata"]["endpoints"]["/content"]["get"]["js_function"] == "content"
    mod = call(ledger, "GET", UDE + "/modules", reader.pem_path, params={"api-version": V, "module_name": "baz/baz.js"})
    assert mod.status_code == 200 and mod.json()["name"] == "baz/baz.js", mod.text

    # ACL's sample: GET /app/content, no authentication.
    content = call(ledger, "GET", "/app/content")
    assert content.status_code == 200, content.text
    assert content.json() == {"payload": "Test content"}

    # A readwrite endpoint (PUT with a JSON body and a path parameter) by a Contributor; the role check is the
    # bundle's own, through ACL's role table.
    put = call(ledger, "PUT", "/app/records/alpha", contributor.pem_path, json={"n": 1, "s": "x"})
    assert put.status_code == 200, put.text
    assert put.json() == {"key": "alpha", "stored": {"n": 1, "s": "x"}}
    txid = put.headers["x-ms-ccf-transaction-id"]
    ls.parse_txid(txid)

    # Its write is visible to a readonly endpoint (a Reader may read).
    read = call(ledger, "GET", "/app/records/alpha?x=1", reader.pem_path)
    assert read.status_code == 200, read.text
    assert read.json() == {"key": "alpha", "value": {"n": 1, "s": "x"}, "caller": "user_cert", "query": "x=1"}

    # The endpoint requiring a role refuses a caller without it: a Reader may not write, and nothing is written.
    denied = call(ledger, "PUT", "/app/records/beta", reader.pem_path, json={"n": 2})
    assert denied.status_code == 403, denied.text
    assert call(ledger, "GET", "/app/records/beta", reader.pem_path).status_code == 404

    # user_cert admits ledger users only: a certificate nobody registered, or none, gets 401.
    stranger = ls.make_user_cert(certs_dir, "ude-stranger")
    for pem in (stranger.pem_path, None):
        resp = call(ledger, "GET", "/app/records/alpha", pem)
        assert resp.status_code == 401 and ls.error_body(resp)["code"] == "InvalidAuthenticationInfo", resp.text
    # any_cert admits any certificate; a string body is text/plain.
    text = call(ledger, "GET", "/app/text/k", stranger.pem_path)
    assert text.status_code == 200 and text.text == "plain k", text.text
    assert text.headers["Content-Type"].startswith("text/plain") and text.headers["x-app"] == "1"

    # Unknown paths stay 404; a declared path with another method is 405.
    assert call(ledger, "GET", "/app/records", reader.pem_path).status_code == 404
    resp = call(ledger, "DELETE", "/app/records/alpha", reader.pem_path)
    assert resp.status_code == 405 and resp.headers["Allow"] == "GET, PUT", resp.text


def test_throwing_and_looping_endpoints(ledger, users):
    reader = users["Reader"]
    assert install(ledger, bundle("public:conformance.records.limits")).status_code == 201
    boom = call(ledger, "GET", "/app/boom")
    assert boom.status_code == 500, boom.text
    assert ls.error_body(boom)["code"] == "InternalError" and "boom with a detail" not in boom.text

    opts = call(ledger, "PATCH", UDE + "/runtimeOptions", ledger.admin_pem, params={"api-version": V},
                headers={"Content-Type": "application/merge-patch+json"},
                data=json.dumps({"max_execution_time_ms": 300, "return_exception_details": True}))
    assert opts.status_code == 200, opts.text
    assert opts.json()["max_execution_time_ms"] == 300
    boom = call(ledger, "GET", "/app/boom")
    assert boom.status_code == 500 and "boom with a detail" in ls.error_body(boom)["message"], boom.text

    start = time.monotonic()
    loop = call(ledger, "GET", "/app/loop")
    assert loop.status_code == 500 and "too long" in ls.error_body(loop)["message"], loop.text
    assert time.monotonic() - start < 20
    # The node keeps serving, the bundle and the built-in API alike.
    assert call(ledger, "GET", "/app/content").status_code == 200
    assert call(ledger, "GET", "/app/transactions/current", reader.pem_path,
                params={"api-version": "2022-05-13"}).status_code in (200, 404)

    reset = call(ledger, "PATCH", UDE + "/runtimeOptions", ledger.admin_pem, params={"api-version": V},
                 json={"max_execution_time_ms": None, "return_exception_details": None})
    assert reset.status_code == 200 and reset.json()["max_execution_time_ms"] == 1000, reset.text
    # Out of bounds: refused, ACL-style.
    bad = call(ledger, "PATCH", UDE + "/runtimeOptions", ledger.admin_pem, params={"api-version": V},
               json={"max_execution_time_ms": 0})
    assert bad.status_code == 400 and ls.error_body(bad)["code"] == "InvalidBundle", bad.text


def test_bad_bundles(ledger):
    good = bundle("public:conformance.records.bad")
    cases = []
    b = json.loads(json.dumps(good))
    b["metadata"]["endpoints"]["/boom"]["get"]["js_module"] = "missing.js"
    cases.append((b, "missing.js"))
    b = json.loads(json.dumps(good))
    b["metadata"]["endpoints"]["/boom"]["get"]["js_function"] = "notExported"
    cases.append((b, "notExported"))
    b = json.loads(json.dumps(good))
    b["metadata"]["endpoints"]["/boom"]["fetch"] = b["metadata"]["endpoints"]["/boom"].pop("get")
    cases.append((b, "fetch"))
    b = json.loads(json.dumps(good))
    b["metadata"]["endpoints"]["/boom"]["get"]["authn_policies"] = ["user_cose_sign1"]
    cases.append((b, "user_cose_sign1"))
    for b, fragment in cases:
        resp = install(ledger, b)
        assert resp.status_code == 400, resp.text
        err = ls.error_body(resp)
        assert err["code"] == "InvalidBundle" and fragment in err["message"], err
    # Two definitions of one path (duplicate JSON keys), as raw bytes.
    text = json.dumps(good)
    dup = text.replace('"/boom": {', '"/boom": {"get": {}}, "/boom": {', 1)
    resp = call(ledger, "PUT", UDE, ledger.admin_pem, params={"api-version": V}, data=dup,
                headers={"Content-Type": "application/json"})
    assert resp.status_code == 400 and "twice" in ls.error_body(resp)["message"], resp.text
    # The swagger's own CreateUserDefinedEndpoint example names no module or function: not a runnable bundle.
    example = {"metadata": {"endpoints": {"/content": {"get": {"forwarding_required": "always",
                                                                "authn_policies": [{}]}}}},
               "modules": {"name": "test.js", "module": "TESTJS"}}
    resp = install(ledger, example)
    assert resp.status_code == 400 and ls.error_body(resp)["code"] == "InvalidBundle", resp.text
    # An older api-version does not have the route.
    resp = call(ledger, "PUT", UDE, ledger.admin_pem, params={"api-version": "2022-05-13"}, json=good)
    assert resp.status_code == 400 and ls.error_body(resp)["code"] == "UnsupportedApiVersionValue", resp.text


def test_uninstall(ledger):
    resp = install(ledger, {"metadata": {"endpoints": {}}, "modules": []})
    assert resp.status_code == 201, resp.text
    assert call(ledger, "GET", "/app/content").status_code == 404
