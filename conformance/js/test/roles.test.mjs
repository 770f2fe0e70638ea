// Conformance: user-defined roles and users with several roles (issue 12)
// through the real @azure-rest/confidential-ledger client with pathUnchecked
// (its 1.0.x typings do not know /app/roles or /app/ledgerUsers) and
// apiVersion 2024-12-09-preview, bodies shaped as the swagger's examples
// (CreateUserDefinedRole.json, UpdateUserDefinedRole.json,
// DeleteUserDefinedRole.json, CreateOrUpdateLedgerUser.json). See ../README.md.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import { makeClientCert } from "../lib/certs.mjs";
import { ConfidentialLedger } from "../lib/client.mjs";
import { Ledgerd, removeBuiltBinaries } from "../lib/ledgerd.mjs";

const API_VERSION = "2024-12-09-preview";
const ACT = "Microsoft.ConfidentialLedger/ledger/";

function assertError(res, status, code) {
  assert.equal(res.status, String(status), JSON.stringify(res.body));
  assert.equal(typeof res.body?.error?.message, "string", JSON.stringify(res.body));
  assert.ok(res.body.error.message.length > 0);
  assert.equal(res.body.error.code, code, JSON.stringify(res.body));
}

describe(`user-defined roles with the JS client's pathUnchecked (api-version ${API_VERSION})`, () => {
  let ledger;
  let admin;
  let user;
  let userId;
  let certDir;
  const roles = () => admin.pathUnchecked("/app/roles");
  const setRoles = (assignedRoles) => admin.pathUnchecked("/app/ledgerUsers/{userId}", userId).patch({
    contentType: "application/merge-patch+json", body: { assignedRoles },
  });

  before(async () => {
    ledger = await Ledgerd.start();
    const opts = (tls) => ({ tlsOptions: tls, apiVersion: API_VERSION });
    admin = ConfidentialLedger(ledger.endpoint, ledger.serviceCert, opts({ cert: ledger.admin.cert, key: ledger.admin.key }));
    certDir = await mkdtemp(path.join(os.tmpdir(), "conformance-js-roles-"));
    const c = await makeClientCert(certDir, "roles-user");
    userId = c.userId;
    user = ConfidentialLedger(ledger.endpoint, ledger.serviceCert, opts({ cert: c.cert, key: c.key }));
    const w = await admin.pathUnchecked("/app/transactions").post({ contentType: "application/json", body: { contents: "seen" } });
    assert.equal(w.status, "200", JSON.stringify(w.body));
  }, { timeout: 360_000 });

  after(async () => {
    if (ledger) await ledger.stop();
    if (certDir) await rm(certDir, { recursive: true, force: true });
    await removeBuiltBinaries();
  });

  it("a role allowing only reads is refused a write and allowed a read; two roles give the union", async () => {
    const reads = [ACT + "read", ACT + "historicalQuery", ACT + "collections/read"];
    let res = await roles().put({ contentType: "application/json", body: [{ roleName: "auditor", roleActions: reads }] });
    assert.equal(res.status, "200", JSON.stringify(res.body));
    res = await roles().get({ queryParameters: { roleName: "auditor" } });
    assert.deepEqual(res.body, [{ roleName: "auditor", roleActions: reads }]);

    res = await setRoles(["auditor"]);
    assert.equal(res.status, "200", JSON.stringify(res.body));
    assert.deepEqual(res.body, { assignedRoles: ["auditor"], userId });

    assertError(await user.pathUnchecked("/app/transactions").post({ contentType: "application/json", body: { contents: "no" } }),
      403, "NotAllowed");
    res = await user.pathUnchecked("/app/transactions/current").get();
    assert.equal(res.status, "200", JSON.stringify(res.body));
    assert.equal(res.body.contents, "seen");
    assertError(await user.pathUnchecked("/app/governance/constitution").get(), 403, "NotAllowed");

    res = await roles().put({ contentType: "application/json", body: [{ roleName: "appender", roleActions: [ACT + "append"] }] });
    assert.equal(res.status, "200", JSON.stringify(res.body));
    res = await setRoles(["auditor", "appender"]);
    assert.deepEqual(res.body.assignedRoles, ["auditor", "appender"]);
    res = await user.pathUnchecked("/app/transactions").post({ contentType: "application/json", body: { contents: "yes" } });
    assert.equal(res.status, "200", JSON.stringify(res.body));
    res = await user.pathUnchecked("/app/collections").get();
    assert.equal(res.status, "200", JSON.stringify(res.body));

    // UpdateUserDefinedRole.json: PATCH adds an action.
    res = await roles().patch({ contentType: "application/json", body: [{ roleName: "auditor", roleActions: [ACT + "governance/constitution/read"] }] });
    assert.equal(res.status, "200", JSON.stringify(res.body));
    res = await user.pathUnchecked("/app/governance/constitution").get();
    assert.equal(res.status, "200", JSON.stringify(res.body));

    // A held role is not deleted.
    assertError(await roles().delete({ queryParameters: { roleName: "appender" } }), 409, "RoleInUse");
    await setRoles(["auditor"]);
    res = await roles().delete({ queryParameters: { roleName: "appender" } });
    assert.equal(res.status, "200", JSON.stringify(res.body));
    assertError(await roles().get({ queryParameters: { roleName: "appender" } }), 404, "ResourceNotFound");
  });

  it("built-in roles cannot be deleted or changed; bad requests are 4xx with an ACL error body", async () => {
    // DeleteUserDefinedRole.json deletes "reader"; CreateUserDefinedRole.json redefines "administrator".
    assertError(await roles().delete({ queryParameters: { roleName: "reader" } }), 400, "InvalidInput");
    assertError(await roles().put({ contentType: "application/json",
      body: [{ roleName: "administrator", roleActions: [ACT + "users/write", ACT + "users/read"] }] }), 400, "InvalidInput");
    const all = await roles().get();
    assert.deepEqual(all.body.slice(0, 3).map((r) => r.roleName), ["Administrator", "Contributor", "Reader"]);

    assertError(await roles().put({ contentType: "application/json", body: { roles: "no" } }), 400, "InvalidInput");
    assertError(await roles().put({ contentType: "application/json", body: [{ roleName: "x".repeat(65), roleActions: [] }] }),
      400, "InvalidInput");
    assertError(await roles().put({ contentType: "application/json", body: [{ roleName: "x", roleActions: ["a".repeat(257)] }] }),
      400, "InvalidInput");
    assertError(await setRoles(["nobody"]), 400, "InvalidInput");
    assertError(await setRoles(["Auditor"]), 400, "InvalidInput"); // user-defined names are case-sensitive
    assertError(await setRoles(["r".repeat(65)]), 400, "InvalidInput");
    assertError(await roles().delete(), 400, "InvalidQueryParameterValue");
    assertError(await user.pathUnchecked("/app/roles").get(), 403, "NotAllowed");
  });
});
