"""Governance helpers for the conformance suite, written independently of ledgerd's Go code.

CCF's signed governance requests (acl-api.md §9, "Signed requests") are COSE_Sign1 envelopes (RFC 9052 §4.2):
a tiny CBOR encoder (definite lengths, shortest form, RFC 8949 §4.2.1), ECDSA with `cryptography` (the DER
signature turned into r||s), kid = hex SHA-256 of the member certificate's DER, and CCF's protected headers
ccf.gov.msg.type, ccf.gov.msg.created_at and ccf.gov.msg.proposal_id. Requests go over HTTPS pinned to the
service certificate with `requests`.
"""

import hashlib
import json
import re
import struct
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

GOV_API_VERSION = "2024-07-01"
BALLOT_YES = "export function vote (proposal, proposerId) { return true; }"
BALLOT_NO = "export function vote (proposal, proposerId) { return false; }"
COMMIT_TIMEOUT_S = 15.0


# ---------------------------------------------------------------- CBOR


@dataclass(frozen=True)
class Tag:
    number: int
    value: object


def _head(major: int, arg: int) -> bytes:
    """The initial byte and argument of a data item, in the shortest form."""
    if arg < 24:
        return bytes([major << 5 | arg])
    for info, fmt, limit in ((24, ">B", 0xFF), (25, ">H", 0xFFFF), (26, ">I", 0xFFFFFFFF), (27, ">Q", 2**64 - 1)):
        if arg <= limit:
            return bytes([major << 5 | info]) + struct.pack(fmt, arg)
    raise ValueError(f"CBOR argument {arg} too large")


def cbor(obj) -> bytes:
    """Encodes ints, bytes, str, None, bool, lists, dicts (in insertion order) and Tags, definite lengths only."""
    if obj is None:
        return b"\xf6"
    if obj is True:
        return b"\xf5"
    if obj is False:
        return b"\xf4"
    if isinstance(obj, int):
        return _head(0, obj) if obj >= 0 else _head(1, -1 - obj)
    if isinstance(obj, (bytes, bytearray)):
        return _head(2, len(obj)) + bytes(obj)
    if isinstance(obj, str):
        data = obj.encode("utf-8")
        return _head(3, len(data)) + data
    if isinstance(obj, (list, tuple)):
        return _head(4, len(obj)) + b"".join(cbor(x) for x in obj)
    if isinstance(obj, dict):
        return _head(5, len(obj)) + b"".join(cbor(k) + cbor(v) for k, v in obj.items())
    if isinstance(obj, Tag):
        return _head(6, obj.number) + cbor(obj.value)
    raise TypeError(f"cannot CBOR-encode {type(obj).__name__}")


# ---------------------------------------------------------------- COSE_Sign1

# COSE algorithm ids (RFC 9053 §2.1) by curve: (alg, hash, bytes of r and of s).
_ALGS = {
    "secp256r1": (-7, hashes.SHA256, 32),
    "secp384r1": (-35, hashes.SHA384, 48),
    "secp521r1": (-36, hashes.SHA512, 66),
}


def member_id(cert: x509.Certificate) -> str:
    """CCF's member id: lower-case hex SHA-256 of the certificate's DER."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def sign1(key: ec.EllipticCurvePrivateKey, kid: str, msg_type: Optional[str], payload: bytes,
          created_at: Optional[int] = None, proposal_id: Optional[str] = None, tagged: bool = True) -> bytes:
    """A COSE_Sign1 governance envelope over payload, signed with key."""
    alg, hash_cls, size = _ALGS[key.curve.name]
    protected = {1: alg, 4: kid.encode("ascii")}
    if msg_type is not None:
        protected["ccf.gov.msg.type"] = msg_type
    protected["ccf.gov.msg.created_at"] = int(time.time()) if created_at is None else created_at
    if proposal_id is not None:
        protected["ccf.gov.msg.proposal_id"] = proposal_id
    protected_bytes = cbor(protected)
    to_be_signed = cbor(["Signature1", protected_bytes, b"", payload])  # Sig_structure, RFC 9052 §4.4
    r, s = decode_dss_signature(key.sign(to_be_signed, ec.ECDSA(hash_cls())))
    signature = r.to_bytes(size, "big") + s.to_bytes(size, "big")
    message = [protected_bytes, {}, payload, signature]
    return cbor(Tag(18, message) if tagged else message)


class Member:
    """A consortium member's credentials: an ECDSA key and its certificate."""

    def __init__(self, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey):
        self.cert = cert
        self.key = key

    @classmethod
    def load(cls, pem_path: Path) -> "Member":
        """From one PEM file holding the certificate and its key, as ledgerd's DATA/member0.pem."""
        data = Path(pem_path).read_bytes()
        return cls(x509.load_pem_x509_certificate(data), serialization.load_pem_private_key(data, None))

    @classmethod
    def generate(cls, name: str, curve=ec.SECP384R1) -> "Member":
        import datetime  # pylint: disable=import-outside-toplevel
        key = ec.generate_private_key(curve())
        subject = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=30))
                .sign(key, hashes.SHA256()))
        return cls(cert, key)

    @property
    def id(self) -> str:  # pylint: disable=invalid-name
        return member_id(self.cert)

    @property
    def cert_pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode("ascii")

    def sign(self, msg_type: str, payload: bytes = b"", **kwargs) -> bytes:
        """Signs with this member's key and kid; key=/kid= override them (to forge)."""
        key = kwargs.pop("key", self.key)
        kid = kwargs.pop("kid", self.id)
        return sign1(key, kid, msg_type, payload, **kwargs)


def proposal_body(*actions) -> bytes:
    """The payload of a proposal: {"actions": [{"name", "args"}, ...]} from (name, args) pairs."""
    return json.dumps({"actions": [{"name": name, "args": args} for name, args in actions]}).encode()


# ---------------------------------------------------------------- HTTP


class GovClient:
    """The governance API of one node over HTTPS pinned to its service certificate (no client credentials:
    CCF's governance endpoints authenticate the signed body, not the connection)."""

    def __init__(self, endpoint: str, service_pem: Path):
        self.endpoint = endpoint
        self.verify = str(service_pem)
        self.session = requests.Session()
        # Every signed request the node accepted through post_ok: (message type, member id), in order.
        self.accepted = []

    def close(self):
        self.session.close()

    def get(self, path: str, **params) -> requests.Response:
        params.setdefault("api-version", GOV_API_VERSION)
        return self.session.get(self.endpoint + path, params=params, verify=self.verify, timeout=30)

    def get_json(self, path: str, **params):
        resp = self.get(path, **params)
        assert resp.status_code == 200, f"GET {path}: {resp.status_code} {resp.text}"
        return resp.json()

    def post(self, path: str, envelope: bytes, content_type: str = "application/cose") -> requests.Response:
        return self.session.post(self.endpoint + path, params={"api-version": GOV_API_VERSION}, data=envelope,
                                 headers={"Content-Type": content_type}, verify=self.verify, timeout=30)

    def post_ok(self, path: str, envelope: bytes, status: int = 200) -> requests.Response:
        resp = self.post(path, envelope)
        assert resp.status_code == status, f"POST {path}: {resp.status_code} {resp.text}"
        action = path.rsplit(":", 1)[1]
        signer = path.split("/")[-1].split(":")[0] if action in ("submit", "update", "ack") else None
        msg_type = {"create": "proposal", "submit": "ballot", "withdraw": "withdrawal", "update": "state_digest",
                    "ack": "ack"}[action]
        self.accepted.append((msg_type, signer or resp.json().get("proposerId")))
        return resp

    # ---- the signed operations

    def propose(self, member: Member, *actions) -> dict:
        resp = self.post_ok("/gov/members/proposals:create", member.sign("proposal", proposal_body(*actions)))
        self.wait_committed(resp)
        return resp.json()

    def vote(self, member: Member, proposal_id: str, ballot: str = BALLOT_YES) -> dict:
        envelope = member.sign("ballot", json.dumps({"ballot": ballot}).encode(), proposal_id=proposal_id)
        resp = self.post_ok(f"/gov/members/proposals/{proposal_id}/ballots/{member.id}:submit", envelope)
        self.wait_committed(resp)
        return resp.json()

    def withdraw(self, member: Member, proposal_id: str) -> dict:
        resp = self.post_ok(f"/gov/members/proposals/{proposal_id}:withdraw",
                            member.sign("withdrawal", proposal_id=proposal_id))
        self.wait_committed(resp)
        return resp.json()

    def propose_and_vote(self, member: Member, *actions) -> dict:
        """Proposes and votes yes with a ballot (what `ledgerctl gov propose --vote` does)."""
        proposal = self.propose(member, *actions)
        assert proposal["proposalState"] == "Open", proposal
        return self.vote(member, proposal["proposalId"])

    def ack(self, member: Member) -> None:
        """Makes an Accepted member Active: :update records the state digest, :ack signs it back."""
        resp = self.post_ok(f"/gov/members/state-digests/{member.id}:update", member.sign("state_digest"))
        digest = resp.json()
        assert digest["memberId"] == member.id and digest["stateDigest"], digest
        self.wait_committed(resp)
        body = json.dumps({"stateDigest": digest["stateDigest"]}).encode()
        resp = self.post_ok(f"/gov/members/state-digests/{member.id}:ack", member.sign("ack", body), status=204)
        self.wait_committed(resp)

    # ---- reads

    def proposals(self) -> list:
        return self.get_json("/gov/members/proposals")["value"]

    def proposal(self, proposal_id: str) -> dict:
        return self.get_json(f"/gov/members/proposals/{proposal_id}")

    def members(self) -> dict:
        return {m["memberId"]: m for m in self.get_json("/gov/service/members")["value"]}

    def wait_committed(self, resp: requests.Response, timeout_s: float = COMMIT_TIMEOUT_S) -> str:
        """Polls /gov/service/transactions/{id} until the response's transaction is Committed: a member's
        signed requests are checked against the committed state, so the next one waits for this one."""
        txid = resp.headers.get("x-ms-ccf-transaction-id")
        assert txid, f"no x-ms-ccf-transaction-id on {resp.request.method} {resp.url}: {dict(resp.headers)}"
        deadline = time.monotonic() + timeout_s
        while True:
            status = self.get_json(f"/gov/service/transactions/{txid}")["status"]
            if status == "Committed":
                return txid
            assert status == "Pending", f"transaction {txid} is {status}"
            assert time.monotonic() < deadline, f"transaction {txid} still Pending after {timeout_s}s"
            time.sleep(0.01)


def gov_error(resp: requests.Response) -> tuple:
    """(status, code) of a governance error, checking the body shape and that x-ms-error-code repeats the code."""
    body = resp.json()
    err = body.get("error")
    assert isinstance(err, dict) and err.get("code") and err.get("message"), body
    assert resp.headers.get("x-ms-error-code") == err["code"], (dict(resp.headers), body)
    return resp.status_code, err["code"]


def audit_governance(ledgerctl: Path, data_dir: Path, accepted: list) -> str:
    """Runs `ledgerctl audit --governance` on a stopped node and asserts that the ledger's governance history holds
    exactly the signed requests the node accepted (by type, count and signer): refused ones left no trace."""
    proc = subprocess.run([str(ledgerctl), "audit", "-q", "--governance", str(data_dir)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, f"ledgerctl audit --governance exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    counts = Counter(msg_type for msg_type, _ in accepted)
    summary = ", ".join(f"{counts[t]} {t}" for t in ("proposal", "ballot", "withdrawal", "state_digest", "ack")
                        if counts[t])
    assert f"OK: {len(accepted)} signed governance requests ({summary})" in proc.stdout, proc.stdout
    signers = [line.split(" member ", 1)[1].split(",")[0] for line in proc.stdout.splitlines()
               if re.match(r"^\s+\d+\s+(proposal|ballot|withdrawal|state_digest|ack)\s+member ", line)]
    assert signers == [member for _, member in accepted], proc.stdout
    return proc.stdout
