// Conformance: user-defined endpoints (issue 12) through the real
// @azure-rest/confidential-ledger client with pathUnchecked (its 1.0.x
// typings do not know the routes) and apiVersion 2024-12-09-preview: an
// Administrator installs a bundle written to the documented shape (ACL's
// "UDE Sample bundle" plus an endpoint that checks a role through ACL's
// role table, as ACL's banking sample does), its endpoints are called,
// a Reader cannot install, and the role check refuses a Reader. See
// ../README.md.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import { makeClientCert } from "../lib/certs.mjs";
import { ConfidentialLedger } from "../lib/client.mjs";
import { Ledgerd, removeBuiltBinaries } from "../lib/ledgerd.mjs";

const API_VERSION = "2024-12-09-preview";

const APP = `
const roles = "public:confidentialledger.roles.user_roles_mapping";
function callerId(request) {
  return ccf.pemToId(request.caller.cert).toUpperCase().match(/.{2}/g).join(":");
}
export function write(request) {
  const r = ccf.kv[roles].get(ccf.strToBuf(JSON.stringify(callerId(request))));
  if (r === undefined || !JSON.parse(ccf.bufToStr(r)).includes("Administrator")) {
    return { statusCode: 403, body: { error: { code: "Forbidden", message: "Administrators only" } } };
  }
  ccf.kv["public:js.notes"].set(ccf.strToBuf(request.params.id), request.body.arrayBuffer());
  return { body: { id: request.params.id } };
}
export function read(request) {
  const v = ccf.kv["public:js.notes"].get(ccf.strToBuf(request.params.id));
  return v === undefined ? { statusCode: 404 } : { body: JSON.parse(ccf.bufToStr(v)) };
}
`;

const BUNDLE = {
  metadata: {
    endpoints: {
      "/content": { get: { js_module: "test.js", js_function: "content", forwarding_required: "never",
        redirection_strategy: "none", authn_policies: ["no_auth"], mode: "readonly", openapi: {} } },
      "/notes/{id}": {
        post: { js_module: "app.js", js_function: "write", forwarding_required: "always", authn_policies: ["user_cert"], mode: "readwrite" },
        get: { js_module: "app.js", js_function: "read", forwarding_required: "sometimes", authn_policies: ["user_cert"], mode: "readonly" },
      },
    },
  },
  modules: [
    { name: "test.js", module: 'import { foo } from "./baz/baz.js";\n\nexport function content(request) {\n  return {\n    statusCode: 200,\n    body: { payload: foo() },\n  };\n}' },
    { name: "baz/baz.js", module: 'export function foo() {\n  return "Test content";\n}' },
    { name: "app.js", module: APP },
  ],
};

describe(`user-defined endpoints with the JS client's pathUnchecked (api-version ${API_VERSION})`, () => {
  let ledger;
  let admin;
  let reader;
  let certDir;

  before(async () => {
    ledger = await Ledgerd.start();
    const opts = (tls) => ({ tlsOptions: tls, apiVersion: API_VERSION });
    admin = ConfidentialLedger(ledger.endpoint, ledger.serviceCert, opts({ cert: ledger.admin.cert, key: ledger.admin.key }));
    certDir = await mkdtemp(path.join(os.tmpdir(), "conformance-js-ude-"));
    const r = await makeClientCert(certDir, "ude-reader");
    const made = await admin.pathUnchecked("/app/users/{userId}", r.userId).patch({
      contentType: "application/merge-patch+json", body: { assignedRole: "Reader" },
    });
    assert.equal(made.status, "200", JSON.stringify(made.body));
    reader = ConfidentialLedger(ledger.endpoint, ledger.serviceCert, opts({ cert: r.cert, key: r.key }));
  }, { timeout: 360_000 });

  after(async () => {
    if (ledger) await ledger.stop();
    if (certDir) await rm(certDir, { recursive: true, force: true });
    await removeBuiltBinaries();
  });

  it("a Reader cannot install; an Administrator installs (201) and reads the bundle and a module back", async () => {
    const refused = await reader.pathUnchecked("/app/userDefinedEndpoints").put({ contentType: "application/json", body: BUNDLE });
    assert.equal(refused.status, "403", JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, "NotAllowed");
    const put = await admin.pathUnchecked("/app/userDefinedEndpoints").put({ contentType: "application/json", body: BUNDLE });
    assert.equal(put.status, "201", JSON.stringify(put.body));
    const got = await reader.pathUnchecked("/app/userDefinedEndpoints").get();
    assert.equal(got.status, "200");
    assert.deepEqual(Object.keys(got.body.metadata.endpoints).sort(), ["/content", "/notes/{id}"]);
    const mod = await reader.pathUnchecked("/app/userDefinedEndpoints/modules").get({ queryParameters: { module_name: "baz/baz.js" } });
    assert.equal(mod.status, "200");
    assert.equal(mod.body.name, "baz/baz.js");
    const opts = await reader.pathUnchecked("/app/userDefinedEndpoints/runtimeOptions").get();
    assert.equal(opts.status, "200");
    assert.equal(opts.body.max_execution_time_ms, 1000);
  });

  it("serves the bundle: ACL's sample, a readwrite POST with a body seen by a readonly GET, a role check", async () => {
    const content = await reader.pathUnchecked("/app/content").get();
    assert.equal(content.status, "200");
    assert.deepEqual(content.body, { payload: "Test content" });

    const post = await admin.pathUnchecked("/app/notes/{id}", "n1").post({ contentType: "application/json", body: { text: "hello" } });
    assert.equal(post.status, "200", JSON.stringify(post.body));
    assert.deepEqual(post.body, { id: "n1" });
    assert.match(post.headers["x-ms-ccf-transaction-id"], /^\d+\.\d+$/);
    const read = await reader.pathUnchecked("/app/notes/{id}", "n1").get();
    assert.equal(read.status, "200");
    assert.deepEqual(read.body, { text: "hello" });

    // The endpoint requiring the Administrator role refuses a Reader, and writes nothing.
    const denied = await reader.pathUnchecked("/app/notes/{id}", "n2").post({ contentType: "application/json", body: { text: "no" } });
    assert.equal(denied.status, "403", JSON.stringify(denied.body));
    const missing = await reader.pathUnchecked("/app/notes/{id}", "n2").get();
    assert.equal(missing.status, "404");
  });

  it("refuses a bad bundle with 400 InvalidBundle", async () => {
    const bad = structuredClone(BUNDLE);
    bad.metadata.endpoints["/content"].get.js_function = "missing";
    const res = await admin.pathUnchecked("/app/userDefinedEndpoints").put({ contentType: "application/json", body: bad });
    assert.equal(res.status, "400");
    assert.equal(res.body.error.code, "InvalidBundle");
    assert.match(res.body.error.message, /missing/);
  });

  it("gives bundles CCF's ccf.crypto: a digest's known answer, a signature that verifies until a byte flips", async () => {
    const crypto = structuredClone(BUNDLE);
    crypto.metadata.endpoints["/crypto"] = { get: { js_module: "crypto.js", js_function: "run", forwarding_required: "never",
      authn_policies: ["user_cert"], mode: "readonly" } };
    crypto.modules.push({ name: "crypto.js", module: `
const hex = (b) => Array.from(new Uint8Array(b)).map((x) => x.toString(16).padStart(2, "0")).join("");
export function run(request) {
  const data = ccf.strToBuf("data");
  const kp = ccf.crypto.generateEcdsaKeyPair("secp384r1");
  const alg = { name: "ECDSA", hash: "SHA-256" };
  const sig = ccf.crypto.sign(alg, kp.privateKey, data);
  const flipped = new Uint8Array(sig.slice(0));
  flipped[3] ^= 0x80;
  return { body: { abc: hex(ccf.crypto.digest("SHA-256", ccf.strToBuf("abc"))), sigBytes: sig.byteLength,
    ok: ccf.crypto.verifySignature(alg, kp.publicKey, sig, data),
    flipped: ccf.crypto.verifySignature(alg, kp.publicKey, flipped.buffer, data) } };
}` });
    const put = await admin.pathUnchecked("/app/userDefinedEndpoints").put({ contentType: "application/json", body: crypto });
    assert.equal(put.status, "201", JSON.stringify(put.body));
    const res = await reader.pathUnchecked("/app/crypto").get();
    assert.equal(res.status, "200", JSON.stringify(res.body));
    assert.deepEqual(res.body, { abc: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", sigBytes: 96,
      ok: true, flipped: false });
  });
});
