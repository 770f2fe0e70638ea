"""Runs last (file order): stop the shared ledgerd, audit its data directory offline with `ledgerctl audit`,
check that a tampered copy fails the audit, restart on the same directory and check nothing was lost.
(The session fixture audits once more after its final stop.)"""

import json
import shutil

from azure.confidentialledger import ConfidentialLedgerCertificateCredential, ConfidentialLedgerClient

import ledgerd_support as ls

POLL_TIMEOUT_S = 30


def test_stop_audit_tamper_restart(ledger, binaries, admin_client, workdir):
    written = admin_client.begin_create_ledger_entry({"contents": "before restart"}, collection_id="restart").result(
        timeout=POLL_TIMEOUT_S)
    txid = written["transactionId"]
    service_pem = ledger.service_pem.read_bytes()
    users_before = admin_client.get_user(ls.cert_fingerprint(ls.load_cert(ledger.admin_pem)))

    ledger.stop()
    assert not ledger.running
    report = ls.audit_ok(binaries["ledgerctl"], ledger.data_dir)
    first_seqno = int(report.stdout.split("seqno ")[1].split("..")[0])
    last_seqno = int(report.stdout.split("..")[1].split(")")[0])
    assert first_seqno <= ls.parse_txid(txid)[1] <= last_seqno, report.stdout

    # A copy with one byte of a ledger file flipped must not pass the audit.
    tampered = workdir / "tampered"
    shutil.copytree(ledger.data_dir, tampered)
    chunks = sorted((tampered / "ledger").glob("ledger_*"), key=lambda p: p.stat().st_size)
    assert chunks, "the data directory has ledger chunk files"
    chunk = chunks[-1]
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0x01
    chunk.write_bytes(bytes(data))
    proc = ls.run_ledgerctl(binaries["ledgerctl"], "audit", "-q", tampered)
    assert proc.returncode == 1, f"audit of a tampered ledger passed:\n{proc.stdout}{proc.stderr}"
    shutil.rmtree(tampered)

    ledger.start()
    assert ledger.service_pem.read_bytes() == service_pem, "the service identity changed across a restart"
    with ConfidentialLedgerClient(
        endpoint=ledger.endpoint,
        credential=ConfidentialLedgerCertificateCredential(str(ledger.admin_pem)),
        ledger_certificate_path=str(ledger.service_pem),
    ) as client:
        assert client.get_transaction_status(txid) == {"state": "Committed", "transactionId": txid}
        entry = client.begin_get_ledger_entry(txid, collection_id="restart").result(timeout=POLL_TIMEOUT_S)
        assert entry["entry"]["contents"] == "before restart"
        assert client.get_current_ledger_entry(collection_id="restart")["contents"] == "before restart"
        assert client.get_user(users_before["userId"]) == users_before
        after = client.begin_create_ledger_entry({"contents": "after restart"}, collection_id="restart").result(
            timeout=POLL_TIMEOUT_S)
        assert ls.parse_txid(after["transactionId"]) > ls.parse_txid(txid)
        # Receipts of a transaction from before the restart and of one after it both verify.
        for tx in (txid, after["transactionId"]):
            receipt = client.begin_get_receipt(tx).result(timeout=POLL_TIMEOUT_S)
            assert receipt["state"] == "Ready" and receipt["transactionId"] == tx
            path = workdir / f"restart-receipt-{tx}.json"
            path.write_text(json.dumps(receipt))
            proc = ls.run_ledgerctl(binaries["ledgerctl"], "verify", "--service-cert", ledger.service_pem, path)
            assert proc.returncode == 0, proc.stdout + proc.stderr
    # The session's long-lived admin client reconnects too.
    assert admin_client.get_current_ledger_entry(collection_id="restart")["contents"] == "after restart"
