"""Users with several roles and user-defined roles (API 2024-08-22-preview / 2024-12-09-preview; issue 12), with
raw requests shaped from the swagger examples (CreateUserDefinedRole.json, GetUserDefinedRole.json,
UpdateUserDefinedRole.json, DeleteUserDefinedRole.json, CreateOrUpdateLedgerUser.json), and the users themselves
driven through the Python SDK 1.0.1, which knows neither roles nor assignedRoles."""

import uuid

import pytest
import requests
from azure.core.exceptions import HttpResponseError

import ledgerd_support as ls

V = "2024-12-09-preview"
ACT = "Microsoft.ConfidentialLedger/ledger/"
POLL_TIMEOUT_S = 30


def call(raw, ledger, method, path, **kw):
    return raw.request(method, ledger.endpoint + path, cert=str(ledger.admin_pem), verify=str(ledger.service_pem),
                       timeout=30, **kw)


def put_roles(raw, ledger, roles, method="PUT"):
    return call(raw, ledger, method, "/app/roles", params={"api-version": V}, json=roles)


def set_roles(raw, ledger, user_id, roles):
    return call(raw, ledger, "PATCH", f"/app/ledgerUsers/{user_id}", params={"api-version": V},
                json={"assignedRoles": roles}, headers={"Content-Type": "application/merge-patch+json"})


def expect_error(resp, status, code):
    assert resp.status_code == status, (resp.status_code, resp.text)
    err = ls.error_body(resp)
    assert err["code"] == code, err
    return err


def forbidden(fn, *args, **kwargs):
    with pytest.raises(HttpResponseError) as info:
        fn(*args, **kwargs)
    err = ls.sdk_error(info.value)
    assert (err["status"], err["code"]) == (403, "NotAllowed"), err


@pytest.fixture(scope="module")
def names():
    suffix = uuid.uuid4().hex[:8]
    return {"reads": "auditor-" + suffix, "writes": "appender-" + suffix}


def test_read_only_role_and_union(ledger, raw, admin_client, clients, certs_dir, names):
    coll = "roles-" + uuid.uuid4().hex[:8]
    written = admin_client.begin_create_ledger_entry({"contents": "seen by the auditor"}, collection_id=coll).result(
        timeout=POLL_TIMEOUT_S)
    reads = [ACT + "read", ACT + "historicalQuery", ACT + "collections/read"]
    resp = put_roles(raw, ledger, [{"roleName": names["reads"], "roleActions": reads}])
    assert resp.status_code == 200, resp.text
    got = call(raw, ledger, "GET", "/app/roles", params={"api-version": V, "roleName": names["reads"]})
    assert got.status_code == 200, got.text
    assert got.json() == [{"roleName": names["reads"], "roleActions": reads}]

    user = ls.make_user_cert(certs_dir, "auditor-" + uuid.uuid4().hex[:6])
    resp = set_roles(raw, ledger, user.user_id, [names["reads"]])
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"assignedRoles": [names["reads"]], "userId": user.user_id}

    sdk = clients.cert(user.pem_path)
    assert sdk.get_current_ledger_entry(collection_id=coll)["contents"] == "seen by the auditor"
    assert coll in [c["collectionId"] for c in sdk.list_collections()]
    entry = sdk.begin_get_ledger_entry(written["transactionId"], collection_id=coll).result(timeout=POLL_TIMEOUT_S)
    assert entry["entry"]["contents"] == "seen by the auditor"
    forbidden(sdk.create_ledger_entry, {"contents": "an auditor may not write"}, collection_id=coll)
    # Not among the role's actions, though every built-in role has them.
    forbidden(sdk.get_transaction_status, written["transactionId"])
    forbidden(sdk.get_constitution)
    # The SDK 1.0.1's single-role view of a user holding only a user-defined role: that role.
    assert admin_client.get_user(user.user_id) == {"userId": user.user_id, "assignedRole": names["reads"]}

    # Two roles: the union of their actions.
    resp = put_roles(raw, ledger, [{"roleName": names["writes"], "roleActions": [ACT + "append"]}])
    assert resp.status_code == 200, resp.text
    resp = set_roles(raw, ledger, user.user_id, [names["reads"], names["writes"]])
    assert resp.status_code == 200, resp.text
    # (create_ledger_entry, not begin_: its poller reads the status, which the user's roles do not allow yet.)
    txid = sdk.create_ledger_entry({"contents": "now it may"}, collection_id=coll)["transactionId"]
    admin_client.begin_wait_for_commit(txid).result(timeout=POLL_TIMEOUT_S)
    assert sdk.get_current_ledger_entry(collection_id=coll)["contents"] == "now it may"
    forbidden(sdk.get_user, user.user_id)

    # PATCH adds an action (UpdateUserDefinedRole.json); the next request sees it.
    resp = put_roles(raw, ledger, [{"roleName": names["reads"], "roleActions": [ACT + "transactions/status/read"]}],
                     method="PATCH")
    assert resp.status_code == 200, resp.text
    assert sdk.get_transaction_status(written["transactionId"])["state"] == "Committed"

    # With a built-in role too, the single-role view shows the built-in one.
    resp = set_roles(raw, ledger, user.user_id, [names["reads"], "reader"])
    assert resp.status_code == 200, resp.text
    assert resp.json()["assignedRoles"] == [names["reads"], "Reader"]
    assert admin_client.get_user(user.user_id)["assignedRole"] == "Reader"
    users = call(raw, ledger, "GET", "/app/ledgerUsers", params={"api-version": V}).json()["ledgerUsers"]
    assert {"userId": user.user_id, "assignedRoles": [names["reads"], "Reader"]} in users

    # A role held is not deleted; the user loses it, then it is.
    expect_error(call(raw, ledger, "DELETE", "/app/roles", params={"api-version": V, "roleName": names["reads"]}),
                 409, "RoleInUse")
    admin_client.create_or_update_user(user.user_id, {"assignedRole": "Reader"})
    resp = call(raw, ledger, "DELETE", "/app/roles", params={"api-version": V, "roleName": names["reads"]})
    assert resp.status_code == 200, resp.text
    expect_error(call(raw, ledger, "GET", "/app/roles", params={"api-version": V, "roleName": names["reads"]}),
                 404, "ResourceNotFound")


def test_builtin_roles_cannot_be_changed(ledger, raw):
    roles = call(raw, ledger, "GET", "/app/roles", params={"api-version": V}).json()
    assert [r["roleName"] for r in roles[:3]] == ["Administrator", "Contributor", "Reader"]
    reader = roles[2]["roleActions"]
    assert ACT + "read" in reader and ACT + "append" not in reader
    # DeleteUserDefinedRole.json deletes "reader"; CreateUserDefinedRole.json redefines "administrator".
    for name in ("reader", "Reader", "ADMINISTRATOR"):
        expect_error(call(raw, ledger, "DELETE", "/app/roles", params={"api-version": V, "roleName": name}),
                     400, "InvalidInput")
        expect_error(put_roles(raw, ledger, [{"roleName": name, "roleActions": [ACT + "users/write"]}]),
                     400, "InvalidInput")
        expect_error(put_roles(raw, ledger, [{"roleName": name, "roleActions": [ACT + "users/write"]}], "PATCH"),
                     400, "InvalidInput")
    assert call(raw, ledger, "GET", "/app/roles", params={"api-version": V}).json()[:3] == roles[:3]


def test_role_errors(ledger, raw, users, certs_dir):
    name = "errors-" + uuid.uuid4().hex[:8]
    params = {"api-version": V}
    for body in (b"not json", b"[", b"[]", b'{"roles": []}', b'[{"roleName": "x"}]', b'[{"roleActions": []}]',
                 b'[{"roleName": "x", "roleActions": "read"}]', b'[{"roleName": "", "roleActions": []}]',
                 b'[{"roleName": "x", "roleActions": [""]}]', b'[{"roleName": "x", "roleActions": [], "extra": 1}]'):
        expect_error(call(raw, ledger, "PUT", "/app/roles", params=params, data=body,
                          headers={"Content-Type": "application/json"}), 400, "InvalidInput")
    too_long = [{"roleName": "n" * 65, "roleActions": []}]
    err = expect_error(put_roles(raw, ledger, too_long), 400, "InvalidInput")
    assert "64" in err["message"], err
    expect_error(put_roles(raw, ledger, [{"roleName": name, "roleActions": ["a" * 257]}]), 400, "InvalidInput")
    expect_error(put_roles(raw, ledger, [{"roleName": name, "roleActions": [f"a{i}" for i in range(65)]}]),
                 400, "InvalidInput")
    expect_error(put_roles(raw, ledger, [{"roleName": f"{name}-{i}", "roleActions": []} for i in range(33)]),
                 400, "InvalidInput")
    # All or none: the second role's error leaves the first uncreated.
    expect_error(put_roles(raw, ledger, [{"roleName": name, "roleActions": []}, {"roleName": "reader", "roleActions": []}]),
                 400, "InvalidInput")
    expect_error(call(raw, ledger, "GET", "/app/roles", params={**params, "roleName": name}), 404, "ResourceNotFound")
    # Created once; a different definition conflicts; PATCH of an unknown role is 404.
    assert put_roles(raw, ledger, [{"roleName": name, "roleActions": [ACT + "read"]}]).status_code == 200
    assert put_roles(raw, ledger, [{"roleName": name, "roleActions": [ACT + "read"]}]).status_code == 200
    expect_error(put_roles(raw, ledger, [{"roleName": name, "roleActions": [ACT + "append"]}]), 409, "RoleAlreadyExists")
    expect_error(put_roles(raw, ledger, [{"roleName": name + "-none", "roleActions": []}], "PATCH"),
                 404, "ResourceNotFound")
    # Query parameter errors.
    expect_error(call(raw, ledger, "DELETE", "/app/roles", params=params), 400, "InvalidQueryParameterValue")
    expect_error(call(raw, ledger, "GET", "/app/roles", params={**params, "roleName": "n" * 65}),
                 400, "InvalidQueryParameterValue")
    expect_error(call(raw, ledger, "GET", "/app/roles", params={"api-version": "2022-05-13"}),
                 400, "UnsupportedApiVersionValue")
    # Users: unknown roles (user-defined names are case-sensitive), empty and too long lists.
    user_id = users["Reader"].user_id
    for roles in (["nobody-" + name], [name.upper()], [], ["Reader"] * 0 + ["r" * 65], ["Reader"] + [f"x{i}" for i in range(32)]):
        expect_error(set_roles(raw, ledger, user_id, roles), 400, "InvalidInput")
    resp = call(raw, ledger, "PATCH", f"/app/users/{user_id}", params={"api-version": "2022-05-13"},
                json={"assignedRole": "nobody-" + name}, headers={"Content-Type": "application/merge-patch+json"})
    expect_error(resp, 400, "InvalidInput")
    # Not an Administrator, or not a user: 403 (a session of its own: a pooled connection keeps its certificate).
    stranger = ls.make_user_cert(certs_dir, "roles-stranger-" + uuid.uuid4().hex[:6])
    for pem in (users["Contributor"].pem_path, stranger.pem_path):
        with requests.Session() as other:
            resp = other.get(ledger.endpoint + "/app/roles", params=params, cert=str(pem),
                             verify=str(ledger.service_pem), timeout=30)
        expect_error(resp, 403, "NotAllowed")
    resp = call(raw, ledger, "DELETE", "/app/roles", params={**params, "roleName": name})
    assert resp.status_code == 200, resp.text
