"""Read your writes (issue 8): in CCF, and so in Azure Confidential Ledger, an endpoint runs against the node's latest
executed state, which includes the node's own transactions not yet committed. A client that appends (without waiting
for commit) and at once reads the current entry or lists the collections sees its write, every time."""

import uuid

import ledgerd_support as ls


def test_new_collection_is_current_and_listed_at_once(admin_client):
    prefix = "ryw-" + uuid.uuid4().hex[:8]
    for i in range(50):
        collection = f"{prefix}-{i}"
        contents = f"first entry of {collection}"
        written = admin_client.create_ledger_entry({"contents": contents}, collection_id=collection)
        assert written["collectionId"] == collection
        current = admin_client.get_current_ledger_entry(collection_id=collection)
        assert current == {"collectionId": collection, "contents": contents,
                           "transactionId": written["transactionId"]}, (i, current, written)
        listed = {c["collectionId"] for c in admin_client.list_collections()}
        assert collection in listed, (i, collection)


def test_each_append_is_current_at_once(admin_client):
    collection = "ryw-same-" + uuid.uuid4().hex[:8]
    last = (0, 0)
    for i in range(100):
        contents = f"entry {i}"
        txid = admin_client.create_ledger_entry({"contents": contents}, collection_id=collection)["transactionId"]
        assert ls.parse_txid(txid) > last
        last = ls.parse_txid(txid)
        current = admin_client.get_current_ledger_entry(collection_id=collection)
        assert current == {"collectionId": collection, "contents": contents, "transactionId": txid}, (i, current)
