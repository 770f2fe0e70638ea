// Conformance: issue 12's newer routes through the real
// @azure-rest/confidential-ledger client, with pathUnchecked (its 1.0.x
// typings do not know them) and apiVersion 2024-12-09-preview: entry tags
// (POST ?tags=, GET ?tag=, GET /app/collections/tags) and receipts with
// applicationClaims. See ../README.md.

import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import { after, before, describe, it } from "node:test";

import { ConfidentialLedger, paginate } from "../lib/client.mjs";
import { Ledgerd, removeBuiltBinaries } from "../lib/ledgerd.mjs";
import { pollUntil } from "../lib/poll.mjs";

const API_VERSION = "2024-12-09-preview";

/** ACL's claims digest (the Azure SDK's algorithm), written out. */
function claimsDigest(claims) {
  const parts = [Buffer.alloc(4)];
  parts[0].writeUInt32LE(claims.length);
  for (const c of claims) {
    assert.equal(c.kind, "LedgerEntry");
    const e = c.ledgerEntry;
    const key = Buffer.from(e.secretKey, "base64");
    const h1 = createHmac("sha256", key).update(e.collectionId, "utf8").digest();
    const h2 = createHmac("sha256", key).update(e.contents, "utf8").digest();
    const v1 = createHash("sha256").update(Buffer.concat([h1, h2])).digest();
    parts.push(createHash("sha256").update(Buffer.concat([Buffer.from(e.protocol), v1])).digest());
  }
  return createHash("sha256").update(Buffer.concat(parts)).digest("hex");
}

describe(`issue 12 routes with the JS client's pathUnchecked (api-version ${API_VERSION})`, () => {
  let ledger;
  let client;
  const coll = `tags-js-${process.pid}`;
  const written = {};

  before(async () => {
    ledger = await Ledgerd.start();
    client = ConfidentialLedger(ledger.endpoint, ledger.serviceCert, {
      tlsOptions: { cert: ledger.admin.cert, key: ledger.admin.key },
      apiVersion: API_VERSION,
    });
  }, { timeout: 360_000 });

  after(async () => {
    if (ledger) await ledger.stop();
    await removeBuiltBinaries();
  });

  it("POST /app/transactions?tags= stores tags; GET ?tag= lists by tag; collections/tags lists them", async () => {
    for (const [contents, tags] of [["Hello from Alice!", "alice,greeting"], ["Hi from Bob!", "bob,greeting"],
      ["Bye from Alice!", "alice,goodbye"]]) {
      const res = await client.pathUnchecked("/app/transactions").post({
        contentType: "application/json", body: { contents }, queryParameters: { collectionId: coll, tags },
      });
      assert.equal(res.status, "200", JSON.stringify(res.body));
      assert.deepEqual(res.body, { collectionId: coll });
      written[contents] = res.headers["x-ms-ccf-transaction-id"];
    }
    const last = written["Bye from Alice!"];
    await pollUntil(async () => {
      const res = await client.pathUnchecked("/app/transactions/{transactionId}/status", last).get();
      return res.body.state === "Committed" ? res.body : undefined;
    }, { timeoutMs: 10_000, what: `${last} to be Committed` });

    const list = async (queryParameters) => {
      const first = await client.pathUnchecked("/app/transactions").get({ queryParameters });
      assert.equal(first.status, "200", JSON.stringify(first.body));
      const out = [];
      for await (const e of paginate(client, first)) out.push(e);
      return out;
    };
    const greetings = await list({ collectionId: coll, tag: "greeting" });
    assert.deepEqual(greetings.map((e) => e.contents), ["Hello from Alice!", "Hi from Bob!"]);
    assert.deepEqual(greetings[0].tags, ["alice", "greeting"]);
    const alice = await list({ collectionId: coll, tags: "alice" });
    assert.deepEqual(alice.map((e) => e.transactionId), [written["Hello from Alice!"], written["Bye from Alice!"]]);

    const tags = await client.pathUnchecked("/app/collections/tags").get({ queryParameters: { collectionId: coll } });
    assert.equal(tags.status, "200", JSON.stringify(tags.body));
    assert.deepEqual(tags.body, { collections: [{ collectionId: coll, tags: ["alice", "bob", "goodbye", "greeting"] }] });
  });

  it("a bad tag is a 400 with an ACL error body", async () => {
    const res = await client.pathUnchecked("/app/transactions").post({
      contentType: "application/json", body: { contents: "x" }, queryParameters: { collectionId: coll, tags: "a,,b" },
    });
    assert.equal(res.status, "400");
    assert.equal(res.body.error.code, "InvalidQueryParameterValue");
    assert.match(res.body.error.message, /empty tag/);
  });

  it("GET .../receipt has applicationClaims whose digest is the receipt's claims digest", async () => {
    const txid = written["Hi from Bob!"];
    const res = await client.pathUnchecked("/app/transactions/{transactionId}/receipt", txid).get();
    assert.equal(res.status, "200", JSON.stringify(res.body));
    const claims = res.body.applicationClaims;
    assert.equal(claims.length, 1);
    assert.equal(claims[0].ledgerEntry.contents, "Hi from Bob!");
    assert.equal(claimsDigest(claims), res.body.receipt.leafComponents.claimsDigest);
    const bad = structuredClone(claims);
    bad[0].ledgerEntry.contents = "Hi from Bob?";
    assert.notEqual(claimsDigest(bad), res.body.receipt.leafComponents.claimsDigest);
  });
});
