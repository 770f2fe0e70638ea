"""Pending transactions, on a node that signs at most once every 2 s (--signature-interval 2s). Each scenario first
waits for a write to commit: a signature has just been made, so the next write stays Pending until 2 s after it, far
longer than the few milliseconds the checks take.

Status Pending; receipt 406 UncommittedLedgerEntry (acl-api.md §4); entry Loading; then the SDK's pollers carry
each of them through to Committed / Ready."""

import asyncio
import json

import pytest
from azure.core.exceptions import HttpResponseError

from azure.confidentialledger import ConfidentialLedgerCertificateCredential, ConfidentialLedgerClient
from azure.confidentialledger.aio import ConfidentialLedgerClient as AsyncConfidentialLedgerClient

import ledgerd_support as ls

SIGNATURE_INTERVAL_S = 2
POLL_TIMEOUT_S = 10 * SIGNATURE_INTERVAL_S


@pytest.fixture(scope="module")
def slow_ledger(binaries, workdir):
    node = ls.LedgerProcess(binaries["ledgerd"], workdir / "slow-data", workdir / "slow-ledgerd.log",
                            extra_args=["--signature-interval", f"{SIGNATURE_INTERVAL_S}s"])
    node.start()
    yield node
    node.stop()
    ls.audit_ok(binaries["ledgerctl"], node.data_dir)


@pytest.fixture(scope="module")
def slow_client(slow_ledger):
    with ConfidentialLedgerClient(
        endpoint=slow_ledger.endpoint,
        credential=ConfidentialLedgerCertificateCredential(str(slow_ledger.admin_pem)),
        ledger_certificate_path=str(slow_ledger.service_pem),
    ) as client:
        yield client


def just_signed(client):
    """Returns once a signature has just been made (a write committed), so that the next write stays Pending."""
    client.begin_create_ledger_entry({"contents": "primer"}, collection_id="primer").result(timeout=POLL_TIMEOUT_S)


def test_pending_then_committed(slow_client, slow_ledger, binaries, tmp_path):
    just_signed(slow_client)
    txid = slow_client.create_ledger_entry({"contents": "not signed yet"}, collection_id="slow")["transactionId"]
    assert slow_client.get_transaction_status(txid) == {"state": "Pending", "transactionId": txid}

    with pytest.raises(HttpResponseError) as info:
        slow_client.get_receipt(txid)
    err = ls.sdk_error(info.value)
    assert (err["status"], err["code"]) == (406, "UncommittedLedgerEntry"), err
    assert txid in err["message"]

    assert slow_client.get_ledger_entry(txid, collection_id="slow") == {"state": "Loading"}

    # begin_get_ledger_entry polls through Loading to Ready; begin_wait_for_commit through Pending to Committed.
    entry = slow_client.begin_get_ledger_entry(txid, collection_id="slow").result(timeout=POLL_TIMEOUT_S)
    assert entry == {"state": "Ready", "entry": {"collectionId": "slow", "contents": "not signed yet",
                                                  "transactionId": txid}}
    status = slow_client.begin_wait_for_commit(txid).result(timeout=POLL_TIMEOUT_S)
    assert status == {"state": "Committed", "transactionId": txid}

    receipt = slow_client.begin_get_receipt(txid).result(timeout=POLL_TIMEOUT_S)
    assert receipt["state"] == "Ready" and receipt["transactionId"] == txid
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(receipt))
    proc = ls.run_ledgerctl(binaries["ledgerctl"], "verify", "--service-cert", slow_ledger.service_pem, path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_begin_create_waits_through_pending(slow_client):
    written = slow_client.begin_create_ledger_entry({"contents": "waited for"}, collection_id="slow").result(
        timeout=POLL_TIMEOUT_S)
    assert written["collectionId"] == "slow"
    assert slow_client.get_transaction_status(written["transactionId"])["state"] == "Committed"
    assert slow_client.get_current_ledger_entry(collection_id="slow")["contents"] == "waited for"


def test_async_pending_receipt_is_406(slow_ledger, slow_client):
    just_signed(slow_client)

    async def scenario():
        async with AsyncConfidentialLedgerClient(
            endpoint=slow_ledger.endpoint,
            credential=ConfidentialLedgerCertificateCredential(str(slow_ledger.admin_pem)),
            ledger_certificate_path=str(slow_ledger.service_pem),
        ) as client:
            written = await client.create_ledger_entry({"contents": "async, not signed yet"})
            status = await client.get_transaction_status(written["transactionId"])
            try:
                await client.get_receipt(written["transactionId"])
                code = None
            except HttpResponseError as exc:
                code = (exc.status_code, exc.error.code if exc.error else None)
            final = await asyncio.wait_for(
                (await client.begin_wait_for_commit(written["transactionId"])).result(), POLL_TIMEOUT_S)
            return status, code, final

    status, code, final = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert status["state"] == "Pending"
    assert code == (406, "UncommittedLedgerEntry")
    assert final["state"] == "Committed"
