// Conformance: governance (docs/acl-api.md §9) with the real
// @azure-rest/confidential-ledger client. member0 signs a set_user proposal
// and a ballot, COSE_Sign1 envelopes built here with Node's crypto (a small
// CBOR encoder below; ECDSA r||s via dsaEncoding "ieee-p1363"), independently
// of ledgerd's Go code; the user it adds then appends and reads back with the
// JS client, and the JS client reads the governance API's proposal list.

import assert from "node:assert/strict";
import { createHash, createPrivateKey, sign, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import { makeClientCert, splitPem } from "../lib/certs.mjs";
import { certClient, ConfidentialLedger } from "../lib/client.mjs";
import { Ledgerd, removeBuiltBinaries } from "../lib/ledgerd.mjs";
import { pollUntil } from "../lib/poll.mjs";

const GOV_API_VERSION = "2024-07-01";
const BALLOT_YES = "export function vote (proposal, proposerId) { return true; }";

// ---- CBOR (RFC 8949): definite lengths, shortest form; Maps keep their order.

class Tag {
  constructor(number, value) {
    this.number = number;
    this.value = value;
  }
}

function head(major, n) {
  if (n < 24) return Buffer.from([(major << 5) | n]);
  if (n < 0x100) return Buffer.from([(major << 5) | 24, n]);
  if (n < 0x10000) return Buffer.from([(major << 5) | 25, n >> 8, n & 0xff]);
  const b = Buffer.alloc(n < 0x100000000 ? 5 : 9);
  b[0] = (major << 5) | (b.length === 5 ? 26 : 27);
  if (b.length === 5) b.writeUInt32BE(n, 1);
  else b.writeBigUInt64BE(BigInt(n), 1);
  return b;
}

function cbor(v) {
  if (Number.isInteger(v)) return v >= 0 ? head(0, v) : head(1, -1 - v);
  if (v instanceof Uint8Array) return Buffer.concat([head(2, v.length), v]);
  if (typeof v === "string") {
    const s = Buffer.from(v, "utf8");
    return Buffer.concat([head(3, s.length), s]);
  }
  if (Array.isArray(v)) return Buffer.concat([head(4, v.length), ...v.map(cbor)]);
  if (v instanceof Map) return Buffer.concat([head(5, v.size), ...[...v].flatMap(([k, x]) => [cbor(k), cbor(x)])]);
  if (v instanceof Tag) return Buffer.concat([head(6, v.number), cbor(v.value)]);
  throw new TypeError(`cannot CBOR-encode ${v}`);
}

// ---- COSE_Sign1 (RFC 9052 §4.2) with CCF's governance headers.

const ALGS = { prime256v1: [-7, "sha256"], secp384r1: [-35, "sha384"], secp521r1: [-36, "sha512"] };

/** A member's signer from its PEM certificate and key. */
function memberSigner({ cert, key }) {
  const privateKey = createPrivateKey(key);
  const [alg, hash] = ALGS[privateKey.asymmetricKeyDetails.namedCurve];
  const id = createHash("sha256").update(new X509Certificate(cert).raw).digest("hex");
  return {
    id,
    sign(msgType, payload = Buffer.alloc(0), proposalId) {
      const protectedHeaders = new Map([
        [1, alg],
        [4, Buffer.from(id, "ascii")],
        ["ccf.gov.msg.type", msgType],
        ["ccf.gov.msg.created_at", Math.floor(Date.now() / 1000)],
      ]);
      if (proposalId !== undefined) protectedHeaders.set("ccf.gov.msg.proposal_id", proposalId);
      const prot = cbor(protectedHeaders);
      const toBeSigned = cbor(["Signature1", prot, Buffer.alloc(0), payload]);
      const signature = sign(hash, toBeSigned, { key: privateKey, dsaEncoding: "ieee-p1363" });
      return cbor(new Tag(18, [prot, new Map(), payload, signature]));
    },
  };
}

describe("governance", () => {
  /** @type {Ledgerd} */
  let ledger;
  let member0;
  let gov; // the JS client speaking the governance api-version
  let tmp;

  /** POSTs a signed envelope over TLS pinned to the service certificate (no client credentials). */
  function postSigned(urlPath, envelope) {
    const url = new URL(`${ledger.endpoint}${urlPath}`);
    url.searchParams.set("api-version", GOV_API_VERSION);
    return new Promise((resolve, reject) => {
      const req = https.request(url, {
        method: "POST",
        ca: ledger.serviceCert,
        agent: false,
        headers: { "Content-Type": "application/cose", "Content-Length": envelope.length },
      }, (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          assert.equal(res.statusCode, 200, `POST ${urlPath}: ${res.statusCode} ${text}`);
          resolve({ txid: res.headers["x-ms-ccf-transaction-id"], body: JSON.parse(text) });
        });
        res.on("error", reject);
      });
      req.on("error", reject);
      req.end(envelope);
    });
  }

  /** Members are checked against the committed state: wait for each signed write to commit. */
  async function waitGovCommitted(txid) {
    await pollUntil(async (seen) => {
      const res = await gov.pathUnchecked("/gov/service/transactions/{transactionId}", txid).get();
      seen(res.body);
      assert.equal(res.status, "200", JSON.stringify(res.body));
      return res.body.status === "Committed" ? true : undefined;
    }, { what: `transaction ${txid} Committed` });
  }

  async function signed(urlPath, envelope) {
    const { txid, body } = await postSigned(urlPath, envelope);
    await waitGovCommitted(txid);
    return body;
  }

  before(async () => {
    ledger = await Ledgerd.start();
    tmp = await mkdtemp(path.join(os.tmpdir(), "conformance-js-gov-"));
    member0 = memberSigner(splitPem(readFileSync(path.join(ledger.dataDir, "member0.pem"), "utf8")));
    // The client appends its apiVersion option to every request: a governance client is one made with the
    // governance api-version.
    gov = ConfidentialLedger(ledger.endpoint, ledger.serviceCert, { apiVersion: GOV_API_VERSION });
  }, { timeout: 360_000 });

  after(async () => {
    if (ledger) await ledger.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
    await removeBuiltBinaries();
  });

  let proposalId;

  it("a user added by a signed set_user proposal appends and reads back with the JS client", async () => {
    const user = await makeClientCert(tmp, "governed-user", "ec");
    const client = certClient(ledger.endpoint, ledger.serviceCert, user);
    const refused = await client.path("/app/transactions").post({ contentType: "application/json", body: { contents: "x" } });
    assert.equal(refused.status, "403", JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, "NotAllowed");

    const actions = { actions: [{ name: "set_user", args: { cert: user.cert, role: "Contributor" } }] };
    const proposal = await signed("/gov/members/proposals:create",
      member0.sign("proposal", Buffer.from(JSON.stringify(actions))));
    assert.equal(proposal.proposalState, "Open", JSON.stringify(proposal));
    assert.equal(proposal.proposerId, member0.id);
    proposalId = proposal.proposalId;
    const voted = await signed(`/gov/members/proposals/${proposalId}/ballots/${member0.id}:submit`,
      member0.sign("ballot", Buffer.from(JSON.stringify({ ballot: BALLOT_YES })), proposalId));
    assert.equal(voted.proposalState, "Accepted", JSON.stringify(voted));
    assert.deepEqual(voted.finalVotes, { [member0.id]: true });

    const contents = "hello from a user the consortium added";
    const res = await client.path("/app/transactions").post({
      contentType: "application/json", body: { contents }, queryParameters: { collectionId: "governed" },
    });
    assert.equal(res.status, "200", JSON.stringify(res.body));
    const txid = res.headers["x-ms-ccf-transaction-id"];
    const entry = await pollUntil(async (seen) => {
      const got = await client.path("/app/transactions/{transactionId}", txid).get({
        queryParameters: { collectionId: "governed" },
      });
      seen(got.body);
      assert.equal(got.status, "200", JSON.stringify(got.body));
      return got.body.state === "Ready" ? got.body.entry : undefined;
    }, { what: `entry ${txid} Ready` });
    assert.deepEqual(entry, { collectionId: "governed", contents, transactionId: txid });
  });

  it("pathUnchecked GETs of the governance API read the proposal list and the proposal", async () => {
    assert.ok(proposalId, "needs the proposal of the previous test");
    const list = await gov.pathUnchecked("/gov/members/proposals").get();
    assert.equal(list.status, "200", JSON.stringify(list.body));
    assert.deepEqual(new URL(list.request.url).searchParams.getAll("api-version"), [GOV_API_VERSION]);
    const listed = list.body.value.find((p) => p.proposalId === proposalId);
    assert.deepEqual(listed, {
      proposalId, proposerId: member0.id, proposalState: "Accepted", ballotCount: 1,
      finalVotes: { [member0.id]: true },
    });
    const one = await gov.pathUnchecked("/gov/members/proposals/{proposalId}", proposalId).get();
    assert.equal(one.status, "200", JSON.stringify(one.body));
    assert.deepEqual(one.body, listed);
    const ballot = await gov.pathUnchecked("/gov/members/proposals/{proposalId}/ballots/{memberId}",
      proposalId, member0.id).get();
    assert.equal(ballot.status, "200");
    assert.equal(ballot.body, BALLOT_YES);

    // The data-plane client also appends its own api-version (2022-05-13): the governance API refuses it.
    const acl = certClient(ledger.endpoint, ledger.serviceCert, ledger.admin);
    const wrong = await acl.pathUnchecked("/gov/members/proposals").get({ queryParameters: { "api-version": GOV_API_VERSION } });
    assert.equal(wrong.status, "400", JSON.stringify(wrong.body));
    assert.equal(wrong.body.error.code, "UnsupportedApiVersionValue");
    assert.equal(wrong.headers["x-ms-error-code"], "UnsupportedApiVersionValue");
  });
});
