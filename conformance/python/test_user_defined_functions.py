"""User-defined functions and hooks (API 2024-12-09-preview; issue 12), over real HTTPS with raw `requests` shaped
as the swagger's examples (CreateUserDefinedFunction.json, GetUserDefinedFunction.json, ListUserDefinedFunctions.json,
ExecuteUserDefinedFunction.json, DeleteUserDefinedFunction.json, CreateLedgerEntry.json): the SDK 1.0.1 installed
here does not know these operations."""

import time
import uuid

import requests

V = "2024-12-09-preview"
RUNTIME_OPTIONS = {"log_exception_details": True, "max_cached_interpreters": 0, "max_execution_time_ms": 0,
                   "max_heap_bytes": 0, "max_stack_bytes": 0, "return_exception_details": True}


def call(raw, ledger, method, path, pem=None, params=None, **kw):
    """One request as the admin (raw's session) or, with pem, as that user on a fresh connection: a pooled
    connection keeps the client certificate it was opened with."""
    send = raw.request if pem is None else requests.request
    return send(method, ledger.endpoint + path, params={"api-version": V, **(params or {})},
                cert=str(pem or ledger.admin_pem), verify=str(ledger.service_pem), timeout=30, **kw)


def fid(name):
    return f"{name}-{uuid.uuid4().hex[:8]}"


def test_function_lifecycle(ledger, raw, users):
    """Create (201), get, list, execute (the spec's example body), replace (200), delete (204), then 404."""
    f = fid("myFunction")
    code = "export function main() { return true }"
    resp = call(raw, ledger, "PUT", f"/app/userDefinedFunctions/{f}", json={"id": f, "code": code})
    assert resp.status_code == 201, resp.text
    assert resp.json() == {"id": f, "code": code}
    assert resp.headers["x-ms-ccf-transaction-id"]

    assert call(raw, ledger, "GET", f"/app/userDefinedFunctions/{f}").json() == {"id": f, "code": code}
    listed, path, params = [], "/app/userDefinedFunctions", None
    while path:
        page = raw.get(ledger.endpoint + path, params=params if params is not None else {"api-version": V},
                       cert=str(ledger.admin_pem), verify=str(ledger.service_pem), timeout=30).json()
        listed += page["functions"]
        path, params = page.get("nextLink"), {}
    assert {"id": f, "code": code} in listed

    contributor = users["Contributor"].pem_path
    resp = call(raw, ledger, "POST", f"/app/userDefinedFunctions/{f}:execute", pem=contributor,
                json={"arguments": ["arg1", "arg2"], "exportedFunctionName": "main", "runtimeOptions": RUNTIME_OPTIONS})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"status": "Succeeded", "result": {"returnValue": "true"}}

    resp = call(raw, ledger, "PUT", f"/app/userDefinedFunctions/{f}", json={"code": "export function main() { return false }"})
    assert resp.status_code == 200, resp.text

    assert call(raw, ledger, "DELETE", f"/app/userDefinedFunctions/{f}").status_code == 204
    resp = call(raw, ledger, "GET", f"/app/userDefinedFunctions/{f}")
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "ResourceNotFound"
    assert call(raw, ledger, "POST", f"/app/userDefinedFunctions/{f}:execute", pem=contributor, json={}).status_code == 404


def test_reader_cannot_create(ledger, raw, users):
    reader = users["Reader"].pem_path
    f = fid("readerFunction")
    resp = call(raw, ledger, "PUT", f"/app/userDefinedFunctions/{f}", pem=reader,
                json={"code": "export function main() { return 1 }"})
    assert resp.status_code == 403, resp.text
    assert set(resp.json()["error"]) == {"code", "message"}
    assert call(raw, ledger, "GET", f"/app/userDefinedFunctions/{f}", pem=reader).status_code == 404


def test_bad_bodies(ledger, raw):
    f = fid("bad")
    for body in ({"code": 5}, {}, {"code": "export function main( {"}, {"code": "x", "extra": 1},
                 {"code": "//" + "x" * (256 * 1024)}):
        resp = call(raw, ledger, "PUT", f"/app/userDefinedFunctions/{f}", json=body)
        assert resp.status_code == 400, (body if len(str(body)) < 100 else "large", resp.text)
        err = resp.json()["error"]
        assert err["code"] == "InvalidInput" and err["message"]
    # Over the body limit: refused by its length.
    resp = call(raw, ledger, "PUT", f"/app/userDefinedFunctions/{f}", json={"code": "x" * (2 << 20)})
    assert resp.status_code == 413, resp.text
    assert call(raw, ledger, "GET", f"/app/userDefinedFunctions/{f}").status_code == 404


def test_rejecting_prehook_writes_nothing(ledger, raw, users):
    """A pre-hook that throws: 400, the entry absent; a passing one: the entry and the post-hook's write in one
    transaction (the ledger is audited at session end)."""
    check, enrich, query = fid("validate"), fid("enrich"), fid("query")
    call(raw, ledger, "PUT", f"/app/userDefinedFunctions/{check}", json={"code": """export function main() {
  const entry = JSON.parse(context.contents);
  if (typeof entry.amount !== "number" || entry.amount <= 0) {
    throw new Error("Invalid amount: " + entry.amount);
  }
}"""}).raise_for_status()
    call(raw, ledger, "PUT", f"/app/userDefinedFunctions/{enrich}", json={"code": """export function main(tag) {
  ccf.kv["entryMetadata"].set(ccf.strToBuf(context.collectionId), ccf.strToBuf(tag + ":" + context.contents));
}"""}).raise_for_status()
    call(raw, ledger, "PUT", f"/app/userDefinedFunctions/{query}", json={"code": """export function main(c) {
  const v = ccf.kv["entryMetadata"].get(ccf.strToBuf(c));
  return v === undefined ? "none" : ccf.bufToStr(v);
}"""}).raise_for_status()
    contributor = users["Contributor"].pem_path
    coll = "hooks-" + uuid.uuid4().hex[:8]

    def post(contents, tag):
        return call(raw, ledger, "POST", "/app/transactions", pem=contributor, params={"collectionId": coll},
                    json={"contents": contents, "preHooks": [{"functionId": check}],
                          "postHooks": [{"functionId": enrich, "properties": {"arguments": [tag]}}]})

    def metadata():
        resp = call(raw, ledger, "POST", f"/app/userDefinedFunctions/{query}:execute", pem=contributor,
                    json={"arguments": [coll]})
        return resp.json()["result"]["returnValue"]

    resp = post('{"amount": -1}', "rejected")
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["code"] == "UserDefinedFunctionFailed"
    assert "Invalid amount: -1" in resp.json()["error"]["message"]
    current = call(raw, ledger, "GET", "/app/transactions/current", params={"collectionId": coll})
    assert current.status_code == 404, current.text  # no entry in the collection
    assert metadata() == "none"

    resp = post('{"amount": 3}', "ok")
    assert resp.status_code == 200, resp.text
    assert call(raw, ledger, "GET", "/app/transactions/current", params={"collectionId": coll}).json()["contents"] == '{"amount": 3}'
    assert metadata() == 'ok:{"amount": 3}'


def test_looping_function_is_stopped(ledger, raw, users):
    f = fid("loop")
    call(raw, ledger, "PUT", f"/app/userDefinedFunctions/{f}", json={"code": "export function main() { for (;;) {} }"}).raise_for_status()
    start = time.monotonic()
    resp = call(raw, ledger, "POST", f"/app/userDefinedFunctions/{f}:execute", pem=users["Contributor"].pem_path,
                json={"runtimeOptions": {"max_execution_time_ms": 300}})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "Failed" and "time limit" in body["error"]["message"]
    assert time.monotonic() - start < 10
    # The node serves on.
    resp = call(raw, ledger, "POST", "/app/transactions", json={"contents": "after the loop"})
    assert resp.status_code == 200, resp.text
