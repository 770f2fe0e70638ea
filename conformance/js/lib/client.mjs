// Builds clients of the real @azure-rest/confidential-ledger package.

import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const acl = require("@azure-rest/confidential-ledger");

/** The package's default export, the client factory. */
export const ConfidentialLedger = acl.default;
export const { getLedgerIdentity, isUnexpected, paginate } = acl;

/** Version of the installed client package. */
export const clientVersion = require("@azure-rest/confidential-ledger/package.json").version;

/**
 * A certificate-authenticated client, exactly as the package documents it:
 * ConfidentialLedger(endpoint, ledgerIdentityCertificate, { tlsOptions: { cert, key } }).
 * The returned object has .requests: the URL and method of every request
 * sent, recorded after all of the client's own policies ran.
 */
export function certClient(endpoint, identityCert, { cert, key }) {
  const client = ConfidentialLedger(endpoint, identityCert, { tlsOptions: { cert, key } });
  const requests = [];
  client.pipeline.addPolicy(
    {
      name: "conformanceRecorder",
      sendRequest: (req, next) => {
        requests.push({ method: req.method, url: req.url });
        return next(req);
      },
    },
    { afterPhase: "Retry" },
  );
  client.requests = requests;
  return client;
}

/** Reads a response obtained with .asNodeStream() into {status, headers, text}. */
export async function readStream(res) {
  const chunks = [];
  for await (const c of res.body) chunks.push(c);
  return { status: res.status, headers: res.headers, text: Buffer.concat(chunks).toString("utf8") };
}
