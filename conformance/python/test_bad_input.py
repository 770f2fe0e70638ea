"""Malformed requests, sent with `requests` as the admin (the SDK cannot send most of them).

Each must be refused with a 4xx and an ACL error body {"error":{"code":str,"message":str}}, and append NOTHING:
the state a read is served from (header x-ms-ccf-transaction-id), the latest entry and the collection list are
the same before and after. Boundaries (8,192-byte contents, 256-byte collection ids) are accepted.
"""

import json
import time
import urllib.parse
import uuid

import pytest

import ledgerd_support as ls

V = ls.API_VERSION
MAX_CONTENTS = 8192
MAX_COLLECTION_ID = 256
MAX_BODY = 1 << 20
SETTLE_TIMEOUT_S = 15


class Api:
    def __init__(self, raw, ledger):
        self.raw = raw
        self.base = ledger.endpoint

    def request(self, method, path, params=None, body=None, content_type="application/json", headers=None):
        hdrs = dict(headers or {})
        if body is not None and content_type is not None:
            hdrs["Content-Type"] = content_type
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        # A pre-built query string keeps repeated or missing parameters exactly as written.
        url = self.base + path + ("?" + params if isinstance(params, str) else "")
        # verify and cert per request: a session's own would lose to REQUESTS_CA_BUNDLE from the environment.
        return self.raw.request(method, url, params=None if isinstance(params, str) else params,
                                data=body, headers=hdrs, timeout=30, verify=self.raw.verify, cert=self.raw.cert)

    def state(self):
        """What a read sees: (read-state transaction id, latest default entry, collections)."""
        resp = self.request("GET", "/app/transactions/current", {"api-version": V})
        assert resp.status_code == 200, resp.text
        collections = self.request("GET", "/app/collections", {"api-version": V})
        assert collections.status_code == 200, collections.text
        names = sorted(c["collectionId"] for c in collections.json()["collections"])
        return resp.headers.get("x-ms-ccf-transaction-id"), resp.json(), names

    def settled_state(self):
        """The state once the ledger is quiet: two reads 60 ms apart agree (a signature follows a write in 5 ms)."""
        previous = [None]

        def stable():
            time.sleep(0.06)
            current = self.state()
            same, previous[0] = current == previous[0], current
            return same and current

        return ls.wait_until(stable, SETTLE_TIMEOUT_S, "the ledger to settle", interval_s=0)

    def post_entry(self, body, params=None, **kwargs):
        params = {"api-version": V} if params is None else params
        return self.request("POST", "/app/transactions", params, body, **kwargs)


@pytest.fixture(scope="module")
def api(raw, ledger, admin_client):
    admin_client.begin_create_ledger_entry({"contents": "bad-input baseline"}).result(timeout=30)
    return Api(raw, ledger)


def refused(api, send, statuses=(400,)):
    """Sends a bad request; asserts the status, the error body, and that nothing was appended."""
    before = api.settled_state()
    resp = send()
    assert resp.status_code in statuses, f"expected {statuses}, got {resp.status_code}: {resp.text[:300]}"
    err = ls.error_body(resp)
    after = api.settled_state()
    assert after == before, f"the ledger changed after a refused request: {before} -> {after}"
    return err


def contents_of(n_bytes, char):
    """A string of exactly n_bytes of UTF-8: as many `char` as fit, padded with ASCII."""
    count = n_bytes // len(char.encode())
    contents = char * count + "a" * (n_bytes - count * len(char.encode()))
    assert len(contents.encode()) == n_bytes
    return contents


# ------------------------------------------------------------ contents size (bytes of UTF-8, not characters)


@pytest.mark.parametrize("char,ensure_ascii", [("a", False), ("é", False), ("é", True), ("€", False)],
                         ids=["ascii", "2-byte-utf8", "2-byte-json-escaped", "3-byte-utf8"])
def test_contents_of_8192_bytes_is_accepted(api, admin_client, char, ensure_ascii):
    contents = contents_of(MAX_CONTENTS, char)
    collection = "limits-" + uuid.uuid4().hex[:8]
    resp = api.post_entry(json.dumps({"contents": contents}, ensure_ascii=ensure_ascii).encode(),
                          {"api-version": V, "collectionId": collection})
    assert resp.status_code == 200, resp.text
    txid = resp.headers["x-ms-ccf-transaction-id"]
    assert resp.json() == {"collectionId": collection}
    entry = admin_client.begin_get_ledger_entry(txid, collection_id=collection).result(timeout=30)
    assert entry["entry"]["contents"] == contents


@pytest.mark.parametrize("char,ensure_ascii", [("a", False), ("é", False), ("é", True), ("€", False)],
                         ids=["ascii", "2-byte-utf8", "2-byte-json-escaped", "3-byte-utf8"])
def test_contents_of_8193_bytes_is_refused(api, char, ensure_ascii):
    contents = contents_of(MAX_CONTENTS + 1, char)
    body = json.dumps({"contents": contents}, ensure_ascii=ensure_ascii).encode()
    refused(api, lambda: api.post_entry(body))


# ------------------------------------------------------------ malformed bodies

BAD_BODIES = {
    "non-utf8": b'{"contents":"\xff\xfe bad"}',
    "non-utf8-overlong": b'{"contents":"\xc0\xaf"}',
    "malformed-json": b'{"contents":',
    "trailing-garbage": b'{"contents":"x"} {"contents":"y"}',
    "empty-body": b"",
    "json-array": b'["contents"]',
    "json-string": b'"contents"',
    "contents-number": b'{"contents":5}',
    "contents-null": b'{"contents":null}',
    "contents-bool": b'{"contents":true}',
    "contents-array": b'{"contents":["a"]}',
    "contents-object": b'{"contents":{"a":"b"}}',
    "missing-contents": b"{}",
    "misspelt-contents": b'{"content":"typo"}',
}


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_malformed_body_is_refused(api, case):
    refused(api, lambda: api.post_entry(BAD_BODIES[case]))


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "application/x-www-form-urlencoded"])
def test_unsupported_content_type_is_refused(api, content_type):
    refused(api, lambda: api.post_entry(b'{"contents":"typed wrong"}', content_type=content_type), (400, 415))


def test_body_over_1_mib_is_refused(api):
    filler = MAX_BODY + 1 - len(b'{"contents":""}')
    body = b'{"contents":"' + b"a" * filler + b'"}'
    assert len(body) == MAX_BODY + 1
    refused(api, lambda: api.post_entry(body), (413,))


def test_body_of_exactly_1_mib_is_read_then_refused_for_its_contents(api):
    filler = MAX_BODY - len(b'{"contents":""}')
    body = b'{"contents":"' + b"a" * filler + b'"}'
    assert len(body) == MAX_BODY
    refused(api, lambda: api.post_entry(body), (400,))


# ------------------------------------------------------------ collection ids


def test_collection_id_of_256_bytes_is_accepted(api, admin_client):
    collection = "c" * (MAX_COLLECTION_ID - 2) + "é"
    assert len(collection.encode()) == MAX_COLLECTION_ID
    resp = api.post_entry({"contents": "long collection"}, {"api-version": V, "collectionId": collection})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"collectionId": collection}
    admin_client.begin_wait_for_commit(resp.headers["x-ms-ccf-transaction-id"]).result(timeout=30)
    assert admin_client.get_current_ledger_entry(collection_id=collection)["contents"] == "long collection"


@pytest.mark.parametrize("collection", ["c" * 257, "é" * 128 + "c"], ids=["ascii", "utf8"])
def test_collection_id_of_257_bytes_is_refused(api, collection):
    assert len(collection.encode()) == MAX_COLLECTION_ID + 1
    refused(api, lambda: api.post_entry({"contents": "x"}, {"api-version": V, "collectionId": collection}))


MISREAD_QUERIES = {
    "unescaped-semicolon": f"api-version={V}&collectionId=audit;2026",
    "CollectionId": f"api-version={V}&CollectionId=audit",
    "collectionid": f"api-version={V}&collectionid=audit",
}


@pytest.mark.parametrize("query", MISREAD_QUERIES.values(), ids=MISREAD_QUERIES.keys())
def test_query_that_would_be_misread_is_refused(api, query):
    """Never silently written to subledger:0 (issue 9, item 12). (A malformed escape such as %zz can't be sent
    with requests, which re-encodes it as %25zz; the Go tests send it.)"""
    err = refused(api, lambda: api.request("POST", "/app/transactions", query, {"contents": "x"}))
    assert err["code"] == "InvalidQueryParameterValue", err


@pytest.mark.parametrize("collection", ["a\x00b", "a\nb", "a\x1b[31mb", "a\x7fb", "a\u202eb", "a\u2066b"],
                         ids=["nul", "newline", "escape", "del", "rlo", "lri"])
def test_collection_id_with_control_or_bidi_character_is_refused(api, collection):
    err = refused(api, lambda: api.post_entry({"contents": "x"}, {"api-version": V, "collectionId": collection}))
    assert err["code"] == "InvalidQueryParameterValue", err


def test_sdk_escapes_a_semicolon_in_a_collection_id(admin_client):
    """The SDK percent-encodes ';', so a collection id with one is written and read back as itself."""
    collection = f"audit;{uuid.uuid4().hex[:8]}"
    result = admin_client.create_ledger_entry({"contents": "semicolon"}, collection_id=collection)
    assert result["collectionId"] == collection
    admin_client.begin_wait_for_commit(result["transactionId"]).result(timeout=30)
    assert admin_client.get_current_ledger_entry(collection_id=collection)["contents"] == "semicolon"
    assert collection in [c["collectionId"] for c in admin_client.list_collections()]



BAD_TXIDS = ["abc", "1.", ".2", "-1.2", "1.2.3", "1", "1.-2", "1.2a", "0x1.2", "1 .2"]


@pytest.mark.parametrize("suffix", ["", "/status", "/receipt"], ids=["entry", "status", "receipt"])
@pytest.mark.parametrize("txid", BAD_TXIDS)
def test_malformed_transaction_id_is_refused(api, txid, suffix):
    path = "/app/transactions/" + urllib.parse.quote(txid, safe="") + suffix
    refused(api, lambda: api.request("GET", path, {"api-version": V}), (400, 404))


@pytest.mark.parametrize("param", ["fromTransactionId", "toTransactionId"])
@pytest.mark.parametrize("txid", ["abc", "1.", "-1.2", "1.2.3"])
def test_malformed_range_bound_is_refused(api, param, txid):
    refused(api, lambda: api.request("GET", "/app/transactions", {"api-version": V, param: txid}))


# ------------------------------------------------------------ users


@pytest.mark.parametrize("body", [{"assignedRole": "Superuser"}, {"assignedRole": "reader "}, {"assignedRole": 5},
                                  {"assignedRole": None}, {}, ["Reader"]],
                         ids=["unknown-role", "near-miss", "number", "null", "missing", "array"])
def test_bad_role_in_patch_is_refused(api, admin_client, body):
    user_id = str(uuid.uuid4())
    refused(api, lambda: api.request("PATCH", f"/app/users/{user_id}", {"api-version": V}, body,
                                     content_type="application/merge-patch+json"))
    resp = api.request("GET", f"/app/users/{user_id}", {"api-version": V})
    assert resp.status_code == 404, f"a refused PATCH created the user: {resp.text}"
    ls.error_body(resp)


def test_patch_user_accepts_plain_json_and_encoded_ids(api, users):
    """acl-api.md §8: PATCH users as application/json (0.1-preview clients) and %3A-encoded fingerprints."""
    reader = users["Reader"]
    encoded = urllib.parse.quote(reader.user_id, safe="")
    assert "%3A" in encoded
    resp = api.request("PATCH", f"/app/users/{encoded}", {"api-version": V}, {"assignedRole": "Reader"})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"userId": reader.user_id, "assignedRole": "Reader"}
    resp = api.request("GET", f"/app/users/{encoded}", {"api-version": V})
    assert resp.status_code == 200 and resp.json() == {"userId": reader.user_id, "assignedRole": "Reader"}


# ------------------------------------------------------------ api-version


@pytest.mark.parametrize("query", ["", "api-version=", "api-version=1999-01-01", "api-version=2022-05-13x",
                                   "api-version=latest"],
                         ids=["missing", "empty", "unknown", "suffixed", "word"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_bad_api_version_is_refused(api, query, method):
    if method == "GET":
        refused(api, lambda: api.request("GET", "/app/transactions/current", query))
    else:
        refused(api, lambda: api.post_entry({"contents": "no version"}, query))


def test_repeated_identical_api_version_is_accepted(api):
    """The JS client appends api-version to nextLink again on every page (acl-api.md §4)."""
    resp = api.request("GET", "/app/transactions/current", f"api-version={V}&api-version={V}")
    assert resp.status_code == 200, resp.text
    resp = api.request("GET", "/app/transactions", f"api-version={V}&api-version={V}&api-version={V}")
    assert resp.status_code == 200, resp.text
    assert "entries" in resp.json()


# ------------------------------------------------------------ and after all that, the ledger still works


def test_ledger_still_works_after_bad_input(api, admin_client):
    before_txid, _, _ = api.settled_state()
    resp = api.post_entry({"contents": "still alive"})
    assert resp.status_code == 200, resp.text
    txid = resp.headers["x-ms-ccf-transaction-id"]
    assert ls.parse_txid(txid) > ls.parse_txid(before_txid)
    status = admin_client.begin_wait_for_commit(txid).result(timeout=30)
    assert status == {"state": "Committed", "transactionId": txid}
    assert admin_client.get_current_ledger_entry()["contents"] == "still alive"
