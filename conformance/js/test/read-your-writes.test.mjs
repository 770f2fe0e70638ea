// Conformance: read your writes (issue 8), with the real
// @azure-rest/confidential-ledger client. In CCF, and so in Azure
// Confidential Ledger, an endpoint runs against the node's latest executed
// state, which includes the node's own transactions not yet committed: an
// append (not waited for) is at once the current entry of its collection,
// and a new collection is at once listed.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { certClient, isUnexpected } from "../lib/client.mjs";
import { Ledgerd, removeBuiltBinaries } from "../lib/ledgerd.mjs";

describe("read your writes", () => {
  /** @type {Ledgerd} */
  let ledger;
  let admin;

  before(async () => {
    ledger = await Ledgerd.start();
    admin = certClient(ledger.endpoint, ledger.serviceCert, ledger.admin);
  }, { timeout: 360_000 });

  after(async () => {
    if (ledger) await ledger.stop();
    await removeBuiltBinaries();
  });

  async function append(collectionId, contents) {
    const res = await admin.path("/app/transactions").post({
      contentType: "application/json",
      body: { contents },
      queryParameters: { collectionId },
    });
    assert.equal(res.status, "200", JSON.stringify(res.body));
    return res.headers["x-ms-ccf-transaction-id"];
  }

  async function current(collectionId) {
    const res = await admin.path("/app/transactions/current").get({ queryParameters: { collectionId } });
    assert.ok(!isUnexpected(res), `current of ${collectionId}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  }

  it("50 new collections: each is current and listed right after its first append", async () => {
    const prefix = `ryw-${process.pid}`;
    for (let i = 0; i < 50; i++) {
      const collectionId = `${prefix}-${i}`;
      const contents = `first entry of ${collectionId}`;
      const transactionId = await append(collectionId, contents);
      assert.deepEqual(await current(collectionId), { collectionId, contents, transactionId }, `collection ${i}`);
      const res = await admin.path("/app/collections").get();
      assert.ok(!isUnexpected(res), JSON.stringify(res.body));
      assert.ok(
        res.body.collections.some((c) => c.collectionId === collectionId),
        `${collectionId} not listed right after its first append`,
      );
    }
  });

  it("100 appends to one collection: each is the current entry right after it is answered", async () => {
    const collectionId = `ryw-same-${process.pid}`;
    for (let i = 0; i < 100; i++) {
      const contents = `entry ${i}`;
      const transactionId = await append(collectionId, contents);
      assert.deepEqual(await current(collectionId), { collectionId, contents, transactionId }, `append ${i}`);
    }
  });
});
