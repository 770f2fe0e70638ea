"""Entry tags (API 2024-12-09-preview; issue 12), with raw requests shaped as the newer SDKs send them: the Python
SDK's `create_ledger_entry(..., tags="alice,greeting")` and `list_ledger_entries(collection_id=, tag=)` (its
`use_tags.py` sample), the Java samples' `tags=tag1,tag2` on the list. Debian's SDK 1.0.1 does not know tags."""

import uuid

import ledgerd_support as ls

V = "2024-12-09-preview"
POLL_TIMEOUT_S = 30


def call(raw, ledger, method, path, **kw):
    return raw.request(method, ledger.endpoint + path, cert=str(ledger.admin_pem), verify=str(ledger.service_pem),
                       timeout=30, **kw)


def listed(raw, ledger, **params):
    """Follows nextLink to the end; returns the entries."""
    entries, path, query = [], "/app/transactions", {"api-version": V, **params}
    while path:
        resp = call(raw, ledger, "GET", path, params=query)
        assert resp.status_code == 200, resp.text
        page = resp.json()
        entries += page["entries"]
        path, query = page.get("nextLink"), None
    return entries


def test_use_tags_sample(ledger, raw, admin_client):
    """The SDK's use_tags.py flow: write with tags, list all, list by tag; collections/tags."""
    coll = "messages-" + uuid.uuid4().hex[:8]
    written = {}
    for contents, tags in [("Hello from Alice!", "alice,greeting"), ("Hi from Bob!", "bob,greeting"),
                           ("Bye from Alice!", "alice,goodbye"), ("Bye from Bob!", "bob,goodbye")]:
        resp = call(raw, ledger, "POST", "/app/transactions", params={"api-version": V, "collectionId": coll,
                                                                       "tags": tags}, json={"contents": contents})
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"collectionId": coll}
        written[contents] = resp.headers["x-ms-ccf-transaction-id"]
    admin_client.begin_wait_for_commit(written["Bye from Bob!"]).result(timeout=POLL_TIMEOUT_S)

    everything = listed(raw, ledger, collectionId=coll)
    assert [e["contents"] for e in everything] == list(written)
    assert everything[0]["tags"] == ["alice", "greeting"]
    greetings = listed(raw, ledger, collectionId=coll, tag="greeting")
    assert [e["transactionId"] for e in greetings] == [written["Hello from Alice!"], written["Hi from Bob!"]]
    alice_bye = listed(raw, ledger, collectionId=coll, tags="alice,goodbye")
    assert [e["contents"] for e in alice_bye] == ["Bye from Alice!"]
    assert listed(raw, ledger, collectionId=coll, tag="carol") == []

    entry = call(raw, ledger, "GET", f"/app/transactions/{written['Hi from Bob!']}",
                 params={"api-version": V, "collectionId": coll}).json()
    assert entry == {"state": "Ready", "entry": {"collectionId": coll, "contents": "Hi from Bob!",
                                                  "tags": ["bob", "greeting"],
                                                  "transactionId": written["Hi from Bob!"]}}
    # 2022-05-13 (and the SDK 1.0.1) keep their entry shape.
    old = admin_client.get_ledger_entry(written["Hi from Bob!"], collection_id=coll)
    assert "tags" not in old["entry"]
    # Without collectionId the default collection is read, which this entry is not in (acl-api.md §4).
    missing = call(raw, ledger, "GET", f"/app/transactions/{written['Hi from Bob!']}", params={"api-version": V})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "TransactionNotFound", missing.text

    tags = call(raw, ledger, "GET", "/app/collections/tags", params={"api-version": V, "collectionId": coll})
    assert tags.status_code == 200, tags.text
    assert tags.json() == {"collections": [{"collectionId": coll, "tags": ["alice", "bob", "goodbye", "greeting"]}]}
    every = call(raw, ledger, "GET", "/app/collections/tags", params={"api-version": V}).json()
    assert {"collectionId": coll, "tags": ["alice", "bob", "goodbye", "greeting"]} in every["collections"]


def test_tag_errors(ledger, raw):
    coll = "tag-errors-" + uuid.uuid4().hex[:8]
    for tags, fragment in [("a,,b", "empty tag"), ("x" * 65, "at most 64 bytes"),
                           (",".join(f"t{i}" for i in range(11)), "at most 10")]:
        resp = call(raw, ledger, "POST", "/app/transactions", params={"api-version": V, "collectionId": coll,
                                                                       "tags": tags}, json={"contents": "x"})
        assert resp.status_code == 400, resp.text
        body = ls.error_body(resp)
        assert body["code"] == "InvalidQueryParameterValue" and fragment in body["message"], body
    # An api-version without tags refuses them rather than dropping them.
    resp = call(raw, ledger, "POST", "/app/transactions", params={"api-version": "2022-05-13", "collectionId": coll,
                                                                   "tags": "a"}, json={"contents": "x"})
    assert resp.status_code == 400 and ls.error_body(resp)["code"] == "InvalidQueryParameterValue"
    # Nothing was written to the collection.
    assert call(raw, ledger, "GET", "/app/collections/tags", params={"api-version": V, "collectionId": coll}).json() \
        == {"collections": [{"collectionId": coll, "tags": []}]}
