// Conformance: user-defined functions and hooks (issue 12) through the real
// @azure-rest/confidential-ledger client, with pathUnchecked (its 1.0.x
// typings do not know them) and apiVersion 2024-12-09-preview, shaped as the
// swagger's examples. See ../README.md.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { ConfidentialLedger } from "../lib/client.mjs";
import { Ledgerd, removeBuiltBinaries } from "../lib/ledgerd.mjs";

const API_VERSION = "2024-12-09-preview";

describe(`user-defined functions with the JS client's pathUnchecked (api-version ${API_VERSION})`, () => {
  let ledger;
  let client;
  const id = `myFunction-${process.pid}`;
  const validate = `validate-${process.pid}`;

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

  it("creates, gets, lists, executes and deletes a function", async () => {
    const code = "export function main() { return true }";
    let res = await client.pathUnchecked("/app/userDefinedFunctions/{functionId}", id).put({
      contentType: "application/json", body: { id, code },
    });
    assert.equal(res.status, "201", JSON.stringify(res.body));
    assert.deepEqual(res.body, { id, code });
    assert.ok(res.headers["x-ms-ccf-transaction-id"]);

    res = await client.pathUnchecked("/app/userDefinedFunctions/{functionId}", id).get();
    assert.equal(res.status, "200");
    assert.deepEqual(res.body, { id, code });

    res = await client.pathUnchecked("/app/userDefinedFunctions").get();
    assert.equal(res.status, "200");
    assert.ok(res.body.functions.some((f) => f.id === id && f.code === code));

    res = await client.pathUnchecked(`/app/userDefinedFunctions/${id}:execute`).post({
      contentType: "application/json",
      body: {
        arguments: ["arg1", "arg2"], exportedFunctionName: "main",
        runtimeOptions: { log_exception_details: true, max_cached_interpreters: 0, max_execution_time_ms: 0,
          max_heap_bytes: 0, max_stack_bytes: 0, return_exception_details: true },
      },
    });
    assert.equal(res.status, "200", JSON.stringify(res.body));
    assert.deepEqual(res.body, { status: "Succeeded", result: { returnValue: "true" } });

    res = await client.pathUnchecked("/app/userDefinedFunctions/{functionId}", id).delete();
    assert.equal(res.status, "204");
    res = await client.pathUnchecked("/app/userDefinedFunctions/{functionId}", id).get();
    assert.equal(res.status, "404");
    assert.equal(res.body.error.code, "ResourceNotFound");
  });

  it("a rejecting pre-hook fails the write and writes nothing", async () => {
    const code = `export function main() {
  if (!context.contents.startsWith("ok")) throw new Error("contents must start with ok");
}`;
    let res = await client.pathUnchecked("/app/userDefinedFunctions/{functionId}", validate).put({
      contentType: "application/json", body: { code },
    });
    assert.equal(res.status, "201", JSON.stringify(res.body));
    const coll = `udf-js-${process.pid}`;
    const post = (contents) => client.pathUnchecked("/app/transactions").post({
      contentType: "application/json",
      body: { contents, preHooks: [{ functionId: validate, properties: { arguments: [] } }] },
      queryParameters: { collectionId: coll },
    });
    res = await post("bad entry");
    assert.equal(res.status, "400", JSON.stringify(res.body));
    assert.equal(res.body.error.code, "UserDefinedFunctionFailed");
    assert.match(res.body.error.message, /contents must start with ok/);
    res = await client.pathUnchecked("/app/transactions/current").get({ queryParameters: { collectionId: coll } });
    assert.equal(res.status, "404", JSON.stringify(res.body));

    res = await post("ok entry");
    assert.equal(res.status, "200", JSON.stringify(res.body));
    res = await client.pathUnchecked("/app/transactions/current").get({ queryParameters: { collectionId: coll } });
    assert.equal(res.body.contents, "ok entry");
  });
});
