"""Application claims in receipts (API 2023-01-18-preview and later; issue 12).

The receipt of a ledger entry carries its LedgerEntryV1 application claim, and the Merkle leaf's claims digest is the
claim's digest. Everything is checked here with an implementation of ACL's algorithm written out in this file
(the Azure SDK's receipt module, `_claims_digest_computation.py` and `_receipt_verification.py`, is not in Debian's
azure-confidentialledger 1.0.1): the claims digest, the leaf, the proof, the node's signature over the root and the
service's endorsement of the node certificate. One flipped byte in the claims makes the check fail.
"""

import base64
import copy
import hashlib
import hmac
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

import ledgerd_support as ls

CLAIMS_VERSIONS = ["2023-01-18-preview", "2024-12-09-preview", "2026-02-23"]
POLL_TIMEOUT_S = 30


# ---------------------------------------------------------------- ACL's algorithm, written out


def ledger_entry_v1_digest(claim: dict) -> bytes:
    key = base64.b64decode(claim["secretKey"], validate=True)
    collection = hmac.new(key, claim["collectionId"].encode("utf-8"), hashlib.sha256).digest()
    contents = hmac.new(key, claim["contents"].encode("utf-8"), hashlib.sha256).digest()
    return hashlib.sha256(collection + contents).digest()


def claim_digest(claim: dict) -> bytes:
    if claim["kind"] == "LedgerEntry":
        entry = claim["ledgerEntry"]
        assert entry["protocol"] == "LedgerEntryV1", entry
        return hashlib.sha256(entry["protocol"].encode() + ledger_entry_v1_digest(entry)).digest()
    if claim["kind"] == "ClaimDigest":
        digest = claim["digest"]
        return hashlib.sha256(digest["protocol"].encode() + bytes.fromhex(digest["value"])).digest()
    raise ValueError(f"unknown claim kind {claim['kind']}")


def claims_digest(claims: list) -> str:
    assert claims, "no claims"
    data = len(claims).to_bytes(4, "little") + b"".join(claim_digest(c) for c in claims)
    return hashlib.sha256(data).hexdigest()


def verify_receipt(receipt: dict, service_cert: x509.Certificate, application_claims=None):
    """Raises AssertionError (or a cryptography exception) unless the receipt verifies."""
    leaf = receipt["leafComponents"]
    if application_claims is not None:
        assert claims_digest(application_claims) == leaf["claimsDigest"], "claims digest mismatch"
    node_cert = x509.load_pem_x509_certificate(receipt["cert"].encode())
    # The service endorses the node certificate (directly: no service endorsements on a ledger never recovered).
    chain = [x509.load_pem_x509_certificate(e.encode()) for e in receipt.get("serviceEndorsements", [])]
    current = node_cert
    for issuer in chain + [service_cert]:
        issuer.public_key().verify(current.signature, current.tbs_certificate_bytes,
                                   ec.ECDSA(current.signature_hash_algorithm))
        current = issuer
    h = hashlib.sha256(bytes.fromhex(leaf["writeSetDigest"])
                       + hashlib.sha256(leaf["commitEvidence"].encode()).digest()
                       + bytes.fromhex(leaf["claimsDigest"])).digest()
    for step in receipt["proof"]:
        if "left" in step:
            h = hashlib.sha256(bytes.fromhex(step["left"]) + h).digest()
        else:
            h = hashlib.sha256(h + bytes.fromhex(step["right"])).digest()
    node_cert.public_key().verify(base64.b64decode(receipt["signature"]), h, ec.ECDSA(Prehashed(hashes.SHA256())))
    assert ls.spki_sha256_hex(node_cert) == receipt["nodeId"]


# ---------------------------------------------------------------- tests


def test_algorithm_matches_the_real_service_vector():
    """The written-out algorithm gives the real service's claims digest (testdata), so it is ACL's."""
    with open(ls.REPO_ROOT / "testdata" / "acl-receipt-claims-2023-01-18-preview.json") as f:
        vector = json.load(f)
    response = vector["response"]
    assert claims_digest(response["applicationClaims"]) == vector["expectedClaimsDigest"]
    verify_receipt(response["receipt"], ls.load_cert_pem(vector["serviceCertificate"]), response["applicationClaims"])


@pytest.fixture(scope="module")
def claimed(ledger, raw, admin_client):
    """One committed entry in a fresh collection, with odd contents."""
    contents = "claimed: héllo \u2603 \"quoted\""
    resp = raw.post(ledger.endpoint + "/app/transactions", params={"api-version": "2024-12-09-preview",
                                                                      "collectionId": "claims-col"},
                    json={"contents": contents}, cert=str(ledger.admin_pem), verify=str(ledger.service_pem))
    assert resp.status_code == 200, resp.text
    txid = resp.headers["x-ms-ccf-transaction-id"]
    admin_client.begin_wait_for_commit(txid).result(timeout=POLL_TIMEOUT_S)
    return txid, contents


def get_receipt(ledger, raw, txid, version):
    resp = raw.get(f"{ledger.endpoint}/app/transactions/{txid}/receipt", params={"api-version": version},
                   cert=str(ledger.admin_pem), verify=str(ledger.service_pem))
    assert resp.status_code == 200, resp.text
    return resp.json()


@pytest.mark.parametrize("version", CLAIMS_VERSIONS)
def test_receipt_with_claims_verifies(ledger, raw, claimed, version):
    txid, contents = claimed
    body = get_receipt(ledger, raw, txid, version)
    assert body["state"] == "Ready" and body["transactionId"] == txid
    claims = body["applicationClaims"]
    assert len(claims) == 1 and claims[0]["kind"] == "LedgerEntry", claims
    entry = claims[0]["ledgerEntry"]
    assert entry["collectionId"] == "claims-col" and entry["contents"] == contents
    assert entry["protocol"] == "LedgerEntryV1" and len(base64.b64decode(entry["secretKey"])) == 32
    service = ls.load_cert(ledger.service_pem)
    verify_receipt(body["receipt"], service, claims)
    # One flipped byte in the claims (contents, collection, key) fails.
    for field in ("contents", "collectionId", "secretKey"):
        bad = copy.deepcopy(claims)
        value = bad[0]["ledgerEntry"][field]
        if field == "secretKey":
            bad[0]["ledgerEntry"][field] = base64.b64encode(bytes([base64.b64decode(value)[0] ^ 1])
                                                            + base64.b64decode(value)[1:]).decode()
        else:
            bad[0]["ledgerEntry"][field] = chr(ord(value[0]) ^ 1) + value[1:]
        with pytest.raises(AssertionError, match="claims digest mismatch"):
            verify_receipt(body["receipt"], service, bad)


def test_old_versions_keep_their_shape_and_verify(ledger, raw, claimed, admin_client):
    """2022-05-13 (and the SDK 1.0.1) get no applicationClaims; the receipt still verifies, claims digest and all."""
    txid, _ = claimed
    body = get_receipt(ledger, raw, txid, "2022-05-13")
    assert "applicationClaims" not in body
    verify_receipt(body["receipt"], ls.load_cert(ledger.service_pem))
    new = get_receipt(ledger, raw, txid, "2024-12-09-preview")
    assert body["receipt"] == new["receipt"], "the receipt differs between api-versions"
    sdk = admin_client.get_receipt(txid)
    assert "applicationClaims" not in sdk and sdk["receipt"] == body["receipt"]
