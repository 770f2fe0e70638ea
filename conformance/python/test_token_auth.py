"""Token (AAD-style) authentication with locally issued JWTs through a custom TokenCredential, sync and async.

The session's ledgerd trusts one issuer (--jwt-issuer ISSUER,AUDIENCE,JWKS) whose ES256 and RS256 keys the
fixture generated. The user id of a token user is its `oid` claim, else its `sub` claim.
"""

import asyncio
import json
import time
import uuid

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

from azure.confidentialledger.aio import ConfidentialLedgerClient as AsyncConfidentialLedgerClient

import ledgerd_support as ls

POLL_TIMEOUT_S = 30


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


@pytest.fixture
def grant(admin_client):
    """grant(user_id, role) registers a token user for the duration of one test."""
    granted = []

    def _grant(user_id, role="Contributor"):
        assert admin_client.create_or_update_user(user_id, {"assignedRole": role}) == {
            "userId": user_id, "assignedRole": role}
        granted.append(user_id)
        return user_id

    yield _grant
    for user_id in granted:
        admin_client.delete_user(user_id)


def append_and_read(client, contents, collection):
    written = client.begin_create_ledger_entry({"contents": contents}, collection_id=collection).result(
        timeout=POLL_TIMEOUT_S)
    assert written["collectionId"] == collection
    entry = client.begin_get_ledger_entry(written["transactionId"], collection_id=collection).result(
        timeout=POLL_TIMEOUT_S)
    assert entry == {"state": "Ready", "entry": {"collectionId": collection, "contents": contents,
                                                  "transactionId": written["transactionId"]}}
    assert client.get_current_ledger_entry(collection_id=collection)["contents"] == contents
    return written


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_token_user_appends_and_reads(clients, jwt_issuer, grant, alg):
    oid = grant(str(uuid.uuid4()))
    credential = ls.StaticTokenCredential(jwt_issuer.token(jwt_issuer.claims(oid=oid), alg=alg))
    client = clients.token(credential)
    append_and_read(client, f"written with an {alg} token", "token-" + alg)
    # The SDK asked the credential for the ledger's scope.
    assert credential.scopes_requested and set(credential.scopes_requested) == {(ls.SCOPE,)}


def test_async_token_user_appends_and_reads(ledger, jwt_issuer, grant):
    oid = grant(str(uuid.uuid4()))
    credential = ls.AsyncStaticTokenCredential(jwt_issuer.token(jwt_issuer.claims(oid=oid), alg="ES256"))
    collection = "token-async"

    async def scenario():
        client = AsyncConfidentialLedgerClient(
            endpoint=ledger.endpoint, credential=credential, ledger_certificate_path=str(ledger.service_pem))
        async with client:
            async with credential:
                written = await asyncio.wait_for(
                    (await client.begin_create_ledger_entry({"contents": "async token"}, collection_id=collection)).result(),
                    POLL_TIMEOUT_S)
                entry = await asyncio.wait_for(
                    (await client.begin_get_ledger_entry(written["transactionId"], collection_id=collection)).result(),
                    POLL_TIMEOUT_S)
                listed = [e async for e in client.list_ledger_entries(
                    collection_id=collection, from_transaction_id=written["transactionId"])]
                return written, entry, listed

    written, entry, listed = run(scenario())
    assert entry["entry"] == {"collectionId": collection, "contents": "async token", "transactionId": written["transactionId"]}
    assert listed == [entry["entry"]]
    assert set(credential.scopes_requested) == {(ls.SCOPE,)}


def test_sub_is_the_user_id_when_there_is_no_oid(clients, jwt_issuer, grant):
    sub = "service-principal-" + uuid.uuid4().hex
    grant(sub)
    claims = jwt_issuer.claims(oid=None, sub=sub)
    assert "oid" not in claims
    token = jwt_issuer.token(claims)
    append_and_read(clients.token(ls.StaticTokenCredential(token)), "written as sub", "token-sub")


def test_oid_wins_over_sub(clients, jwt_issuer, grant):
    oid, sub = str(uuid.uuid4()), "sub-" + uuid.uuid4().hex
    grant(sub)  # only the sub is registered: the caller is the oid, who is not a user
    client = clients.token(ls.StaticTokenCredential(jwt_issuer.token(jwt_issuer.claims(oid=oid, sub=sub))))
    with pytest.raises(HttpResponseError) as info:
        client.get_current_ledger_entry()
    assert ls.sdk_error(info.value)["status"] == 403
    assert ls.sdk_error(info.value)["code"] == "NotAllowed"
    grant(oid, "Reader")
    assert client.get_constitution()["digest"]


def test_audience_list_containing_the_audience(clients, jwt_issuer, grant):
    oid = grant(str(uuid.uuid4()), "Reader")
    token = jwt_issuer.token(jwt_issuer.claims(oid=oid, aud=["api://something-else", ls.AUDIENCE]))
    assert clients.token(ls.StaticTokenCredential(token)).get_constitution()["digest"]


def test_token_roles_are_enforced(clients, jwt_issuer, grant):
    oid = grant(str(uuid.uuid4()), "Reader")
    client = clients.token(ls.StaticTokenCredential(jwt_issuer.token(jwt_issuer.claims(oid=oid))))
    assert client.get_enclave_quotes()["currentNodeId"]
    with pytest.raises(HttpResponseError) as info:
        client.create_ledger_entry({"contents": "a reader may not write"})
    assert (ls.sdk_error(info.value)["status"], ls.sdk_error(info.value)["code"]) == (403, "NotAllowed")


def test_valid_token_of_unknown_user_is_forbidden(clients, jwt_issuer):
    client = clients.token(ls.StaticTokenCredential(jwt_issuer.token(jwt_issuer.claims(oid=str(uuid.uuid4())))))
    with pytest.raises(HttpResponseError) as info:
        client.get_current_ledger_entry()
    assert (ls.sdk_error(info.value)["status"], ls.sdk_error(info.value)["code"]) == (403, "NotAllowed")


def _tampered(issuer, claims):
    header, _, sig = issuer.token(claims).split(".")
    forged = dict(claims, exp=claims["exp"] + 86400)
    return ".".join([header, ls.b64url(json.dumps(forged).encode()), sig])


def bad_tokens(issuer, oid):
    now = int(time.time())
    good = issuer.claims(oid=oid)
    return {
        "expired": issuer.token(dict(good, iat=now - 7200, nbf=now - 7200, exp=now - 600)),
        "expired-rs256": issuer.token(dict(good, iat=now - 7200, nbf=now - 7200, exp=now - 600), alg="RS256"),
        "wrong-audience": issuer.token(dict(good, aud="https://management.azure.com")),
        "wrong-audience-list": issuer.token(dict(good, aud=["https://management.azure.com", "api://x"])),
        "bad-signature": issuer.token(good, key=issuer.rogue_ec_key),
        "tampered-payload": _tampered(issuer, good),
        "wrong-issuer": issuer.token(dict(good, iss="https://login.evil.test/v2.0")),
        "missing-exp": issuer.token({k: v for k, v in good.items() if k != "exp"}),
        "not-yet-valid": issuer.token(dict(good, nbf=now + 3600)),
        "unknown-kid": issuer.token(good, kid="no-such-key"),
        "alg-none": issuer.token(good, alg="none", kid=issuer.ES_KID),
        "alg-key-mismatch": issuer.token(good, alg="RS256", kid=issuer.ES_KID),
        "garbage": "not-a-jwt",
        "exp-1e300": issuer.token(dict(good, exp=1e300)),
        "lifetime-25h": issuer.token(dict(good, exp=now + 25 * 3600)),
    }


BAD_TOKEN_CASES = ["expired", "expired-rs256", "wrong-audience", "wrong-audience-list", "bad-signature",
                   "tampered-payload", "wrong-issuer", "missing-exp", "not-yet-valid", "unknown-kid", "alg-none",
                   "alg-key-mismatch", "garbage", "exp-1e300", "lifetime-25h"]


@pytest.mark.parametrize("case", BAD_TOKEN_CASES)
def test_bad_tokens_are_unauthenticated(clients, jwt_issuer, grant, case):
    oid = grant(str(uuid.uuid4()))  # a registered user: the 401 is about the token, not the role
    token = bad_tokens(jwt_issuer, oid)[case]
    client = clients.token(ls.StaticTokenCredential(token))
    with pytest.raises(ClientAuthenticationError) as read_info:
        client.get_current_ledger_entry()
    assert read_info.value.status_code == 401
    body = ls.sdk_error(read_info.value)
    assert body["code"] and body["message"]
    with pytest.raises(ClientAuthenticationError) as write_info:
        client.create_ledger_entry({"contents": f"must not be written ({case})"})
    assert write_info.value.status_code == 401


@pytest.mark.parametrize("case", ["wrong-audience", "unknown-kid", "wrong-issuer"])
def test_rejected_token_answer_quotes_no_configuration(clients, jwt_issuer, grant, case):
    """The 401 quotes neither the audience, the issuer nor key ids (issue 9, item 11)."""
    oid = grant(str(uuid.uuid4()))
    client = clients.token(ls.StaticTokenCredential(bad_tokens(jwt_issuer, oid)[case]))
    with pytest.raises(ClientAuthenticationError) as info:
        client.get_current_ledger_entry()
    message = ls.sdk_error(info.value)["message"]
    for secret in (jwt_issuer.audience, jwt_issuer.issuer, jwt_issuer.ES_KID, "no-such-key", "login.evil.test"):
        assert secret not in message, (case, message)


def test_token_cannot_claim_a_certificate_user(clients, ledger, jwt_issuer):
    """A token whose oid is the Administrator certificate's fingerprint is refused, not Administrator (issue 9,
    item 8): certificate and token users share no ids."""
    fingerprint = ls.cert_fingerprint(ls.load_cert(ledger.admin_pem))
    for oid in (fingerprint, fingerprint.lower()):
        client = clients.token(ls.StaticTokenCredential(jwt_issuer.token(jwt_issuer.claims(oid=oid))))
        with pytest.raises(ClientAuthenticationError) as info:
            client.get_user(fingerprint)
        assert info.value.status_code == 401


def test_async_bad_tokens_are_unauthenticated(ledger, jwt_issuer, grant):
    oid = grant(str(uuid.uuid4()))
    tokens = bad_tokens(jwt_issuer, oid)

    async def attempt(token):
        credential = ls.AsyncStaticTokenCredential(token)
        async with AsyncConfidentialLedgerClient(
            endpoint=ledger.endpoint, credential=credential, ledger_certificate_path=str(ledger.service_pem)
        ) as client:
            try:
                await client.create_ledger_entry({"contents": "must not be written"})
            except ClientAuthenticationError as exc:
                return exc.status_code
            return 200

    async def scenario():
        return {case: await attempt(tokens[case]) for case in ("expired", "wrong-audience", "bad-signature")}

    assert run(scenario()) == {"expired": 401, "wrong-audience": 401, "bad-signature": 401}
