"""Session fixtures: one real ledgerd over real HTTPS, and real Azure SDK clients against it.

Environment:
  LEDGERD_BIN / LEDGERCTL_BIN  use these binaries instead of `go build`ing ./cmd/ledgerd and ./cmd/ledgerctl
  LEDGERD_KEEP_DIR=1           print and keep the temporary directory (data dir, logs) after the run
"""

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
import requests

from azure.confidentialledger import ConfidentialLedgerCertificateCredential, ConfidentialLedgerClient

import ledgerd_support as ls

PAGING_ENTRIES = 1100  # more than one 1001-seqno page of the range API


@pytest.fixture(scope="session")
def workdir():
    path = Path(tempfile.mkdtemp(prefix="ledgerd-pyconf-"))
    yield path
    if os.environ.get("LEDGERD_KEEP_DIR"):
        print(f"\nkept {path}")
    else:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def binaries(workdir):
    bindir = workdir / "bin"
    bindir.mkdir()
    return ls.build_binaries(bindir)


@pytest.fixture(scope="session")
def jwt_issuer(workdir):
    issuer = ls.JwtIssuer()
    issuer.jwks_path = issuer.write_jwks(workdir / "jwks.json")
    return issuer


@pytest.fixture(scope="session")
def ledger(workdir, binaries, jwt_issuer):
    """The shared ledgerd node. At session end it is stopped and its data directory audited offline."""
    node = ls.LedgerProcess(
        binaries["ledgerd"],
        workdir / "data",
        workdir / "ledgerd.log",
        extra_args=[
            "--signature-interval", ls.SIGNATURE_INTERVAL,
            "--jwt-issuer", jwt_issuer.flag(jwt_issuer.jwks_path),
        ],
    )
    node.start()
    yield node
    node.stop()
    ls.audit_ok(binaries["ledgerctl"], node.data_dir)


@pytest.fixture(scope="session")
def certs_dir(workdir):
    path = workdir / "users"
    path.mkdir()
    return path


class ClientFactory:
    """Makes real SDK clients for the shared ledger and closes them at session end."""

    def __init__(self, ledger):
        self.ledger = ledger
        self._clients = []

    def cert(self, pem_path, **kwargs) -> ConfidentialLedgerClient:
        client = ConfidentialLedgerClient(
            endpoint=kwargs.pop("endpoint", self.ledger.endpoint),
            credential=ConfidentialLedgerCertificateCredential(certificate_path=str(pem_path)),
            ledger_certificate_path=str(kwargs.pop("ledger_certificate_path", self.ledger.service_pem)),
            **kwargs,
        )
        self._clients.append(client)
        return client

    def token(self, credential, **kwargs) -> ConfidentialLedgerClient:
        client = ConfidentialLedgerClient(
            endpoint=self.ledger.endpoint,
            credential=credential,
            ledger_certificate_path=str(self.ledger.service_pem),
            **kwargs,
        )
        self._clients.append(client)
        return client

    def close(self):
        for client in self._clients:
            client.close()


@pytest.fixture(scope="session")
def clients(ledger):
    factory = ClientFactory(ledger)
    yield factory
    factory.close()


@pytest.fixture(scope="session")
def admin_client(ledger, clients):
    return clients.cert(ledger.admin_pem)


@pytest.fixture(scope="session")
def users(admin_client, certs_dir):
    """A Reader and a Contributor certificate user, registered by the admin through the SDK."""
    made = {}
    for role, key_type in (("Reader", "ec"), ("Contributor", "rsa")):
        user = ls.make_user_cert(certs_dir, role.lower(), key_type)
        result = admin_client.create_or_update_user(user.user_id, {"assignedRole": role})
        assert result == {"userId": user.user_id, "assignedRole": role}
        made[role] = user
    return made


@pytest.fixture(scope="session")
def paged(admin_client):
    """PAGING_ENTRIES entries in a fresh collection: a range spanning more than one 1001-seqno page."""
    collection = "paging-" + uuid.uuid4().hex[:8]
    written = []
    for i in range(PAGING_ENTRIES):
        contents = f"paged entry {i}"
        txid = admin_client.create_ledger_entry({"contents": contents}, collection_id=collection)["transactionId"]
        written.append({"collectionId": collection, "contents": contents, "transactionId": txid})
    admin_client.begin_wait_for_commit(written[-1]["transactionId"]).result(timeout=30)
    first, last = (ls.parse_txid(w["transactionId"]) for w in (written[0], written[-1]))
    assert last[1] - first[1] >= 1001, "the range must cross a 1001-seqno page boundary"
    return collection, written


@pytest.fixture(scope="session")
def raw(ledger):
    """A plain `requests` session authenticated as the admin (for requests the SDK cannot send).

    Pass verify= and cert= on each request: the environment's REQUESTS_CA_BUNDLE beats a session's own verify.
    """
    session = requests.Session()
    session.cert = str(ledger.admin_pem)
    session.verify = str(ledger.service_pem)
    yield session
    session.close()
