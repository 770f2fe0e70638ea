"""Roles (acl-api.md §5): Reader < Contributor < Administrator, enforced per request with 403 NotAllowed;
no credentials at all is 401."""

import uuid

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

import ledgerd_support as ls

POLL_TIMEOUT_S = 30


def forbidden(call, *args, **kwargs):
    """Runs an SDK call that must fail with 403 NotAllowed; returns the error message."""
    with pytest.raises(HttpResponseError) as info:
        call(*args, **kwargs)
    err = ls.sdk_error(info.value)
    assert (err["status"], err["code"]) == (403, "NotAllowed"), err
    return err["message"]


@pytest.fixture(scope="module")
def known_tx(admin_client):
    written = admin_client.begin_create_ledger_entry({"contents": "roles fixture"}, collection_id="roles").result(
        timeout=POLL_TIMEOUT_S)
    return written["transactionId"]


def read_everything(client, txid):
    """Every read operation a Reader may call."""
    assert client.get_current_ledger_entry(collection_id="roles")["collectionId"] == "roles"
    assert client.begin_get_ledger_entry(txid, collection_id="roles").result(timeout=POLL_TIMEOUT_S)["state"] == "Ready"
    assert client.get_transaction_status(txid)["state"] == "Committed"
    assert client.begin_get_receipt(txid).result(timeout=POLL_TIMEOUT_S)["state"] == "Ready"
    assert any(e["transactionId"] == txid for e in client.list_ledger_entries(collection_id="roles", from_transaction_id=txid))
    assert "roles" in [c["collectionId"] for c in client.list_collections()]
    assert list(client.list_consortium_members())
    assert client.get_constitution()["digest"]
    assert client.get_enclave_quotes()["currentNodeId"]


def test_reader_reads_but_cannot_write(clients, users, known_tx):
    reader = clients.cert(users["Reader"].pem_path)
    read_everything(reader, known_tx)
    message = forbidden(reader.create_ledger_entry, {"contents": "a reader may not write"})
    assert "POST" in message or "transactions" in message, message
    forbidden(reader.create_ledger_entry, {"contents": "nor here"}, collection_id="roles")
    forbidden(reader.get_user, users["Reader"].user_id)
    forbidden(reader.create_or_update_user, users["Reader"].user_id, {"assignedRole": "Administrator"})
    forbidden(reader.delete_user, users["Contributor"].user_id)


def test_contributor_writes_but_cannot_manage_users(clients, users, admin_client, known_tx):
    contributor = clients.cert(users["Contributor"].pem_path)
    read_everything(contributor, known_tx)
    written = contributor.begin_create_ledger_entry({"contents": "by the contributor"}, collection_id="roles").result(
        timeout=POLL_TIMEOUT_S)
    assert contributor.get_current_ledger_entry(collection_id="roles")["contents"] == "by the contributor"
    forbidden(contributor.get_user, users["Contributor"].user_id)
    forbidden(contributor.create_or_update_user, users["Contributor"].user_id, {"assignedRole": "Administrator"})
    forbidden(contributor.create_or_update_user, str(uuid.uuid4()), {"assignedRole": "Reader"})
    forbidden(contributor.delete_user, users["Reader"].user_id)
    # Nothing changed: the roles are as the admin set them.
    assert admin_client.get_user(users["Contributor"].user_id)["assignedRole"] == "Contributor"
    assert admin_client.get_user(users["Reader"].user_id)["assignedRole"] == "Reader"
    assert written["collectionId"] == "roles"


def test_administrator_can_do_everything(clients, certs_dir, admin_client, known_tx):
    second_admin = ls.make_user_cert(certs_dir, "second-admin", "rsa")
    admin_client.create_or_update_user(second_admin.user_id, {"assignedRole": "Administrator"})
    client = clients.cert(second_admin.pem_path)
    read_everything(client, known_tx)
    client.begin_create_ledger_entry({"contents": "by the second admin"}, collection_id="roles").result(
        timeout=POLL_TIMEOUT_S)
    user_id = str(uuid.uuid4())
    assert client.create_or_update_user(user_id, {"assignedRole": "Reader"})["assignedRole"] == "Reader"
    assert client.get_user(user_id) == {"userId": user_id, "assignedRole": "Reader"}
    client.delete_user(user_id)
    admin_client.delete_user(second_admin.user_id)


def test_unknown_certificate_is_forbidden(clients, certs_dir, known_tx):
    stranger = clients.cert(ls.make_user_cert(certs_dir, "stranger").pem_path)
    forbidden(stranger.get_current_ledger_entry)
    forbidden(stranger.get_transaction_status, known_tx)
    forbidden(stranger.get_constitution)
    forbidden(stranger.create_ledger_entry, {"contents": "a stranger may not write"})
    forbidden(stranger.get_user, "anyone")


def test_no_credentials_is_unauthenticated(ledger, known_tx):
    """Plain HTTPS pinned to the service certificate, without a client certificate or token: 401."""
    base = ledger.endpoint
    params = {"api-version": ls.API_VERSION}
    for method, path in (("GET", "/app/transactions/current"), ("GET", f"/app/transactions/{known_tx}/status"),
                         ("GET", "/app/governance/constitution"), ("GET", "/app/users/anyone")):
        resp = requests.request(method, base + path, params=params, verify=str(ledger.service_pem), timeout=10)
        assert resp.status_code == 401, (path, resp.status_code, resp.text)
        ls.error_body(resp)
    resp = requests.post(base + "/app/transactions", params=params, json={"contents": "anonymous"},
                         verify=str(ledger.service_pem), timeout=10)
    assert resp.status_code == 401, resp.text
    ls.error_body(resp)
    # The health endpoint needs no credentials.
    assert requests.get(base + "/healthz", verify=str(ledger.service_pem), timeout=10).status_code == 200


def test_sdk_without_client_certificate_is_unauthenticated(ledger, clients):
    """The SDK with a token credential that supplies an empty bearer token gets 401, not 403."""
    client = clients.token(ls.StaticTokenCredential(""))
    with pytest.raises(ClientAuthenticationError):
        client.get_constitution()


def test_deleted_user_is_refused_on_the_very_next_request(clients, certs_dir, admin_client):
    user = ls.make_user_cert(certs_dir, "short-lived", "ec")
    admin_client.create_or_update_user(user.user_id, {"assignedRole": "Contributor"})
    client = clients.cert(user.pem_path)  # one client: one kept-alive TLS connection throughout
    client.begin_create_ledger_entry({"contents": "while a contributor"}, collection_id="roles").result(
        timeout=POLL_TIMEOUT_S)

    admin_client.create_or_update_user(user.user_id, {"assignedRole": "Reader"})
    forbidden(client.create_ledger_entry, {"contents": "demoted: must be refused"}, collection_id="roles")
    assert client.get_current_ledger_entry(collection_id="roles")["contents"] == "while a contributor"

    admin_client.delete_user(user.user_id)
    forbidden(client.get_current_ledger_entry, collection_id="roles")

    admin_client.create_or_update_user(user.user_id, {"assignedRole": "Administrator"})
    assert client.get_user(user.user_id)["assignedRole"] == "Administrator"
    admin_client.delete_user(user.user_id)
    forbidden(client.get_user, user.user_id)


def test_user_read_back_and_patched_unchanged(certs_dir, admin_client):
    """The SDK's own round trip: get_user, then create_or_update_user with what it returned (which carries the
    read-only userId); {} is a merge patch that changes nothing; a userId that is not the path's is a 400."""
    user = ls.make_user_cert(certs_dir, "round-trip", "ec")
    with pytest.raises(HttpResponseError) as info:  # {} cannot create a user: it has no role
        admin_client.create_or_update_user(user.user_id, {})
    err = ls.sdk_error(info.value)
    assert (err["status"], err["code"]) == (400, "InvalidInput") and "assignedRole" in err["message"], err

    admin_client.create_or_update_user(user.user_id, {"assignedRole": "Reader"})
    u = admin_client.get_user(user.user_id)
    assert u == {"userId": user.user_id, "assignedRole": "Reader"}
    assert admin_client.create_or_update_user(user.user_id, u) == u
    assert admin_client.create_or_update_user(user.user_id, {}) == u
    assert admin_client.get_user(user.user_id) == u

    u["assignedRole"] = "Contributor"
    assert admin_client.create_or_update_user(user.user_id, u) == u
    assert admin_client.get_user(user.user_id)["assignedRole"] == "Contributor"

    other = ls.make_user_cert(certs_dir, "round-trip-other", "ec")
    with pytest.raises(HttpResponseError) as info:
        admin_client.create_or_update_user(user.user_id, {"assignedRole": "Administrator", "userId": other.user_id})
    err = ls.sdk_error(info.value)
    assert (err["status"], err["code"]) == (400, "InvalidInput"), err
    assert "userId" in err["message"] and other.user_id in err["message"] and user.user_id in err["message"], err
    assert admin_client.get_user(user.user_id)["assignedRole"] == "Contributor"
    admin_client.delete_user(user.user_id)
