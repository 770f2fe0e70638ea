// Certificate helpers: split a combined PEM, make self-signed client
// certificates with openssl (Node 20 cannot create X.509), compute user ids.

import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";

const execFileP = promisify(execFile);

const CERT_RE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/;
const KEY_RE = /-----BEGIN ((?:EC |RSA |ENCRYPTED )?PRIVATE KEY)-----[\s\S]+?-----END \1-----\n?/;

/** Splits a PEM holding a certificate and a private key into {cert, key}. */
export function splitPem(pem) {
  const cert = pem.match(CERT_RE);
  const key = pem.match(KEY_RE);
  if (!cert || !key) {
    throw new Error(`expected a CERTIFICATE and a PRIVATE KEY block, found: ${pem.match(/-----BEGIN [A-Z ]+-----/g)}`);
  }
  return { cert: cert[0], key: key[0] };
}

/**
 * User id of a certificate user as ACL defines it: SHA-256 fingerprint of the
 * DER certificate, upper-case hex, colon-separated.
 */
export function userIdOf(certPem) {
  return new X509Certificate(certPem).fingerprint256;
}

/**
 * Makes a self-signed client certificate in dir with openssl.
 * kind: "ec" (P-256) or "rsa" (2048). Returns {cert, key, userId}.
 */
export async function makeClientCert(dir, name, kind = "ec") {
  const keyFile = path.join(dir, `${name}.key.pem`);
  const certFile = path.join(dir, `${name}.cert.pem`);
  const keyArgs =
    kind === "rsa"
      ? ["-newkey", "rsa:2048"]
      : ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];
  await execFileP(
    "openssl",
    ["req", "-x509", ...keyArgs, "-nodes", "-keyout", keyFile, "-out", certFile,
      "-days", "2", "-subj", `/CN=conformance-js-${name}`],
    { timeout: 30_000 },
  );
  const cert = await readFile(certFile, "utf8");
  const key = await readFile(keyFile, "utf8");
  return { cert, key, userId: userIdOf(cert) };
}
