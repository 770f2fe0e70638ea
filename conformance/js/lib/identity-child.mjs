// Runs the client package's getLedgerIdentity in a process of its own, so
// that the service certificate can be trusted the way a Node user would for
// a private identity endpoint: NODE_EXTRA_CA_CERTS (read only at start-up;
// getLedgerIdentity takes no TLS options).
//
// usage: NODE_EXTRA_CA_CERTS=service.pem node identity-child.mjs LEDGER_ID BASE_URL
// prints the helper's result as JSON on stdout.

import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { getLedgerIdentity } = require("@azure-rest/confidential-ledger");

const [ledgerId, baseUrl] = process.argv.slice(2);
try {
  const identity = await getLedgerIdentity(ledgerId, baseUrl);
  process.stdout.write(JSON.stringify(identity));
} catch (err) {
  process.stderr.write(`getLedgerIdentity failed: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
}
