"""Governance (acl-api.md §9) end to end: a consortium runs the service through signed proposals and ballots, and
the Azure SDK sees the effects.

The COSE_Sign1 envelopes are built here (gov_support.py: CBOR, ECDSA, CCF's headers), not by ledgerd's code. The
module runs its own node, so that its consortium and constitution changes do not reach the shared one. The tests
run in file order: the first three need member0 to be the whole consortium, the last one grows it to three.
"""

import hashlib
import json
import time

import pytest
from azure.core.exceptions import HttpResponseError
from cryptography.hazmat.primitives import serialization

from azure.confidentialledger import ConfidentialLedgerCertificateCredential, ConfidentialLedgerClient

import gov_support as gs
import ledgerd_support as ls


@pytest.fixture(scope="module")
def gov_node(binaries, workdir):
    node = ls.LedgerProcess(binaries["ledgerd"], workdir / "gov-data", workdir / "gov-ledgerd.log",
                            extra_args=["--signature-interval", ls.SIGNATURE_INTERVAL])
    node.start()
    yield node
    node.stop()
    ls.audit_ok(binaries["ledgerctl"], node.data_dir)


@pytest.fixture(scope="module")
def gov(gov_node, binaries):
    """The governance client. At the end, with the node stopped, `ledgerctl audit --governance` must find in the
    ledger exactly the signed requests the node accepted, each signer in order (gs.audit_governance)."""
    client = gs.GovClient(gov_node.endpoint, gov_node.service_pem)
    yield client
    client.close()
    gov_node.stop()
    gs.audit_governance(binaries["ledgerctl"], gov_node.data_dir, client.accepted)


@pytest.fixture(scope="module")
def member0(gov_node):
    return gs.Member.load(gov_node.member0_pem)


@pytest.fixture(scope="module")
def sdk(gov_node):
    """sdk(pem_path) makes a real SDK client with that certificate credential; all are closed at the end."""
    made = []

    def make(pem_path):
        client = ConfidentialLedgerClient(
            endpoint=gov_node.endpoint,
            credential=ConfidentialLedgerCertificateCredential(certificate_path=str(pem_path)),
            ledger_certificate_path=str(gov_node.service_pem),
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture(scope="module")
def gov_users(workdir):
    path = workdir / "gov-users"
    path.mkdir()
    return path


def sdk_refused(call, *args, **kwargs):
    with pytest.raises(HttpResponseError) as info:
        call(*args, **kwargs)
    return ls.sdk_error(info.value)


def open_proposal(gov, member):
    """A harmless proposal that stays Open until voted on."""
    proposal = gov.propose(member, ("set_recovery_threshold", {"recovery_threshold": 1}))
    assert proposal["proposalState"] == "Open" and proposal["ballotCount"] == 0, proposal
    return proposal


def test_set_user_lets_the_sdk_append_and_remove_user_stops_it(gov, member0, sdk, gov_users):
    user = ls.make_user_cert(gov_users, "gov-contributor")
    client = sdk(user.pem_path)
    err = sdk_refused(client.create_ledger_entry, {"contents": "not a user yet"})
    assert (err["status"], err["code"]) == (403, "NotAllowed"), err

    actions = [("set_user", {"cert": user.cert.public_bytes(serialization.Encoding.PEM).decode(),
                             "role": "Contributor"})]
    proposal = gov.propose(member0, *actions)
    assert proposal["proposalState"] == "Open", proposal
    assert proposal["proposerId"] == member0.id
    pid = proposal["proposalId"]
    assert gov.get_json(f"/gov/members/proposals/{pid}/actions") == {
        "actions": [{"name": name, "args": args} for name, args in actions]}
    voted = gov.vote(member0, pid)
    assert voted["proposalState"] == "Accepted" and voted["finalVotes"] == {member0.id: True}, voted
    ballot = gov.get(f"/gov/members/proposals/{pid}/ballots/{member0.id}")
    assert ballot.status_code == 200 and ballot.text == gs.BALLOT_YES, ballot.text

    txid = client.create_ledger_entry({"contents": "hello from a governed user"}, collection_id="gov")["transactionId"]
    client.begin_wait_for_commit(txid).result(timeout=30)
    entry = client.begin_get_ledger_entry(txid, collection_id="gov").result(timeout=30)["entry"]
    assert (entry["contents"], entry["collectionId"], entry["transactionId"]) == (
        "hello from a governed user", "gov", txid)

    removed = gov.propose_and_vote(member0, ("remove_user", {"user_id": user.user_id}))
    assert removed["proposalState"] == "Accepted", removed
    err = sdk_refused(client.create_ledger_entry, {"contents": "no longer a user"})
    assert (err["status"], err["code"]) == (403, "NotAllowed"), err


def test_refused_requests_write_nothing(gov, member0):
    """Replayed, forged, stale and unknown-member requests each get the documented error and change nothing."""
    envelope = member0.sign("proposal", gs.proposal_body(("set_recovery_threshold", {"recovery_threshold": 1})))
    resp = gov.post_ok("/gov/members/proposals:create", envelope)
    gov.wait_committed(resp)
    open_p = resp.json()
    assert open_p["proposalState"] == "Open", open_p
    before = gov.proposals()
    assert open_p in before
    last_commit = gov.get_json("/gov/service/transactions/commit")
    outsider = gs.Member.generate("not a member")
    body = gs.proposal_body(("set_user", {"user_id": "intruder", "role": "Administrator"}))
    two_hours_ago = int(time.time()) - 2 * 3600

    refused = {
        "replayed": (gov.post("/gov/members/proposals:create", envelope), (400, "ProposalReplay")),
        "forged": (gov.post("/gov/members/proposals:create", member0.sign("proposal", body, key=outsider.key)),
                   (401, "InvalidAuthenticationInfo")),
        "stale": (gov.post("/gov/members/proposals:create", member0.sign("proposal", body, created_at=two_hours_ago)),
                  (400, "InvalidCreatedAt")),
        "unknown member": (gov.post("/gov/members/proposals:create", outsider.sign("proposal", body)),
                           (401, "InvalidAuthenticationInfo")),
        "forged ballot": (gov.post(f"/gov/members/proposals/{open_p['proposalId']}/ballots/{member0.id}:submit",
                                   member0.sign("ballot", json.dumps({"ballot": gs.BALLOT_YES}).encode(),
                                                proposal_id=open_p["proposalId"], key=outsider.key)),
                          (401, "InvalidAuthenticationInfo")),
        "stale ballot": (gov.post(f"/gov/members/proposals/{open_p['proposalId']}/ballots/{member0.id}:submit",
                                  member0.sign("ballot", json.dumps({"ballot": gs.BALLOT_YES}).encode(),
                                               proposal_id=open_p["proposalId"], created_at=two_hours_ago)),
                         (400, "InvalidCreatedAt")),
        "untagged": (gov.post("/gov/members/proposals:create", gs.sign1(member0.key, member0.id, "proposal", body,
                                                                        tagged=False)),
                     (401, "InvalidAuthenticationInfo")),
        "no message type": (gov.post("/gov/members/proposals:create", gs.sign1(member0.key, member0.id, None, body)),
                            (401, "InvalidAuthenticationInfo")),
    }
    for what, (resp, expected) in refused.items():
        assert gs.gov_error(resp) == expected, (what, resp.text)
    assert "already exists as proposal" in refused["replayed"][0].json()["error"]["message"]
    assert open_p["proposalId"] in refused["replayed"][0].json()["error"]["message"]

    assert gov.proposals() == before
    assert gov.get_json("/gov/service/transactions/commit") == last_commit  # no transaction at all since
    assert gov.proposal(open_p["proposalId"]) == open_p
    assert gov.get(f"/gov/members/proposals/{open_p['proposalId']}/ballots/{member0.id}").status_code == 404

    withdrawn = gov.withdraw(member0, open_p["proposalId"])
    assert withdrawn["proposalState"] == "Withdrawn", withdrawn


def test_set_constitution_is_seen_by_the_sdk_and_drops_open_proposals(gov, member0, sdk, gov_node):
    admin = sdk(gov_node.admin_pem)
    current = gov.get("/gov/service/constitution")
    assert current.status_code == 200 and current.headers["Content-Type"].startswith("text/javascript")
    script = current.text
    assert admin.get_constitution() == {"digest": hashlib.sha256(script.encode()).hexdigest(), "script": script}

    pending = open_proposal(gov, member0)
    amended = script + "\n// amended by conformance/python/test_governance.py\n"
    accepted = gov.propose_and_vote(member0, ("set_constitution", {"constitution": amended}))
    assert accepted["proposalState"] == "Accepted", accepted

    assert gov.proposal(pending["proposalId"])["proposalState"] == "Dropped"
    assert gov.get("/gov/service/constitution").text == amended
    assert admin.get_constitution() == {"digest": hashlib.sha256(amended.encode()).hexdigest(), "script": amended}
    # The amended constitution still governs: a proposal is accepted by member0's vote.
    again = gov.propose_and_vote(member0, ("set_recovery_threshold", {"recovery_threshold": 1}))
    assert again["proposalState"] == "Accepted", again


def consortium_ids(client):
    return {m["id"]: m["certificate"] for m in client.list_consortium_members()}


def test_two_of_three_members_accept(gov, member0, sdk, gov_node, gov_users):
    """Grows the consortium to three Active members (set_member, then each acks the state digest); then one yes
    leaves a proposal Open and a second accepts it. The SDK lists each governed member."""
    admin = sdk(gov_node.admin_pem)
    assert set(consortium_ids(admin)) == {member0.id}
    member1, member2 = gs.Member.generate("member 1"), gs.Member.generate("member 2")

    # member0 alone is the whole consortium: its yes adds member1, Accepted.
    added = gov.propose_and_vote(member0, ("set_member", {"cert": member1.cert_pem}))
    assert added["proposalState"] == "Accepted", added
    assert gov.members()[member1.id]["status"] == "Accepted"
    # /app/governance/members lists every member with a certificate, Accepted ones too (handlers_gov.go).
    assert consortium_ids(admin) == {member0.id: gov.members()[member0.id]["certificate"],
                                     member1.id: member1.cert_pem}
    # An Accepted member may not propose yet.
    resp = gov.post("/gov/members/proposals:create",
                    member1.sign("proposal", gs.proposal_body(("set_recovery_threshold", {"recovery_threshold": 1}))))
    assert gs.gov_error(resp) == (403, "AuthorizationFailed"), resp.text
    gov.ack(member1)
    assert gov.members()[member1.id]["status"] == "Active"

    # Two Active members: a strict majority is both.
    p = gov.propose_and_vote(member0, ("set_member", {"cert": member2.cert_pem}))
    assert p["proposalState"] == "Open" and p["ballotCount"] == 1, p
    p = gov.vote(member1, p["proposalId"])
    assert p["proposalState"] == "Accepted", p
    gov.ack(member2)
    assert {mid: m["status"] for mid, m in gov.members().items()} == {
        member0.id: "Active", member1.id: "Active", member2.id: "Active"}
    listed = consortium_ids(admin)
    assert set(listed) == {member0.id, member1.id, member2.id}
    assert listed[member2.id] == member2.cert_pem

    # Three Active members: one yes is not enough, the second is.
    reader = ls.make_user_cert(gov_users, "gov-reader")
    p = gov.propose_and_vote(member2, ("set_user", {"cert": reader.cert.public_bytes(serialization.Encoding.PEM)
                                                    .decode(), "role": "Reader"}))
    assert p["proposalState"] == "Open" and p["ballotCount"] == 1, p
    assert gov.proposal(p["proposalId"])["proposalState"] == "Open"
    reader_client = sdk(reader.pem_path)
    err = sdk_refused(reader_client.get_constitution)
    assert (err["status"], err["code"]) == (403, "NotAllowed"), err

    p = gov.vote(member0, p["proposalId"])
    assert p["proposalState"] == "Accepted", p
    assert p["finalVotes"] == {member2.id: True, member0.id: True}, p
    assert reader_client.get_constitution()["script"] == gov.get("/gov/service/constitution").text
