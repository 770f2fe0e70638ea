"""Every operation of the 2024-12-09-preview data-plane swagger, sent as its example asks, over real HTTPS.

Source: Azure/azure-rest-api-specs,
specification/confidentialledger/data-plane/Microsoft.ConfidentialLedger/preview/2024-12-09-preview/
confidentialledger.json (the 32 operationIds of its `paths`, in the order they appear there) and identityservice.json
(GetLedgerIdentity), with the request and response of each operation's x-ms-examples file under examples/ (read
through the search tool; the ids and example shapes below are copied from those files, not generated). The newest
@azure-rest/confidential-ledger on the registry is 1.0.0 (`npm view @azure-rest/confidential-ledger versions`
lists no beta), whose routes are the 2022-05-13 subset of these.

For each operation the example's request (path, query, body, api-version 2024-12-09-preview) goes to a node of
this module's own with raw `requests` and the genesis administrator's client certificate; the status must be one
the swagger declares for it (every operation declares `default` for errors: those are checked as errors, below)
and the answer's JSON must have the example response's field names with the same JSON types (values differ: they
are another ledger's). Where the example itself disagrees with the swagger's schema, or ledgerd deliberately
answers otherwise (docs/acl-api.md), the case says so and asserts the documented behaviour.

Every 4xx answered anywhere in this module must carry ACL's {"error":{"code","message"}} body, and
test_error_answers sends one bad request per operation family to check it."""

import time
import urllib.parse

import pytest
import requests

import ledgerd_support as ls

V = "2024-12-09-preview"
POLL_TIMEOUT_S = 30

# The operationIds of confidentialledger.json (paths order) and identityservice.json, as found in the swagger.
SWAGGER_OPERATION_IDS = (
    "GetConstitution", "ListConsortiumMembers", "GetEnclaveQuotes", "ListCollections", "ListLedgerEntries",
    "CreateLedgerEntry", "GetLedgerEntry", "GetReceipt", "GetTransactionStatus", "GetCurrentLedgerEntry",
    "ListUsers", "ListLedgerUsers", "DeleteUser", "GetUser", "CreateOrUpdateUser", "DeleteLedgerUser",
    "GetLedgerUser", "CreateOrUpdateLedgerUser", "GetUserDefinedEndpoint", "CreateUserDefinedEndpoint",
    "GetRuntimeOptions", "UpdateRuntimeOptions", "GetUserDefinedEndpointsModule", "ListUserDefinedFunctions",
    "DeleteUserDefinedFunction", "GetUserDefinedFunction", "CreateUserDefinedFunction", "ExecuteUserDefinedFunction",
    "GetUserDefinedRole", "CreateUserDefinedRole", "UpdateUserDefinedRole", "DeleteUserDefinedRole",
    # identityservice.json
    "GetLedgerIdentity",
)

RUNTIME_OPTIONS_EXAMPLE = {"log_exception_details": True, "max_cached_interpreters": 0, "max_execution_time_ms": 0,
                           "max_heap_bytes": 0, "max_stack_bytes": 0, "return_exception_details": True}
RUNTIME_OPTIONS_ANSWER = {"max_heap_bytes": 1024, "max_stack_bytes": 1024, "max_execution_time_ms": 1200,
                          "log_exception_details": False, "return_exception_details": False,
                          "max_cached_interpreters": 1024}
PEM = "-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n"
ENTRY = {"contents": "Ledger entry contents at transaction id 2.15.", "collectionId": "subledger:0",
         "transactionId": "2.15"}
USER = "AAD object id"  # the examples' userId, sent as it is (a space in a path segment)
FUNCTION_CODE = "export function main() { return true }"
ACTIONS = ["Microsoft.ConfidentialLedger/ledger/users/write", "Microsoft.ConfidentialLedger/ledger/users/read"]

ANY = object()  # the swagger's `json`: any JSON value

# operationId -> (method, path template, the statuses the swagger declares besides `default`, the example's
# response body, or None where the example has none). Path templates take {txid}, {user}, {fn}.
OPERATIONS = {
    "GetConstitution": ("GET", "/app/governance/constitution", {200}, {"digest": "d", "script": "s"}),
    "ListConsortiumMembers": ("GET", "/app/governance/members", {200},
                              {"members": [{"certificate": PEM, "id": "0"}], "nextLink": "<link>"}),
    # EnclaveQuotes is a map by node id (additionalProperties): "*" stands for every key.
    "GetEnclaveQuotes": ("GET", "/app/enclaveQuotes", {200},
                         {"currentNodeId": "0", "enclaveQuotes": {"*": {"mrenclave": "9b", "nodeId": "0",
                                                                        "raw": "01", "quoteVersion": "sgx-quote-1"}}}),
    # The example writes "nextLink" beside "body", not in it; only "collections" is in the body.
    "ListCollections": ("GET", "/app/collections", {200}, {"collections": [{"collectionId": "first"}]}),
    "ListLedgerEntries": ("GET", "/app/transactions", {200},
                          {"state": "Ready", "nextLink": "/app/transactions?...", "entries": [ENTRY]}),
    "CreateLedgerEntry": ("POST", "/app/transactions", {200}, {"collectionId": "subledger:0"}),
    "GetLedgerEntry": ("GET", "/app/transactions/{txid}", {200}, {"state": "Ready", "entry": ENTRY}),
    "GetReceipt": ("GET", "/app/transactions/{txid}/receipt", {200}, {
        "applicationClaims": [{"kind": "LedgerEntry", "ledgerEntry": {
            "protocol": "LedgerEntryV1", "collectionId": "subledger:0", "contents": "c", "secretKey": "AA=="}}],
        "receipt": {"cert": PEM, "leafComponents": {"commitEvidence": "ce:2.15:3c", "writeSetDigest": "f7"},
                    "nodeId": "ff", "proof": [{"left": "65"}], "serviceEndorsements": [], "signature": "MGY="},
        "state": "Ready", "transactionId": "2.15"}),
    "GetTransactionStatus": ("GET", "/app/transactions/{txid}/status", {200},
                             {"state": "Committed", "transactionId": "4.2"}),
    "GetCurrentLedgerEntry": ("GET", "/app/transactions/current", {200},
                              {"contents": "Current ledger entry contents.", "collectionId": "subledger:0",
                               "transactionId": "2.15"}),
    "ListUsers": ("GET", "/app/users", {200},
                  {"ledgerUsers": [{"assignedRole": "Administrator", "userId": "Certificate object id 1"}]}),
    "ListLedgerUsers": ("GET", "/app/ledgerUsers", {200},
                        {"ledgerUsers": [{"assignedRoles": ["Administrator", "Reader"],
                                          "userId": "Certificate object id 1"}]}),
    "DeleteUser": ("DELETE", "/app/users/{user}", {204}, None),
    "GetUser": ("GET", "/app/users/{user}", {200}, {"assignedRole": "Administrator", "userId": USER}),
    "CreateOrUpdateUser": ("PATCH", "/app/users/{user}", {200}, {"assignedRole": "Reader", "userId": USER}),
    "DeleteLedgerUser": ("DELETE", "/app/ledgerUsers/{user}", {204}, None),
    "GetLedgerUser": ("GET", "/app/ledgerUsers/{user}", {200},
                      {"assignedRoles": ["Administrator", "Reader"], "userId": USER}),
    "CreateOrUpdateLedgerUser": ("PATCH", "/app/ledgerUsers/{user}", {200},
                                 {"assignedRoles": ["Reader", "Writer"], "userId": USER}),
    # The example's policy is {}; the swagger's json_array has items of any JSON type (CCF's policies are names
    # such as "user_cert" or objects such as {"all_of": [...]}).
    # The example's "modules" is one object; the swagger's ModuleDef_array has ModuleDef items and CCF's bundles
    # (and ledgerd, acl-api.md §11) carry a list of them: the items are checked against the example's object.
    "GetUserDefinedEndpoint": ("GET", "/app/userDefinedEndpoints", {200},
                               {"metadata": {"endpoints": {"/content": {"get": {"forwarding_required": "always",
                                                                               "authn_policies": [ANY]}}}},
                                "modules": [{"name": "test.js", "module": "TESTJS"}]}),
    "CreateUserDefinedEndpoint": ("PUT", "/app/userDefinedEndpoints", {201}, None),
    "GetRuntimeOptions": ("GET", "/app/userDefinedEndpoints/runtimeOptions", {200}, RUNTIME_OPTIONS_ANSWER),
    "UpdateRuntimeOptions": ("PATCH", "/app/userDefinedEndpoints/runtimeOptions", {200}, RUNTIME_OPTIONS_ANSWER),
    "GetUserDefinedEndpointsModule": ("GET", "/app/userDefinedEndpoints/modules", {200},
                                      {"name": "test.js", "module": "TESTJS"}),
    # The example writes "userDefinedFunctions"; the swagger's PagedUserDefinedFunctions requires "functions" and
    # x-ms-pageable names "functions" as the item list (acl-api.md §4): ledgerd answers "functions".
    "ListUserDefinedFunctions": ("GET", "/app/userDefinedFunctions", {200},
                                 {"functions": [{"id": "myFunction", "code": FUNCTION_CODE}]}),
    "DeleteUserDefinedFunction": ("DELETE", "/app/userDefinedFunctions/{fn}", {204}, None),
    "GetUserDefinedFunction": ("GET", "/app/userDefinedFunctions/{fn}", {200}, {"id": "myFunction",
                                                                               "code": FUNCTION_CODE}),
    "CreateUserDefinedFunction": ("PUT", "/app/userDefinedFunctions/{fn}", {200, 201},
                                  {"id": "myFunction", "code": FUNCTION_CODE}),
    # The example answers "result": "true"; the swagger's UserDefinedFunctionExecutionResponse has
    # result: UserDefinedFunctionExecutionResult {returnValue: string} (acl-api.md §4): ledgerd answers that.
    "ExecuteUserDefinedFunction": ("POST", "/app/userDefinedFunctions/{fn}:execute", {200},
                                   {"result": {"returnValue": "true"}, "status": "Succeeded"}),
    "GetUserDefinedRole": ("GET", "/app/roles", {200}, [{"roleName": "administrator", "roleActions": ACTIONS}]),
    "CreateUserDefinedRole": ("PUT", "/app/roles", {200}, None),
    "UpdateUserDefinedRole": ("PATCH", "/app/roles", {200}, None),
    "DeleteUserDefinedRole": ("DELETE", "/app/roles", {200}, None),
    "GetLedgerIdentity": ("GET", "/ledgerIdentity/{ledger_id}", {200}, {"ledgerTlsCertificate": PEM}),
}

# Fields the swagger does not require that a page (or the example's ledger) has and this one need not:
# nextLink only when there is a next page.
OPTIONAL = {"nextLink"}


def jtype(value):
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number",
            type(None): "null"}[type(value)]


def assert_shape(example, got, where="$"):
    """got has every field of example (except OPTIONAL ones) with the same JSON type, recursively; each item of a
    list answer is checked against the example's first item, and each value of a map against the example's "*"."""
    if example is ANY:
        return
    assert jtype(got) == jtype(example), f"{where}: {jtype(got)} {got!r:.200}, the example has {jtype(example)}"
    if isinstance(example, dict) and set(example) == {"*"}:
        assert got, f"{where}: empty map"
        for key, sub in got.items():
            assert_shape(example["*"], sub, f"{where}.{key}")
    elif isinstance(example, dict):
        for key, sub in example.items():
            if key not in got and key in OPTIONAL:
                continue
            assert key in got, f"{where}: no field {key!r} (answer has {sorted(got)})"
            assert_shape(sub, got[key], f"{where}.{key}")
    elif isinstance(example, list) and example:
        for i, item in enumerate(got):
            assert_shape(example[0], item, f"{where}[{i}]")


class Sweep:
    """Sends operations as the admin and records which operationIds answered as specified."""

    def __init__(self, node):
        self.node = node
        self.session = requests.Session()
        self.checked = set()

    def send(self, method, path, params=None, pem=None, **kw):
        send = self.session.request if pem is None else requests.request
        resp = send(method, self.node.endpoint + path, params={"api-version": V, **(params or {})},
                    cert=str(pem or self.node.admin_pem), verify=str(self.node.service_pem), timeout=30, **kw)
        if 400 <= resp.status_code < 500:
            ls.error_body(resp)  # every 4xx: {"error":{"code","message"}}
        return resp

    def op(self, op_id, params=None, body=None, merge_patch=False, expect=None, **fmt):
        method, template, statuses, example = OPERATIONS[op_id]
        path = template.format(**{k: urllib.parse.quote(v, safe=":") for k, v in fmt.items()})
        headers = {"Content-Type": "application/merge-patch+json"} if merge_patch else {}
        kw = {"json": body} if body is not None else {}
        resp = self.send(method, path, params=params, headers=headers, **kw)
        want = expect or statuses
        assert resp.status_code in want, f"{op_id}: {resp.status_code} {resp.text[:400]} (declared {sorted(want)})"
        if expect is None:
            if example is not None:
                assert_shape(example, resp.json(), op_id)
            self.checked.add(op_id)
        return resp

    def poll(self, op_id, ready, **kw):
        deadline = time.monotonic() + POLL_TIMEOUT_S
        while True:
            resp = self.op(op_id, **kw)
            if ready(resp.json()) or time.monotonic() > deadline:
                return resp
            time.sleep(0.02)

    def close(self):
        self.session.close()


@pytest.fixture(scope="module")
def node(binaries, workdir):
    proc = ls.LedgerProcess(binaries["ledgerd"], workdir / "sweep-data", workdir / "sweep-ledgerd.log",
                            extra_args=["--signature-interval", ls.SIGNATURE_INTERVAL])
    proc.start()
    yield proc
    proc.stop()
    ls.audit_ok(binaries["ledgerctl"], proc.data_dir)


@pytest.fixture(scope="module")
def sweep(node):
    s = Sweep(node)
    yield s
    s.close()


def test_operation_list_is_the_swaggers():
    assert len(SWAGGER_OPERATION_IDS) == len(set(SWAGGER_OPERATION_IDS)) == 33
    missing = set(SWAGGER_OPERATION_IDS) - set(OPERATIONS)
    assert not missing, f"operations of the swagger without a case: {sorted(missing)}"
    assert set(OPERATIONS) == set(SWAGGER_OPERATION_IDS)


def test_governance_and_node_operations(sweep):
    sweep.op("GetConstitution")
    sweep.op("ListConsortiumMembers")
    sweep.op("GetEnclaveQuotes")
    # The identity service answers any ledgerId with this ledger's certificate (acl-api.md §3): the example's id.
    sweep.op("GetLedgerIdentity", ledger_id="contoso-ledger-12345")


def test_functions_entries_and_receipts(sweep):
    for fn in ("myFunction", "myFunction1", "myFunction2"):
        resp = sweep.op("CreateUserDefinedFunction", body={"code": FUNCTION_CODE}, fn=fn, expect={201})
        assert resp.headers.get("x-ms-ccf-transaction-id")
    # CreateUserDefinedFunction.json's variant sends the id in the body too; an update answers 200.
    resp = sweep.op("CreateUserDefinedFunction", body={"id": "myFunction", "code": FUNCTION_CODE}, fn="myFunction")
    assert resp.status_code == 200 and resp.headers.get("x-ms-ccf-transaction-id")
    sweep.op("GetUserDefinedFunction", fn="myFunction")
    sweep.op("ListUserDefinedFunctions")
    sweep.op("ExecuteUserDefinedFunction", fn="myFunction",
             body={"arguments": ["arg1", "arg2"], "exportedFunctionName": "main", "runtimeOptions": RUNTIME_OPTIONS_EXAMPLE})

    hook = {"exportedFunctionName": "main", "runtimeOptions": RUNTIME_OPTIONS_EXAMPLE}
    created = sweep.op("CreateLedgerEntry", body={
        "contents": "New ledger entry contents.",
        "preOperationHooks": [{"functionId": "myFunction1", "properties": {"arguments": ["arg1", "arg2"], **hook}}],
        "postOperationHooks": [{"functionId": "myFunction2", "properties": {"arguments": ["arg3", "arg4"], **hook}}],
    })
    txid = created.headers["x-ms-ccf-transaction-id"]
    ls.parse_txid(txid)
    # The swagger's own spelling of the hooks (LedgerEntry.preHooks/postHooks).
    sweep.op("CreateLedgerEntry", body={"contents": "second", "preHooks": [{"functionId": "myFunction1"}],
                                        "postHooks": [{"functionId": "myFunction2"}]})

    status = sweep.poll("GetTransactionStatus", lambda b: b["state"] == "Committed", txid=txid)
    assert status.json() == {"state": "Committed", "transactionId": txid}
    got = sweep.poll("GetLedgerEntry", lambda b: b["state"] == "Ready", txid=txid).json()
    assert got["state"] == "Ready", got
    receipt = sweep.poll("GetReceipt", lambda b: b["state"] == "Ready", txid=txid).json()
    assert receipt["state"] == "Ready", receipt
    sweep.op("GetCurrentLedgerEntry")
    listed = sweep.poll("ListLedgerEntries", lambda b: b["state"] == "Ready",
                        params={"fromTransactionId": txid, "toTransactionId": txid}).json()
    assert [e["transactionId"] for e in listed["entries"]] == [txid], listed
    sweep.op("ListCollections")


def test_roles_and_users(sweep):
    # The examples create, patch and delete roles named "administrator", "contributor" and "reader": built-in
    # role names are case-insensitive (ACL's programmability guide), so ledgerd refuses to redefine them
    # (400 InvalidInput, acl-api.md §5) and reads them back as the built-in roles.
    create_example = [{"roleName": "administrator", "roleActions": ACTIONS},
                      {"roleName": "contributor", "roleActions": ACTIONS}]
    resp = sweep.op("CreateUserDefinedRole", body=create_example, expect={400})
    assert resp.json()["error"]["code"] == "InvalidInput"
    resp = sweep.op("UpdateUserDefinedRole", body=[{"roleName": "administrator", "roleActions": ACTIONS[:1]}],
                    expect={400})
    assert resp.json()["error"]["code"] == "InvalidInput"
    resp = sweep.op("DeleteUserDefinedRole", params={"roleName": "reader"}, expect={400})
    assert resp.json()["error"]["code"] == "InvalidInput"
    sweep.op("GetUserDefinedRole", params={"roleName": "administrator"})

    # The same requests with user-defined names, including the "Writer" CreateOrUpdateLedgerUser.json assigns.
    sweep.op("CreateUserDefinedRole", body=[{"roleName": "Writer", "roleActions": ACTIONS},
                                            {"roleName": "appcontributor", "roleActions": ACTIONS}])
    sweep.op("UpdateUserDefinedRole", body=[{"roleName": "appcontributor", "roleActions": ACTIONS[:1]}])
    got = sweep.op("GetUserDefinedRole", params={"roleName": "Writer"}).json()
    assert got == [{"roleName": "Writer", "roleActions": ACTIONS}], got
    sweep.op("DeleteUserDefinedRole", params={"roleName": "appcontributor"})

    got = sweep.op("CreateOrUpdateLedgerUser", body={"assignedRoles": ["Reader", "Writer"]}, merge_patch=True,
                   user=USER).json()
    assert got == {"assignedRoles": ["Reader", "Writer"], "userId": USER}, got
    sweep.op("GetLedgerUser", user=USER)
    sweep.op("ListLedgerUsers")
    got = sweep.op("CreateOrUpdateUser", body={"assignedRole": "Reader"}, merge_patch=True, user=USER).json()
    assert got == {"assignedRole": "Reader", "userId": USER}, got
    sweep.op("GetUser", user=USER)
    sweep.op("ListUsers")
    sweep.op("DeleteUser", user=USER)
    assert sweep.send("GET", "/app/users/" + urllib.parse.quote(USER)).status_code == 404
    sweep.op("CreateOrUpdateLedgerUser", body={"assignedRoles": ["Reader", "Writer"]}, merge_patch=True, user=USER)
    sweep.op("DeleteLedgerUser", user=USER)
    assert sweep.send("GET", "/app/ledgerUsers/" + urllib.parse.quote(USER)).status_code == 404


def test_user_defined_endpoints(sweep):
    # Nothing installed: the empty bundle (acl-api.md §11).
    got = sweep.send("GET", "/app/userDefinedEndpoints")
    assert got.status_code == 200 and set(got.json()) >= {"metadata", "modules"}, got.text
    # CreateUserDefinedEndpoint.json's bundle has no js_module/js_function and "modules" as one object: not a
    # bundle CCF could run; ledgerd refuses it with 400 InvalidBundle (acl-api.md §11).
    example = {"metadata": {"endpoints": {"/content": {"get": {"forwarding_required": "always",
                                                                "authn_policies": [{}]}}}},
               "modules": {"name": "test.js", "module": "TESTJS"}}
    resp = sweep.op("CreateUserDefinedEndpoint", body=example, expect={400})
    assert resp.json()["error"]["code"] == "InvalidBundle"
    # The example made runnable: modules a list, the endpoint naming its module and function.
    runnable = {"metadata": {"endpoints": {"/content": {"get": {
        "forwarding_required": "always", "authn_policies": ["user_cert"], "js_module": "test.js",
        "js_function": "content", "mode": "readonly"}}}},
        "modules": [{"name": "test.js", "module": "export function content(request) { return {body: 'TESTJS'}; }"}]}
    sweep.op("CreateUserDefinedEndpoint", body=runnable)
    sweep.op("GetUserDefinedEndpoint")
    resp = sweep.op("GetUserDefinedEndpointsModule", params={"module_name": "test.js"})
    assert resp.json()["name"] == "test.js"
    sweep.op("GetRuntimeOptions")
    got = sweep.op("UpdateRuntimeOptions", body={"log_exception_details": False, "max_execution_time_ms": 1200}).json()
    assert got["max_execution_time_ms"] == 1200 and got["log_exception_details"] is False, got
    served = sweep.send("GET", "/app/content", params={})
    assert served.status_code == 200 and served.text == "TESTJS", served.text
    # The bundle's routes answer errors as ACL's do: another method 405, a path nothing declares 404.
    assert sweep.send("POST", "/app/content", params={}).status_code == 405
    assert sweep.send("GET", "/app/content/more", params={}).status_code == 404


def test_delete_function(sweep):
    sweep.op("DeleteUserDefinedFunction", fn="myFunction")
    assert sweep.send("GET", "/app/userDefinedFunctions/myFunction").status_code == 404


def test_error_answers(sweep, node, certs_dir):
    """One bad request per operation family: each is a 4xx with an ACL error body (Sweep.send checks it)."""
    reader = ls.make_user_cert(certs_dir, "sweep-reader")
    assert sweep.op("CreateOrUpdateUser", body={"assignedRole": "Reader"}, merge_patch=True,
                    user=reader.user_id).status_code == 200
    bad = [
        ("GET", "/app/transactions/current", {"api-version": "1999-01-01"}, None, 400),
        ("GET", "/app/transactions/not-a-txid", {}, None, 400),
        ("GET", "/app/transactions/not-a-txid/status", {}, None, 400),
        ("GET", "/app/transactions/not-a-txid/receipt", {}, None, 400),
        ("GET", "/app/transactions", {"fromTransactionId": "x"}, None, 400),
        ("POST", "/app/transactions", {}, {"contents": 5}, 400),
        ("GET", "/app/users/nobody", {}, None, 404),
        ("GET", "/app/ledgerUsers/nobody", {}, None, 404),
        ("PATCH", "/app/ledgerUsers/nobody", {}, {"assignedRoles": ["NoSuchRole"]}, 400),
        ("DELETE", "/app/ledgerUsers/nobody", {}, None, 404),
        ("GET", "/app/roles", {"roleName": "NoSuchRole"}, None, 404),
        ("PUT", "/app/roles", {}, [{"roleActions": ACTIONS}], 400),
        ("DELETE", "/app/roles", {"roleName": "NoSuchRole"}, None, 404),
        ("GET", "/app/userDefinedFunctions/nothing", {}, None, 404),
        ("PUT", "/app/userDefinedFunctions/bad", {}, {"code": "export function main( {"}, 400),
        ("POST", "/app/userDefinedFunctions/nothing:execute", {}, {}, 404),
        ("DELETE", "/app/userDefinedFunctions/nothing", {}, None, 404),
        ("GET", "/app/userDefinedEndpoints/modules", {"module_name": "nothing.js"}, None, 404),
        ("PATCH", "/app/userDefinedEndpoints/runtimeOptions", {}, {"max_heap_bytes": "big"}, 400),
        ("PUT", "/app/userDefinedEndpoints", {}, {"metadata": 1}, 400),
        ("GET", "/app/transactions/current", {"api-version": None}, None, 400),  # no api-version
        ("GET", "/app/userDefinedFunctions", {"api-version": "2024-08-22-preview"}, None, 400),  # before UDFs
        ("GET", "/app/nothing", {}, None, 404),
        ("POST", "/app/roles", {}, None, 405),
        ("DELETE", "/app/transactions/current", {}, None, 405),
        ("POST", "/app/transactions", {}, {"contents": "x" * (1 << 20)}, 413),
    ]
    for method, path, params, body, status in bad:
        headers = {"Content-Type": "application/merge-patch+json"} if method == "PATCH" and "Users" in path else {}
        kw = {"json": body} if body is not None else {}
        resp = sweep.send(method, path, params=params, headers=headers, **kw)
        assert resp.status_code == status, (method, path, resp.status_code, resp.text)
    # No credentials (401) and a certificate that is no user's (403).
    stranger = ls.make_user_cert(certs_dir, "sweep-stranger")
    resp = requests.get(node.endpoint + "/app/transactions/current", params={"api-version": V},
                        verify=str(node.service_pem), timeout=30)
    assert resp.status_code == 401, resp.text
    ls.error_body(resp)
    resp = sweep.send("GET", "/app/transactions/current", pem=stranger.pem_path)
    assert resp.status_code == 403, resp.text
    # A Reader may not change anything: 403 with an error body, for each write operation family.
    for method, path, params, body in [
        ("POST", "/app/transactions", {}, {"contents": "x"}),
        ("PUT", "/app/userDefinedFunctions/r", {}, {"code": FUNCTION_CODE}),
        ("PUT", "/app/roles", {}, [{"roleName": "r", "roleActions": ACTIONS}]),
        ("PATCH", "/app/userDefinedEndpoints/runtimeOptions", {}, {"max_execution_time_ms": 10}),
        ("GET", "/app/ledgerUsers", {}, None),
    ]:
        kw = {"json": body} if body is not None else {}
        resp = sweep.send(method, path, params=params, pem=reader.pem_path, **kw)
        assert resp.status_code == 403, (method, path, resp.status_code, resp.text)


def test_every_operation_was_checked(sweep):
    """Runs last in this module: every operationId of the swagger answered as specified above."""
    assert set(SWAGGER_OPERATION_IDS) - sweep.checked == set()
