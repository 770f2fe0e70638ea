// Conformance: every operation of the 2024-12-09-preview data-plane swagger
// through the real @azure-rest/confidential-ledger client (1.0.0, the newest
// on the registry: `npm view @azure-rest/confidential-ledger versions` lists
// no beta), with pathUnchecked and apiVersion 2024-12-09-preview, each sent as
// its x-ms-examples file asks. The operationIds are those of
// Azure/azure-rest-api-specs specification/confidentialledger/data-plane/
// Microsoft.ConfidentialLedger/preview/2024-12-09-preview/confidentialledger.json
// (paths order) and identityservice.json; the example shapes come from its
// examples/ files. conformance/python/test_spec_sweep.py is the same sweep
// with raw requests and says where the examples contradict the swagger's
// schema (the schema is checked) and where ledgerd deliberately differs
// (docs/acl-api.md). See ../README.md.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import { makeClientCert } from "../lib/certs.mjs";
import { ConfidentialLedger } from "../lib/client.mjs";
import { Ledgerd, removeBuiltBinaries } from "../lib/ledgerd.mjs";
import { pollUntil } from "../lib/poll.mjs";

const API_VERSION = "2024-12-09-preview";

const SWAGGER_OPERATION_IDS = [
  "GetConstitution", "ListConsortiumMembers", "GetEnclaveQuotes", "ListCollections", "ListLedgerEntries",
  "CreateLedgerEntry", "GetLedgerEntry", "GetReceipt", "GetTransactionStatus", "GetCurrentLedgerEntry",
  "ListUsers", "ListLedgerUsers", "DeleteUser", "GetUser", "CreateOrUpdateUser", "DeleteLedgerUser",
  "GetLedgerUser", "CreateOrUpdateLedgerUser", "GetUserDefinedEndpoint", "CreateUserDefinedEndpoint",
  "GetRuntimeOptions", "UpdateRuntimeOptions", "GetUserDefinedEndpointsModule", "ListUserDefinedFunctions",
  "DeleteUserDefinedFunction", "GetUserDefinedFunction", "CreateUserDefinedFunction", "ExecuteUserDefinedFunction",
  "GetUserDefinedRole", "CreateUserDefinedRole", "UpdateUserDefinedRole", "DeleteUserDefinedRole",
  "GetLedgerIdentity", // identityservice.json
];

const ANY = Symbol("any JSON value");
const S = "s";
const ENTRY = { contents: S, collectionId: S, transactionId: S };
const OPTIONS = { max_heap_bytes: 1, max_stack_bytes: 1, max_execution_time_ms: 1, log_exception_details: false,
  return_exception_details: false, max_cached_interpreters: 1 };
const EXAMPLE_OPTIONS = { log_exception_details: true, max_cached_interpreters: 0, max_execution_time_ms: 0,
  max_heap_bytes: 0, max_stack_bytes: 0, return_exception_details: true };
const CODE = "export function main() { return true }";
const ACTIONS = ["Microsoft.ConfidentialLedger/ledger/users/write", "Microsoft.ConfidentialLedger/ledger/users/read"];
const USER = "AAD object id";

// operationId -> [method, path, declared statuses, the example response's shape or null]
const OPERATIONS = {
  GetConstitution: ["get", "/app/governance/constitution", ["200"], { digest: S, script: S }],
  ListConsortiumMembers: ["get", "/app/governance/members", ["200"], { members: [{ certificate: S, id: S }] }],
  GetEnclaveQuotes: ["get", "/app/enclaveQuotes", ["200"],
    { currentNodeId: S, enclaveQuotes: { "*": { mrenclave: S, nodeId: S, raw: S, quoteVersion: S } } }],
  ListCollections: ["get", "/app/collections", ["200"], { collections: [{ collectionId: S }] }],
  ListLedgerEntries: ["get", "/app/transactions", ["200"], { state: S, entries: [ENTRY] }],
  CreateLedgerEntry: ["post", "/app/transactions", ["200"], { collectionId: S }],
  GetLedgerEntry: ["get", "/app/transactions/{transactionId}", ["200"], { state: S, entry: ENTRY }],
  GetReceipt: ["get", "/app/transactions/{transactionId}/receipt", ["200"], {
    applicationClaims: [{ kind: S, ledgerEntry: { protocol: S, collectionId: S, contents: S, secretKey: S } }],
    receipt: { cert: S, leafComponents: { commitEvidence: S, writeSetDigest: S }, nodeId: S, proof: [{ left: S }],
      serviceEndorsements: [], signature: S },
    state: S, transactionId: S }],
  GetTransactionStatus: ["get", "/app/transactions/{transactionId}/status", ["200"], { state: S, transactionId: S }],
  GetCurrentLedgerEntry: ["get", "/app/transactions/current", ["200"], ENTRY],
  ListUsers: ["get", "/app/users", ["200"], { ledgerUsers: [{ assignedRole: S, userId: S }] }],
  ListLedgerUsers: ["get", "/app/ledgerUsers", ["200"], { ledgerUsers: [{ assignedRoles: [S], userId: S }] }],
  DeleteUser: ["delete", "/app/users/{userId}", ["204"], null],
  GetUser: ["get", "/app/users/{userId}", ["200"], { assignedRole: S, userId: S }],
  CreateOrUpdateUser: ["patch", "/app/users/{userId}", ["200"], { assignedRole: S, userId: S }],
  DeleteLedgerUser: ["delete", "/app/ledgerUsers/{userId}", ["204"], null],
  GetLedgerUser: ["get", "/app/ledgerUsers/{userId}", ["200"], { assignedRoles: [S], userId: S }],
  CreateOrUpdateLedgerUser: ["patch", "/app/ledgerUsers/{userId}", ["200"], { assignedRoles: [S], userId: S }],
  GetUserDefinedEndpoint: ["get", "/app/userDefinedEndpoints", ["200"], {
    metadata: { endpoints: { "/content": { get: { forwarding_required: S, authn_policies: [ANY] } } } },
    modules: [{ name: S, module: S }] }],
  CreateUserDefinedEndpoint: ["put", "/app/userDefinedEndpoints", ["201"], null],
  GetRuntimeOptions: ["get", "/app/userDefinedEndpoints/runtimeOptions", ["200"], OPTIONS],
  UpdateRuntimeOptions: ["patch", "/app/userDefinedEndpoints/runtimeOptions", ["200"], OPTIONS],
  GetUserDefinedEndpointsModule: ["get", "/app/userDefinedEndpoints/modules", ["200"], { name: S, module: S }],
  ListUserDefinedFunctions: ["get", "/app/userDefinedFunctions", ["200"], { functions: [{ id: S, code: S }] }],
  DeleteUserDefinedFunction: ["delete", "/app/userDefinedFunctions/{functionId}", ["204"], null],
  GetUserDefinedFunction: ["get", "/app/userDefinedFunctions/{functionId}", ["200"], { id: S, code: S }],
  CreateUserDefinedFunction: ["put", "/app/userDefinedFunctions/{functionId}", ["200", "201"], { id: S, code: S }],
  ExecuteUserDefinedFunction: ["post", "/app/userDefinedFunctions/{functionId}:execute", ["200"],
    { result: { returnValue: S }, status: S }],
  GetUserDefinedRole: ["get", "/app/roles", ["200"], [{ roleName: S, roleActions: [S] }]],
  CreateUserDefinedRole: ["put", "/app/roles", ["200"], null],
  UpdateUserDefinedRole: ["patch", "/app/roles", ["200"], null],
  DeleteUserDefinedRole: ["delete", "/app/roles", ["200"], null],
  // The identity service is ledgerd's own route (acl-api.md §3), asked here through the pinned client; the
  // package's getLedgerIdentity helper is checked by ledger.test.mjs.
  GetLedgerIdentity: ["get", "/ledgerIdentity/{ledgerId}", ["200"], { ledgerTlsCertificate: S }],
};

const jtype = (v) => (v === null ? "null" : Array.isArray(v) ? "array" : typeof v);

function assertShape(example, got, where) {
  if (example === ANY) return;
  assert.equal(jtype(got), jtype(example), `${where}: ${JSON.stringify(got)?.slice(0, 200)}`);
  if (jtype(example) === "object" && Object.keys(example).join() === "*") {
    assert.ok(Object.keys(got).length > 0, `${where}: empty map`);
    for (const [k, v] of Object.entries(got)) assertShape(example["*"], v, `${where}.${k}`);
  } else if (jtype(example) === "object") {
    for (const [k, v] of Object.entries(example)) {
      assert.ok(k in got, `${where}: no field ${k} in ${JSON.stringify(got).slice(0, 200)}`);
      assertShape(v, got[k], `${where}.${k}`);
    }
  } else if (Array.isArray(example) && example.length > 0) {
    got.forEach((item, i) => assertShape(example[0], item, `${where}[${i}]`));
  }
}

function assertErrorBody(res) {
  const status = Number(res.status);
  if (status >= 400 && status < 500) {
    assert.equal(typeof res.body?.error?.code, "string", JSON.stringify(res.body));
    assert.equal(typeof res.body?.error?.message, "string", JSON.stringify(res.body));
  }
}

describe(`every 2024-12-09-preview operation through the JS client's pathUnchecked`, () => {
  let ledger;
  let client;
  let certDir;
  const checked = new Set();

  // Sends one operation; `expect` overrides the declared statuses for a documented refusal (not counted).
  async function op(id, { args = [], body, query, contentType = "application/json", expect } = {}) {
    const [method, route, statuses, example] = OPERATIONS[id];
    const opts = { queryParameters: query };
    if (body !== undefined) Object.assign(opts, { contentType, body });
    const res = await client.pathUnchecked(route, ...args)[method](opts);
    assertErrorBody(res);
    assert.ok((expect ?? statuses).includes(res.status), `${id}: ${res.status} ${JSON.stringify(res.body)}`);
    if (!expect) {
      if (example) assertShape(example, res.body, id);
      checked.add(id);
    }
    return res;
  }

  before(async () => {
    ledger = await Ledgerd.start();
    client = ConfidentialLedger(ledger.endpoint, ledger.serviceCert, {
      tlsOptions: { cert: ledger.admin.cert, key: ledger.admin.key }, apiVersion: API_VERSION,
    });
    certDir = await mkdtemp(path.join(os.tmpdir(), "conformance-js-sweep-"));
  }, { timeout: 360_000 });

  after(async () => {
    if (ledger) await ledger.stop();
    if (certDir) await rm(certDir, { recursive: true, force: true });
    await removeBuiltBinaries();
  });

  it("the operation list is the swagger's", () => {
    assert.equal(new Set(SWAGGER_OPERATION_IDS).size, 33);
    assert.deepEqual(Object.keys(OPERATIONS).sort(), [...SWAGGER_OPERATION_IDS].sort());
  });

  it("answers every operation as its example", async () => {
    await op("GetConstitution");
    await op("ListConsortiumMembers");
    await op("GetEnclaveQuotes");
    await op("GetLedgerIdentity", { args: ["contoso-ledger-12345"] });

    for (const fn of ["myFunction", "myFunction1", "myFunction2"]) {
      await op("CreateUserDefinedFunction", { args: [fn], body: { code: CODE }, expect: ["201"] });
    }
    await op("CreateUserDefinedFunction", { args: ["myFunction"], body: { id: "myFunction", code: CODE } });
    await op("GetUserDefinedFunction", { args: ["myFunction"] });
    await op("ListUserDefinedFunctions");
    await op("ExecuteUserDefinedFunction", { args: ["myFunction"],
      body: { arguments: ["arg1", "arg2"], exportedFunctionName: "main", runtimeOptions: EXAMPLE_OPTIONS } });
    const hook = (functionId, args) => [{ functionId,
      properties: { arguments: args, exportedFunctionName: "main", runtimeOptions: EXAMPLE_OPTIONS } }];
    const created = await op("CreateLedgerEntry", { body: { contents: "New ledger entry contents.",
      preOperationHooks: hook("myFunction1", ["arg1", "arg2"]), postOperationHooks: hook("myFunction2", ["arg3", "arg4"]) } });
    const txid = created.headers["x-ms-ccf-transaction-id"];
    assert.match(txid, /^\d+\.\d+$/);
    const until = (id, args, ok, query) => pollUntil(async () => {
      const res = await op(id, { args, query });
      return ok(res.body) ? res : undefined;
    }, { timeoutMs: 30_000, what: id });
    await until("GetTransactionStatus", [txid], (b) => b.state === "Committed");
    await until("GetLedgerEntry", [txid], (b) => b.state === "Ready");
    await until("GetReceipt", [txid], (b) => b.state === "Ready");
    await op("GetCurrentLedgerEntry");
    await until("ListLedgerEntries", [], (b) => b.state === "Ready", { fromTransactionId: txid, toTransactionId: txid });
    await op("ListCollections");

    // The examples' role names are built-in ones (case-insensitive): ledgerd refuses to redefine them (400,
    // acl-api.md §5) and sends the requests again with user-defined names.
    await op("CreateUserDefinedRole", { body: [{ roleName: "administrator", roleActions: ACTIONS },
      { roleName: "contributor", roleActions: ACTIONS }], expect: ["400"] });
    await op("GetUserDefinedRole", { query: { roleName: "administrator" } });
    await op("CreateUserDefinedRole", { body: [{ roleName: "Writer", roleActions: ACTIONS },
      { roleName: "appcontributor", roleActions: ACTIONS }] });
    await op("UpdateUserDefinedRole", { body: [{ roleName: "appcontributor", roleActions: ACTIONS.slice(0, 1) }] });
    await op("DeleteUserDefinedRole", { query: { roleName: "appcontributor" } });

    const mp = "application/merge-patch+json";
    await op("CreateOrUpdateLedgerUser", { args: [USER], contentType: mp, body: { assignedRoles: ["Reader", "Writer"] } });
    await op("GetLedgerUser", { args: [USER] });
    await op("ListLedgerUsers");
    await op("CreateOrUpdateUser", { args: [USER], contentType: mp, body: { assignedRole: "Reader" } });
    await op("GetUser", { args: [USER] });
    await op("ListUsers");
    await op("DeleteUser", { args: [USER] });
    await op("CreateOrUpdateLedgerUser", { args: [USER], contentType: mp, body: { assignedRoles: ["Reader"] } });
    await op("DeleteLedgerUser", { args: [USER] });
    await op("GetLedgerUser", { args: [USER], expect: ["404"] });

    // The example bundle names no js_module/js_function: 400 InvalidBundle (acl-api.md §11); then made runnable.
    await op("CreateUserDefinedEndpoint", { expect: ["400"], body: {
      metadata: { endpoints: { "/content": { get: { forwarding_required: "always", authn_policies: [{}] } } } },
      modules: { name: "test.js", module: "TESTJS" } } });
    await op("CreateUserDefinedEndpoint", { body: {
      metadata: { endpoints: { "/content": { get: { forwarding_required: "always", authn_policies: ["user_cert"],
        js_module: "test.js", js_function: "content", mode: "readonly" } } } },
      modules: [{ name: "test.js", module: "export function content() { return { body: 'TESTJS' }; }" }] } });
    await op("GetUserDefinedEndpoint");
    await op("GetUserDefinedEndpointsModule", { query: { module_name: "test.js" } });
    await op("GetRuntimeOptions");
    await op("UpdateRuntimeOptions", { body: { log_exception_details: false, max_execution_time_ms: 1200 } });

    await op("DeleteUserDefinedFunction", { args: ["myFunction"] });
    await op("GetUserDefinedFunction", { args: ["myFunction"], expect: ["404"] });

    assert.deepEqual(SWAGGER_OPERATION_IDS.filter((id) => !checked.has(id)), []);
  });

  it("a Reader's writes are 403 with ACL error bodies", async () => {
    const c = await makeClientCert(certDir, "sweep-reader");
    await op("CreateOrUpdateUser", { args: [c.userId], contentType: "application/merge-patch+json",
      body: { assignedRole: "Reader" } });
    const reader = ConfidentialLedger(ledger.endpoint, ledger.serviceCert, {
      tlsOptions: { cert: c.cert, key: c.key }, apiVersion: API_VERSION,
    });
    for (const [route, method, body] of [
      ["/app/transactions", "post", { contents: "x" }],
      ["/app/userDefinedFunctions/r", "put", { code: CODE }],
      ["/app/roles", "put", [{ roleName: "r", roleActions: ACTIONS }]],
      ["/app/userDefinedEndpoints/runtimeOptions", "patch", { max_execution_time_ms: 10 }],
    ]) {
      const res = await reader.pathUnchecked(route)[method]({ contentType: "application/json", body });
      assert.equal(res.status, "403", `${method} ${route}: ${JSON.stringify(res.body)}`);
      assertErrorBody(res);
    }
  });
});
