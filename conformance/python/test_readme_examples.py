"""Every example of the seed client's README (API 0.1-preview), translated to azure-confidentialledger 1.0.1
(API 2022-05-13) per acl-api.md §7, run sync and async against a real ledgerd.

Seed -> 1.0.1:  append_to_ledger -> create_ledger_entry / begin_create_ledger_entry;
wait_until_durable -> begin_wait_for_commit; get_transaction_receipt -> get_receipt / begin_get_receipt;
get_ledger_entry() -> get_current_ledger_entry; get_ledger_entry(tx) -> get_ledger_entry / begin_get_ledger_entry;
get_ledger_entries -> list_ledger_entries; sub_ledger_id -> collection_id; get_consortium -> list_consortium_members;
ConfidentialLedgerIdentityServiceClient -> ConfidentialLedgerCertificateClient.
"""

import asyncio
import hashlib
import json
import logging
import socket
import ssl
import uuid

import pytest
from cryptography.hazmat.primitives import serialization
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from azure.confidentialledger import ConfidentialLedgerCertificateCredential, ConfidentialLedgerClient
from azure.confidentialledger.aio import ConfidentialLedgerClient as AsyncConfidentialLedgerClient
from azure.confidentialledger.certificate import ConfidentialLedgerCertificateClient
from azure.confidentialledger.certificate.aio import (
    ConfidentialLedgerCertificateClient as AsyncConfidentialLedgerCertificateClient,
)

import ledgerd_support as ls

LEDGER_ID = "ledger"  # ledgerd's default --ledger-id
DEFAULT_COLLECTION = "subledger:0"  # what the real service returns (acl-api.md §2)
POLL_TIMEOUT_S = 30


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 120))


def aio_cert_client(ledger, pem_path=None, **kwargs):
    return AsyncConfidentialLedgerClient(
        endpoint=ledger.endpoint,
        credential=ConfidentialLedgerCertificateCredential(certificate_path=str(pem_path or ledger.admin_pem)),
        ledger_certificate_path=str(ledger.service_pem),
        **kwargs,
    )


def result(poller):
    """LROPoller.result with a bound: a poller that has not finished in time fails the test."""
    value = poller.result(timeout=POLL_TIMEOUT_S)
    assert poller.done(), "poller did not finish within the deadline"
    return value


async def aresult(poller):
    return await asyncio.wait_for(poller.result(), POLL_TIMEOUT_S)


def check_txid(txid):
    view, seqno = ls.parse_txid(txid)
    assert view >= 1 and seqno >= 1, txid
    return view, seqno


def committed_status(client, txid):
    status = client.get_transaction_status(txid)
    assert status == {"state": "Committed", "transactionId": txid}
    return status


def node_tls_cert(ledger, host="127.0.0.1"):
    ctx = ssl.create_default_context(cafile=str(ledger.service_pem))
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", ledger.port), timeout=10),
                         server_hostname=host) as tls:
        return ls.load_cert_pem(ssl.DER_cert_to_PEM_cert(tls.getpeercert(binary_form=True)))


# ------------------------------------------------------------ receipts


def verify_with_ledgerctl(binaries, ledger, body, path):
    path.write_text(json.dumps(body))
    return ls.run_ledgerctl(binaries["ledgerctl"], "verify", "--service-cert", ledger.service_pem, path)


def mutations(body, foreign_cert_pem):
    """Copies of a receipt response, each with one field changed; every one must fail verification."""
    receipt = body["receipt"]
    leaf_key = ls.receipt_key(receipt, "leafComponents")
    proof = receipt["proof"]
    assert proof, "a receipt in a ledger of many transactions has a non-empty proof"
    out = {}

    def mutated(name, fn):
        copy = json.loads(json.dumps(body))
        fn(copy["receipt"])
        assert copy != body
        out[name] = copy

    side = "left" if "left" in proof[0] else "right"
    mutated("proof", lambda r: r["proof"][0].__setitem__(side, ls.flip_hex(r["proof"][0][side], 5)))
    mutated("proof-dropped", lambda r: r["proof"].pop())
    mutated("signature", lambda r: r.__setitem__("signature", ls.flip_b64(r["signature"], 20)))
    for comp in ("writeSetDigest", "claimsDigest", "commitEvidence"):
        key = ls.receipt_key(receipt[leaf_key], comp)
        mutated(comp, lambda r, k=key: r[leaf_key].__setitem__(k, ls.flip_hex(r[leaf_key][k], len(r[leaf_key][k]) - 3)))
    mutated("cert", lambda r: r.__setitem__("cert", foreign_cert_pem))
    return out


def check_receipt(binaries, ledger, body, txid, tmp_path, node_id):
    assert body["state"] == "Ready" and body["transactionId"] == txid, body
    receipt = body["receipt"]
    for field in ("cert", "leafComponents", "nodeId", "proof", "signature"):
        assert ls.receipt_field(receipt, field) is not None, f"receipt lacks {field}: {receipt}"
    assert ls.receipt_field(receipt, "nodeId") == node_id
    leaf = ls.receipt_field(receipt, "leafComponents")
    assert ls.receipt_field(leaf, "commitEvidence").startswith(f"ce:{txid}:")
    # An entry's claims digest is its LedgerEntryV1 application claim's (test_application_claims.py), not zeros.
    claims_digest = ls.receipt_field(leaf, "claimsDigest")
    assert len(claims_digest) == 64 and claims_digest != "0" * 64, claims_digest
    good = verify_with_ledgerctl(binaries, ledger, body, tmp_path / f"receipt-{txid}.json")
    assert good.returncode == 0, f"valid receipt rejected: {good.stdout}{good.stderr}"
    assert f"transaction {txid}" in good.stdout, good.stdout
    # The receipt object alone is accepted too.
    alone = verify_with_ledgerctl(binaries, ledger, receipt, tmp_path / f"receipt-{txid}-object.json")
    assert alone.returncode == 0, alone.stderr
    other = ls.make_user_cert(tmp_path, "other-service", "ec")
    foreign_pem = other.cert.public_bytes(serialization.Encoding.PEM).decode()
    for name, bad in mutations(body, foreign_pem).items():
        proc = verify_with_ledgerctl(binaries, ledger, bad, tmp_path / f"receipt-{txid}-{name}.json")
        assert proc.returncode == 1, f"receipt with mutated {name} was not rejected: {proc.stdout}{proc.stderr}"
    # Against a service certificate the node does not chain to, it must fail too.
    proc = ls.run_ledgerctl(binaries["ledgerctl"], "verify", "--service-cert", other.pem_path, tmp_path / f"receipt-{txid}.json")
    assert proc.returncode == 1, proc.stdout


@pytest.fixture(scope="module")
def node_id(ledger, admin_client):
    quotes = admin_client.get_enclave_quotes()
    return quotes["currentNodeId"]


# ------------------------------------------------------------ Create a client


def test_create_client_with_identity_from_certificate_client(ledger, tmp_path):
    """README "Create a client" / "Using certificate authentication": fetch the ledger identity, pin it, connect.

    The identity endpoint is served by ledgerd itself (/ledgerIdentity/{ledgerId}). Azure's identity service has a
    publicly trusted certificate; a local ledger has none, so the certificate client trusts the service
    certificate (connection_verify) - the same trust anchor the fetched certificate must then equal.
    """
    identity_client = ConfidentialLedgerCertificateClient(ledger.endpoint, connection_verify=str(ledger.service_pem))
    with identity_client:
        network_identity = identity_client.get_ledger_identity(ledger_id=LEDGER_ID)
    assert network_identity["ledgerId"] == LEDGER_ID
    fetched = ls.load_cert_pem(network_identity["ledgerTlsCertificate"])
    assert fetched == ls.load_cert(ledger.service_pem)

    ledger_tls_cert_file_name = tmp_path / "ledger_certificate.pem"
    ledger_tls_cert_file_name.write_text(network_identity["ledgerTlsCertificate"])
    credential = ConfidentialLedgerCertificateCredential(str(ledger.admin_pem))
    with ConfidentialLedgerClient(
        endpoint=ledger.endpoint, credential=credential, ledger_certificate_path=str(ledger_tls_cert_file_name)
    ) as ledger_client:
        constitution = ledger_client.get_constitution()
    assert constitution["digest"]


def test_identity_endpoint_by_hostname_and_other_ledger_id(ledger):
    """The node certificate also carries a localhost SAN. Asked for another ledger id, the endpoint either says
    404 (as Azure's multi-ledger identity service would) or names its own ledger: it never claims to be another."""
    with ConfidentialLedgerCertificateClient(
        f"https://localhost:{ledger.port}", connection_verify=str(ledger.service_pem)
    ) as identity_client:
        identity = identity_client.get_ledger_identity(ledger_id=LEDGER_ID)
        assert ls.load_cert_pem(identity["ledgerTlsCertificate"]) == ls.load_cert(ledger.service_pem)
        try:
            other = identity_client.get_ledger_identity(ledger_id="no-such-ledger")
        except ResourceNotFoundError:
            other = None
        assert other is None or other["ledgerId"] == LEDGER_ID, other


def test_async_create_client_with_identity(ledger, tmp_path):
    async def scenario():
        async with AsyncConfidentialLedgerCertificateClient(
            ledger.endpoint, connection_verify=str(ledger.service_pem)
        ) as identity_client:
            network_identity = await identity_client.get_ledger_identity(ledger_id=LEDGER_ID)
        path = tmp_path / "ledger_certificate.pem"
        path.write_text(network_identity["ledgerTlsCertificate"])
        credential = ConfidentialLedgerCertificateCredential(str(ledger.admin_pem))
        ledger_client = AsyncConfidentialLedgerClient(
            endpoint=ledger.endpoint, credential=credential, ledger_certificate_path=str(path)
        )
        # README: "Call close when the client ... no longer needed" / "use them as async context managers".
        async with ledger_client:
            constitution = await ledger_client.get_constitution()
        return network_identity, constitution

    network_identity, constitution = run(scenario())
    assert ls.load_cert_pem(network_identity["ledgerTlsCertificate"]) == ls.load_cert(ledger.service_pem)
    assert constitution["digest"] == hashlib.sha256(constitution["script"].encode()).hexdigest()


# ------------------------------------------------------------ Append entry


def test_append_entry_and_wait_for_commit(admin_client):
    first_append_result = admin_client.create_ledger_entry({"contents": "Hello world!"})
    assert first_append_result == {"collectionId": DEFAULT_COLLECTION, "transactionId": first_append_result["transactionId"]}
    _, first_seqno = check_txid(first_append_result["transactionId"])

    # wait_until_durable -> begin_wait_for_commit
    status = result(admin_client.begin_wait_for_commit(first_append_result["transactionId"]))
    assert status == {"state": "Committed", "transactionId": first_append_result["transactionId"]}
    committed_status(admin_client, first_append_result["transactionId"])

    # append_to_ledger(..., wait_for_commit=True) -> begin_create_ledger_entry
    append_result = result(admin_client.begin_create_ledger_entry({"contents": "Hello world, again!"}))
    assert append_result["collectionId"] == DEFAULT_COLLECTION
    _, seqno = check_txid(append_result["transactionId"])
    assert seqno > first_seqno
    committed_status(admin_client, append_result["transactionId"])


def test_async_append_entry_and_wait_for_commit(ledger):
    async def scenario():
        async with aio_cert_client(ledger) as client:
            first = await client.create_ledger_entry({"contents": "Hello async world!"})
            status = await aresult(await client.begin_wait_for_commit(first["transactionId"]))
            again = await aresult(await client.begin_create_ledger_entry({"contents": "Hello async world, again!"}))
            again_status = await client.get_transaction_status(again["transactionId"])
            entry = await aresult(await client.begin_get_ledger_entry(again["transactionId"]))
            return first, status, again, again_status, entry

    first, status, again, again_status, entry = run(scenario())
    assert first["collectionId"] == DEFAULT_COLLECTION
    assert status == {"state": "Committed", "transactionId": first["transactionId"]}
    assert ls.parse_txid(again["transactionId"]) > ls.parse_txid(first["transactionId"])
    assert again_status == {"state": "Committed", "transactionId": again["transactionId"]}
    assert entry["state"] == "Ready"
    assert entry["entry"] == {"collectionId": DEFAULT_COLLECTION, "contents": "Hello async world, again!",
                              "transactionId": again["transactionId"]}


# ------------------------------------------------------------ Get receipt


def test_get_receipt_and_verify(binaries, ledger, admin_client, node_id, tmp_path):
    append_result = result(admin_client.begin_create_ledger_entry({"contents": "receipt me"}))
    txid = append_result["transactionId"]

    # get_receipt is a single call: repeat it (bounded) until Ready.
    receipt = ls.wait_until(lambda: (r := admin_client.get_receipt(txid))["state"] == "Ready" and r,
                            POLL_TIMEOUT_S, f"receipt of {txid}")
    check_receipt(binaries, ledger, receipt, txid, tmp_path, node_id)

    polled = result(admin_client.begin_get_receipt(txid))
    assert polled == receipt, "two receipts of the same committed transaction differ"


def test_async_get_receipt_and_verify(binaries, ledger, node_id, tmp_path):
    async def scenario():
        async with aio_cert_client(ledger) as client:
            written = await aresult(await client.begin_create_ledger_entry({"contents": "receipt me, async"},
                                                                            collection_id="receipts"))
            receipt = await aresult(await client.begin_get_receipt(written["transactionId"]))
            return written, receipt

    written, receipt = run(scenario())
    assert written["collectionId"] == "receipts"
    check_receipt(binaries, ledger, receipt, written["transactionId"], tmp_path, node_id)


# ------------------------------------------------------------ Using sub-ledgers (collections)


def test_collections(admin_client):
    alice = admin_client.create_ledger_entry({"contents": "Hello from Alice"}, collection_id="Alice")
    bob = admin_client.create_ledger_entry({"contents": "Hello from Bob"}, collection_id="Bob")
    assert alice["collectionId"] == "Alice" and bob["collectionId"] == "Bob"

    append_result = result(admin_client.begin_create_ledger_entry({"contents": "Hello world?"}))
    # The append result contains the collection id assigned.
    assert append_result["collectionId"] == DEFAULT_COLLECTION
    entry_by_collection = result(admin_client.begin_get_ledger_entry(
        transaction_id=append_result["transactionId"], collection_id=append_result["collectionId"]))
    assert entry_by_collection["entry"]["contents"] == "Hello world?"
    # When a ledger entry is retrieved without a collection specified, the service default is used.
    entry = result(admin_client.begin_get_ledger_entry(transaction_id=append_result["transactionId"]))
    assert entry["entry"]["contents"] == entry_by_collection["entry"]["contents"]
    assert entry["entry"]["collectionId"] == entry_by_collection["entry"]["collectionId"] == DEFAULT_COLLECTION

    # Alice's entry is read from Alice's collection ...
    alice_entry = result(admin_client.begin_get_ledger_entry(alice["transactionId"], collection_id="Alice"))
    assert alice_entry["entry"] == {"collectionId": "Alice", "contents": "Hello from Alice",
                                    "transactionId": alice["transactionId"]}
    # ... and list_collections (no seed equivalent) names every collection written to.
    names = [c["collectionId"] for c in admin_client.list_collections()]
    assert len(names) == len(set(names)), names
    assert {"Alice", "Bob", DEFAULT_COLLECTION} <= set(names)


def test_entry_of_other_collection_is_not_returned(admin_client):
    """An entry written to collection A is not readable as an entry of collection B (acl-api.md §4 [infer])."""
    written = result(admin_client.begin_create_ledger_entry({"contents": "only in A"}, collection_id="A-only"))
    with pytest.raises(HttpResponseError) as info:
        result(admin_client.begin_get_ledger_entry(written["transactionId"], collection_id="B-other"))
    assert 400 <= info.value.status_code < 500, info.value
    assert info.value.error is not None and info.value.error.code


# ------------------------------------------------------------ Retrieving ledger entries


def test_retrieving_ledger_entries(admin_client):
    collection = "sub-ledger-" + uuid.uuid4().hex[:8]
    append_result = admin_client.create_ledger_entry({"contents": "Hello world 0"})
    admin_client.create_ledger_entry({"contents": "Hello world 1"})
    collection_append_result = admin_client.create_ledger_entry(
        {"contents": "Hello world sub-ledger 0"}, collection_id=collection)
    result(admin_client.begin_create_ledger_entry({"contents": "Hello world sub-ledger 1"}, collection_id=collection))

    # The ledger entry written at append_result's transaction id is retrieved from the default collection.
    # get_ledger_entry is one call that may answer Loading: repeat it, bounded.
    entry = ls.wait_until(
        lambda: (r := admin_client.get_ledger_entry(transaction_id=append_result["transactionId"]))["state"] == "Ready" and r,
        POLL_TIMEOUT_S, "entry to load")
    assert entry["entry"]["contents"] == "Hello world 0"
    assert entry["entry"]["transactionId"] == append_result["transactionId"]

    # This is the latest entry available in the default collection.
    latest_entry = admin_client.get_current_ledger_entry()
    assert latest_entry["contents"] == "Hello world 1"
    assert latest_entry["collectionId"] == DEFAULT_COLLECTION
    check_txid(latest_entry["transactionId"])

    collection_entry = result(admin_client.begin_get_ledger_entry(
        transaction_id=collection_append_result["transactionId"], collection_id=collection))
    assert collection_entry["entry"]["contents"] == "Hello world sub-ledger 0"

    collection_latest_entry = admin_client.get_current_ledger_entry(collection_id=collection)
    assert collection_latest_entry["contents"] == "Hello world sub-ledger 1"
    assert collection_latest_entry["collectionId"] == collection


def test_async_get_ledger_entry(ledger, admin_client):
    """README "Asynchronously get a ledger entry"."""
    collection = "async-" + uuid.uuid4().hex[:8]
    written = result(admin_client.begin_create_ledger_entry({"contents": "async latest"}, collection_id=collection))

    async def scenario():
        async with aio_cert_client(ledger) as client:
            current = await client.get_current_ledger_entry(collection_id=collection)
            for _ in range(POLL_TIMEOUT_S * 20):  # get_ledger_entry may answer Loading: repeat, bounded
                by_id = await client.get_ledger_entry(written["transactionId"], collection_id=collection)
                if by_id["state"] == "Ready":
                    break
                await asyncio.sleep(0.05)
            return current, by_id

    current, by_id = run(scenario())
    assert current["contents"] == "async latest" and current["collectionId"] == collection
    assert by_id == {"state": "Ready", "entry": {"collectionId": collection, "contents": "async latest",
                                                  "transactionId": written["transactionId"]}}


# ------------------------------------------------------------ Making a ranged query


def test_ranged_query_across_pages(admin_client, paged):
    collection, written = paged
    ranged_result = admin_client.list_ledger_entries(
        collection_id=collection,
        from_transaction_id=written[0]["transactionId"],
        to_transaction_id=written[-1]["transactionId"],
    )
    pages = [list(page) for page in ranged_result.by_page()]
    assert len(pages) >= 2, "a range over more than 1001 seqnos comes in more than one page"
    assert [e for page in pages for e in page] == written


def test_ranged_query_bounds_are_inclusive(admin_client, paged):
    collection, written = paged
    got = list(admin_client.list_ledger_entries(
        collection_id=collection,
        from_transaction_id=written[10]["transactionId"],
        to_transaction_id=written[1050]["transactionId"],
    ))
    assert got == written[10:1051]


def test_ranged_query_open_ended(admin_client, paged):
    """README: from_transaction_id only; and no bounds at all (scan from seqno 1)."""
    collection, written = paged
    assert list(admin_client.list_ledger_entries(
        collection_id=collection, from_transaction_id=written[500]["transactionId"])) == written[500:]
    assert list(admin_client.list_ledger_entries(collection_id=collection)) == written


def test_ranged_query_default_collection(admin_client, paged):
    """Without collection_id only entries of the default collection come back, in ascending order."""
    entries = list(admin_client.list_ledger_entries())
    assert entries, "the default collection has entries"
    assert all(e["collectionId"] == DEFAULT_COLLECTION for e in entries)
    ids = [ls.parse_txid(e["transactionId"]) for e in entries]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_async_ranged_query(ledger, paged):
    """README "Asynchronously get a range of ledger entries"."""
    collection, written = paged

    async def scenario():
        async with aio_cert_client(ledger) as client:
            query_result = client.list_ledger_entries(
                collection_id=collection, from_transaction_id=written[0]["transactionId"])
            return [entry async for entry in query_result]

    assert run(scenario()) == written


# ------------------------------------------------------------ Managing users


def test_managing_users(admin_client, certs_dir):
    user_id = str(uuid.uuid4())  # "some AAD object id"
    user = admin_client.create_or_update_user(user_id, {"assignedRole": "Contributor"})
    assert user == {"userId": user_id, "assignedRole": "Contributor"}

    user = admin_client.get_user(user_id)
    assert user["userId"] == user_id
    assert user["assignedRole"] == "Contributor"

    # The same call updates.
    assert admin_client.create_or_update_user(user_id, {"assignedRole": "Reader"})["assignedRole"] == "Reader"
    assert admin_client.get_user(user_id)["assignedRole"] == "Reader"

    admin_client.delete_user(user_id)
    with pytest.raises(ResourceNotFoundError):
        admin_client.get_user(user_id)

    # For a certificate-based user, their user ID is the fingerprint for their PEM certificate.
    cert_user = ls.make_user_cert(certs_dir, "readme-reader")
    user = admin_client.create_or_update_user(cert_user.user_id, {"assignedRole": "Reader"})
    assert user == {"userId": cert_user.user_id, "assignedRole": "Reader"}
    assert admin_client.get_user(cert_user.user_id) == user
    admin_client.delete_user(cert_user.user_id)
    with pytest.raises(ResourceNotFoundError):
        admin_client.get_user(cert_user.user_id)


def test_async_managing_users(ledger):
    user_id = str(uuid.uuid4())

    async def scenario():
        async with aio_cert_client(ledger) as client:
            created = await client.create_or_update_user(user_id, {"assignedRole": "Administrator"})
            fetched = await client.get_user(user_id)
            await client.delete_user(user_id)
            try:
                await client.get_user(user_id)
                gone = False
            except ResourceNotFoundError:
                gone = True
            return created, fetched, gone

    created, fetched, gone = run(scenario())
    assert created == fetched == {"userId": user_id, "assignedRole": "Administrator"}
    assert gone


# ------------------------------------------------------------ Verifying service details


def check_consortium(members, ledger):
    assert members, "the consortium has at least the genesis member"
    member0 = ls.load_cert(ledger.member0_pem)
    for member in members:
        assert set(member) >= {"certificate", "id"}
        assert len(member["id"]) == 64 and int(member["id"], 16) >= 0 and member["id"] == member["id"].lower()
        cert = ls.load_cert_pem(member["certificate"])
        # CCF member id = hex SHA-256 of the member certificate's DER.
        assert member["id"] == hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    assert member0 in [ls.load_cert_pem(m["certificate"]) for m in members]


def check_constitution(constitution):
    assert set(constitution) >= {"digest", "script"}
    assert constitution["script"].strip()
    assert constitution["digest"].lower() == hashlib.sha256(constitution["script"].encode()).hexdigest().lower()


def check_quotes(ledger_enclaves, ledger):
    assert ledger_enclaves["currentNodeId"] in ledger_enclaves["enclaveQuotes"]
    for node_id, quote in ledger_enclaves["enclaveQuotes"].items():
        assert node_id == quote["nodeId"]
        assert isinstance(quote["quoteVersion"], str) and quote["quoteVersion"]
        assert isinstance(quote["raw"], str)
        raw = bytes.fromhex(quote["raw"])
        # Microsoft's verify_service sample (sync and async) prints quote['mrenclave'] for every node: the real
        # service reports the enclave measurement there; ledgerd reports the virtual quote's measurement.
        mrenclave = quote["mrenclave"]
        assert len(mrenclave) == 64 and bytes.fromhex(mrenclave)
        if quote["quoteVersion"] == "Insecure_Virtual":
            assert json.loads(raw)["measurement"] == mrenclave
    # CCF node id = SHA-256 of the node's public key, the key of its TLS certificate.
    assert ledger_enclaves["currentNodeId"] == ls.spki_sha256_hex(node_tls_cert(ledger))


def test_verifying_service_details(admin_client, ledger):
    check_consortium(list(admin_client.list_consortium_members()), ledger)
    check_constitution(admin_client.get_constitution())
    check_quotes(admin_client.get_enclave_quotes(), ledger)


def test_async_verifying_service_details(ledger):
    async def scenario():
        async with aio_cert_client(ledger) as client:
            members = [m async for m in client.list_consortium_members()]
            return members, await client.get_constitution(), await client.get_enclave_quotes()

    members, constitution, quotes = run(scenario())
    check_consortium(members, ledger)
    check_constitution(constitution)
    check_quotes(quotes, ledger)


# ------------------------------------------------------------ Troubleshooting and logging


def test_troubleshooting_not_found(admin_client):
    with pytest.raises(ResourceNotFoundError) as info:
        admin_client.get_ledger_entry(transaction_id="10000.100000")
    assert info.value.status_code == 404
    assert info.value.error is not None and info.value.error.code, "404 carries an ACL error body"


def test_async_troubleshooting_not_found(ledger):
    async def scenario():
        async with aio_cert_client(ledger) as client:
            await client.get_ledger_entry(transaction_id="10000.100000")

    with pytest.raises(ResourceNotFoundError):
        run(scenario())


def test_logging(ledger, clients, caplog):
    caplog.set_level(logging.DEBUG, logger="azure")
    ledger_client = clients.cert(ledger.admin_pem, logging_enable=True)
    ledger_client.get_constitution()
    assert any("/app/governance/constitution" in r.getMessage() for r in caplog.records)

    caplog.clear()
    # logging_enable for a single operation of a client created without it.
    quiet_client = clients.cert(ledger.admin_pem)
    quiet_client.get_enclave_quotes(logging_enable=True)
    assert any("/app/enclaveQuotes" in r.getMessage() and r.levelno == logging.DEBUG for r in caplog.records)
