"""README: "If [ledger_certificate_path] does not exist yet, the Confidential Ledger's TLS certificate will be
fetched and saved to this file."

azure-confidentialledger 1.0.1 then derives the ledger id from the endpoint (https://127.0.0.1:PORT -> "127") and
asks the DEFAULT identity service, https://identity.confidential-ledger.core.azure.com, which it cannot be told
to replace (ConfidentialLedgerClient passes its **kwargs to the certificate client, its request and the ledger
client alike; a `certificate_endpoint` kwarg ends up in requests.Session.request and raises TypeError).

To make that flow run against a local ledgerd without patching the SDK, this test gives a ledgerd node the
identity service's name (--san-dns identity.confidential-ledger.core.azure.com) and routes that name to it with
a local CONNECT proxy (HTTPS_PROXY; the ledger itself, 127.0.0.1, is in NO_PROXY). In Azure the identity service
has a publicly trusted certificate; a local node has none, so the test's CA bundle for the fetch
(REQUESTS_CA_BUNDLE) is the node's service certificate. TLS, the host-name check and the SDK code path are all
real; the ledger client then pins the file the SDK wrote.
"""

import asyncio

import pytest

from azure.confidentialledger import ConfidentialLedgerCertificateCredential, ConfidentialLedgerClient
from azure.confidentialledger.aio import ConfidentialLedgerClient as AsyncConfidentialLedgerClient

import ledgerd_support as ls

IDENTITY_HOST = "identity.confidential-ledger.core.azure.com"


@pytest.fixture(scope="module")
def identity_ledger(binaries, workdir):
    node = ls.LedgerProcess(binaries["ledgerd"], workdir / "identity-data", workdir / "identity-ledgerd.log",
                            extra_args=["--signature-interval", ls.SIGNATURE_INTERVAL, "--san-dns", IDENTITY_HOST])
    node.start()
    yield node
    node.stop()
    ls.audit_ok(binaries["ledgerctl"], node.data_dir)


@pytest.fixture
def routed(identity_ledger, monkeypatch):
    proxy = ls.ConnectProxy({IDENTITY_HOST: identity_ledger.port})
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("https_proxy", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(identity_ledger.service_pem))
    yield proxy
    proxy.close()


def test_client_fetches_missing_ledger_certificate(identity_ledger, routed, tmp_path):
    path = tmp_path / "fetched" / "ledger_certificate.pem"
    path.parent.mkdir()
    assert not path.exists()
    credential = ConfidentialLedgerCertificateCredential(str(identity_ledger.admin_pem))
    with ConfidentialLedgerClient(endpoint=identity_ledger.endpoint, credential=credential,
                                  ledger_certificate_path=str(path)) as client:
        assert routed.requests == [f"CONNECT {IDENTITY_HOST}:443"], "the SDK asked the default identity service"
        assert ls.load_cert(path) == ls.load_cert(identity_ledger.service_pem)
        written = client.begin_create_ledger_entry({"contents": "pinned to a fetched certificate"}).result(timeout=30)
        assert client.get_transaction_status(written["transactionId"])["state"] == "Committed"

    # With the file present, no identity request is made.
    with ConfidentialLedgerClient(endpoint=identity_ledger.endpoint, credential=credential,
                                  ledger_certificate_path=str(path)) as client:
        assert client.get_current_ledger_entry()["contents"] == "pinned to a fetched certificate"
    assert len(routed.requests) == 1


def test_async_client_fetches_missing_ledger_certificate(identity_ledger, routed, tmp_path):
    path = tmp_path / "ledger_certificate.pem"

    async def scenario():
        client = AsyncConfidentialLedgerClient(
            endpoint=identity_ledger.endpoint,
            credential=ConfidentialLedgerCertificateCredential(str(identity_ledger.admin_pem)),
            ledger_certificate_path=str(path))
        async with client:
            return await client.get_constitution()

    constitution = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert constitution["digest"]
    assert routed.requests == [f"CONNECT {IDENTITY_HOST}:443"]
    assert ls.load_cert(path) == ls.load_cert(identity_ledger.service_pem)


def test_identity_fetch_is_tls_verified(identity_ledger, routed, tmp_path, monkeypatch):
    """Trusting some other CA, the fetch fails and no certificate file is written."""
    other_ca = ls.make_user_cert(tmp_path, "unrelated-ca")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other_ca.pem_path))
    path = tmp_path / "never-written.pem"
    with pytest.raises(Exception) as info:
        ConfidentialLedgerClient(endpoint=identity_ledger.endpoint,
                                 credential=ConfidentialLedgerCertificateCredential(str(identity_ledger.admin_pem)),
                                 ledger_certificate_path=str(path), retry_total=0)
    assert "certificate verify failed" in str(info.value).lower() or "ssl" in type(info.value).__name__.lower(), info.value
    assert not path.exists()
