"""Drives a running ledgerd with the Azure SDK for Python (azure-confidentialledger 1.0.1).

Usage: python_client.py ENDPOINT DATA_DIR. Prints OK on success; raises otherwise.
"""
import sys

from azure.confidentialledger import ConfidentialLedgerCertificateCredential, ConfidentialLedgerClient
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

endpoint, data = sys.argv[1], sys.argv[2]
client = ConfidentialLedgerClient(
    endpoint,
    ConfidentialLedgerCertificateCredential(data + "/admin.pem"),
    ledger_certificate_path=data + "/service.pem",
)

result = client.begin_create_ledger_entry({"contents": "from python"}, collection_id="py").result()
assert result["collectionId"] == "py", result
txid = result["transactionId"]
assert client.get_transaction_status(txid)["state"] == "Committed"
entry = client.begin_get_ledger_entry(txid, collection_id="py").result()
assert entry["entry"]["contents"] == "from python", entry
receipt = client.begin_get_receipt(txid).result()
assert receipt["state"] == "Ready" and receipt["receipt"]["leafComponents"], receipt
assert client.get_current_ledger_entry(collection_id="py")["transactionId"] == txid
listed = list(client.list_ledger_entries(collection_id="py"))
assert [e["transactionId"] for e in listed] == [txid], listed
assert {"collectionId": "py"} in list(client.list_collections())
assert len(list(client.list_consortium_members())) == 1
assert client.get_constitution()["digest"]
assert client.get_enclave_quotes()["currentNodeId"]

user = "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF"
assert client.create_or_update_user(user, {"assignedRole": "Reader"})["assignedRole"] == "Reader"
assert client.get_user(user)["userId"] == user
client.delete_user(user)
try:
    client.get_user(user)
    raise AssertionError("deleted user still there")
except ResourceNotFoundError:
    pass
try:
    client.create_ledger_entry({"contents": "x" * 8193})
    raise AssertionError("oversized entry accepted")
except HttpResponseError as e:
    assert e.status_code == 400, e
print("OK")
