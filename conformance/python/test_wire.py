"""Wire conventions (acl-api.md §2, §4, §8) and round trips the README examples do not reach: odd collection ids
and contents, empty paging windows, concurrent writers, and the headers and bodies of every answer."""

import subprocess
import threading
import uuid

import pytest
from azure.core.exceptions import ResourceNotFoundError

import ledgerd_support as ls

V = ls.API_VERSION
POLL_TIMEOUT_S = 30


@pytest.mark.parametrize("collection", ["a/b", "with space", "100%", "?&=#", "日本語", "subledger:1", "x" * 256])
def test_collection_ids_round_trip(admin_client, collection):
    contents = "NUL \u0000, quote \", backslash \\, newline \n, emoji \U0001F600, accent é"
    written = admin_client.begin_create_ledger_entry({"contents": contents}, collection_id=collection).result(
        timeout=POLL_TIMEOUT_S)
    assert written["collectionId"] == collection
    assert admin_client.get_current_ledger_entry(collection_id=collection) ["contents"] == contents
    entry = admin_client.begin_get_ledger_entry(written["transactionId"], collection_id=collection).result(
        timeout=POLL_TIMEOUT_S)
    assert entry["entry"] == {"collectionId": collection, "contents": contents, "transactionId": written["transactionId"]}
    listed = list(admin_client.list_ledger_entries(collection_id=collection, from_transaction_id=written["transactionId"]))
    assert listed == [entry["entry"]]
    assert collection in [c["collectionId"] for c in admin_client.list_collections()]


def test_empty_collection_lists_nothing_and_has_no_current_entry(admin_client):
    """A scan over a collection never written walks its (empty) pages to the end."""
    collection = "never-written-" + uuid.uuid4().hex
    assert list(admin_client.list_ledger_entries(collection_id=collection)) == []
    with pytest.raises(ResourceNotFoundError):
        admin_client.get_current_ledger_entry(collection_id=collection)
    assert collection not in [c["collectionId"] for c in admin_client.list_collections()]


def test_concurrent_writers(clients, ledger, admin_client):
    """Four SDK clients writing at once: every write gets its own transaction id and every entry is there."""
    collection = "concurrent-" + uuid.uuid4().hex[:8]
    per_writer = 40
    results, errors = {}, []

    def writer(n):
        client = clients.cert(ledger.admin_pem)
        try:
            for i in range(per_writer):
                contents = f"writer {n} entry {i}"
                results[contents] = client.create_ledger_entry({"contents": contents}, collection_id=collection)["transactionId"]
        except Exception as exc:  # pylint: disable=broad-except
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert len(results) == 4 * per_writer
    assert len(set(results.values())) == 4 * per_writer, "two writes were given the same transaction id"
    last = max(results.values(), key=ls.parse_txid)
    admin_client.begin_wait_for_commit(last).result(timeout=POLL_TIMEOUT_S)
    listed = list(admin_client.list_ledger_entries(collection_id=collection))
    assert {e["contents"]: e["transactionId"] for e in listed} == results
    assert [ls.parse_txid(e["transactionId"]) for e in listed] == sorted(ls.parse_txid(t) for t in results.values())


def test_every_success_carries_a_transaction_id_header(raw, ledger, admin_client, users):
    written = admin_client.begin_create_ledger_entry({"contents": "header check"}).result(timeout=POLL_TIMEOUT_S)
    txid = written["transactionId"]
    user_id = str(uuid.uuid4())
    base, q = ledger.endpoint, {"api-version": V}
    kw = {"verify": raw.verify, "cert": raw.cert, "timeout": 10}
    calls = [
        ("POST", "/app/transactions", {"json": {"contents": "header check 2"}}),
        ("GET", "/app/transactions", {"params": dict(q, fromTransactionId=txid, toTransactionId=txid)}),
        ("GET", "/app/transactions/current", {}),
        ("GET", f"/app/transactions/{txid}", {}),
        ("GET", f"/app/transactions/{txid}/status", {}),
        ("GET", f"/app/transactions/{txid}/receipt", {}),
        ("GET", "/app/collections", {}),
        ("PATCH", f"/app/users/{user_id}", {"json": {"assignedRole": "Reader"},
                                            "headers": {"Content-Type": "application/merge-patch+json"}}),
        ("GET", f"/app/users/{user_id}", {}),
        ("DELETE", f"/app/users/{user_id}", {}),
        ("GET", "/app/governance/members", {}),
        ("GET", "/app/governance/constitution", {}),
        ("GET", "/app/enclaveQuotes", {}),
    ]
    for method, path, extra in calls:
        params = extra.pop("params", q)
        resp = raw.request(method, base + path, params=params, **extra, **kw)
        assert resp.status_code in (200, 204), (method, path, resp.status_code, resp.text)
        header = resp.headers.get("x-ms-ccf-transaction-id")
        assert header, f"{method} {path} has no x-ms-ccf-transaction-id"
        ls.parse_txid(header)
        if resp.status_code == 200:
            assert resp.headers["Content-Type"].startswith("application/json"), (path, resp.headers)
            resp.json()
        else:
            assert resp.content == b"", (path, resp.content)


def test_paging_links_are_relative_and_resumable(raw, ledger, paged):
    """nextLink is a path with a query (the Python client re-bases it on the endpoint); following it verbatim works."""
    kw = {"verify": raw.verify, "cert": raw.cert, "timeout": 10}
    resp = raw.get(ledger.endpoint + "/app/transactions", params={"api-version": V}, **kw)
    body = resp.json()
    assert resp.status_code == 200 and body["state"] == "Ready" and isinstance(body["entries"], list)
    pages = 1
    while "nextLink" in body:
        assert body["nextLink"].startswith("/app/transactions?"), body["nextLink"]
        assert pages < 1000, "paging does not end"
        resp = raw.get(ledger.endpoint + body["nextLink"], **kw)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        pages += 1
    assert pages >= 2, "the ledger (see the paged fixture) spans more than one 1001-seqno window"


def test_user_ids_are_openssl_fingerprints(users):
    for user in users.values():
        out = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", str(user.pem_path)],
                             capture_output=True, text=True, check=True).stdout
        assert out.strip().split("=", 1)[1] == user.user_id


def test_status_of_a_transaction_that_can_never_commit(admin_client):
    """A transaction id whose view ended before its seqno (here: view v-1, seqno far beyond the start of view v)
    can never commit. The 2022-05-13 TransactionState enum is only Committed | Pending; the real service answers
    such ids with 404 InvalidTransactionId (acl-api.md §2), which ends the SDK's begin_wait_for_commit poller
    (1.0.1 raises on the second 404; later clients at once). A 200 {"state":"Invalid"} instead makes
    begin_wait_for_commit poll forever: azure-confidentialledger 1.0.1 has no attempt limit."""
    written = admin_client.begin_create_ledger_entry({"contents": "view probe"}).result(timeout=POLL_TIMEOUT_S)
    view, _ = ls.parse_txid(written["transactionId"])
    assert view >= 2, "a single node is in view >= 2 once it has elected itself"
    never = f"{view - 1}.999999999"
    with pytest.raises(ResourceNotFoundError) as info:
        status = admin_client.get_transaction_status(never)
        pytest.fail(f"GET /app/transactions/{never}/status answered 200 {status}: "
                    "begin_wait_for_commit would poll it forever")
    assert info.value.error is not None and info.value.error.code == "InvalidTransactionId", info.value


def test_a_range_past_the_end_of_the_ledger_ends(raw, ledger, admin_client):
    """list_ledger_entries from past the end of the ledger, with or without to_transaction_id, iterated to its end:
    it ends at once with no entries (it used to answer Loading with a nextLink to itself, forever)."""
    txid = admin_client.begin_create_ledger_entry({"contents": "the end"}, collection_id="the-end").result(timeout=30)[
        "transactionId"]
    view, _ = ls.parse_txid(txid)
    kw = {"verify": raw.verify, "cert": raw.cert, "timeout": 10}
    state = raw.get(ledger.endpoint + "/node/state", params={"api-version": V}, **kw).json()
    end = state["last_seqno"]
    for first, last in ((end + 10, end + 10), (end + 10, end + 1_000_000), (end + 5000, None)):
        kwargs = {"from_transaction_id": f"{view}.{first}"}
        if last is not None:
            kwargs["to_transaction_id"] = f"{view}.{last}"
        for collection in (None, "the-end"):
            pages = []
            # by_page() yields every page, Loading ones too, so a pager that never ends fails here instead of hanging.
            for page in admin_client.list_ledger_entries(collection_id=collection, **kwargs).by_page():
                pages.append(list(page))
                assert len(pages) <= 3, f"paging {kwargs} does not end"
            assert pages == [[]], (kwargs, pages)
