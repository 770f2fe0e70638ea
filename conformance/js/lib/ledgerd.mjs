// Builds and runs a real ledgerd process for the conformance tests.
//
// Binaries: env LEDGERD_BIN / LEDGERCTL_BIN, otherwise `go build` from the
// repository root (two levels above conformance/js) into a temp directory.
// Synchronisation is by polling with deadlines (the data directory for
// service.pem, then GET /healthz over TLS pinned to service.pem), never by a
// bare sleep.

import { execFile, spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import https from "node:https";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import { splitPem } from "./certs.mjs";
import { pollUntil } from "./poll.mjs";

const execFileP = promisify(execFile);

export const suiteDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const repoRoot = path.resolve(suiteDir, "..", "..");

const built = new Map();
const buildDirs = [];

/** Removes the temp directories of binaries built by binary(). */
export async function removeBuiltBinaries() {
  built.clear();
  await Promise.all(buildDirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
}

/**
 * Returns the path of a ledgerd/ledgerctl binary: the env override, or a
 * fresh `go build` of ./cmd/<name> (once per process).
 */
export async function binary(name, { timeoutMs = 300_000 } = {}) {
  const envName = `${name.toUpperCase()}_BIN`;
  if (process.env[envName]) return process.env[envName];
  if (!built.has(name)) {
    built.set(
      name,
      (async () => {
        const dir = await mkdtemp(path.join(os.tmpdir(), `conformance-js-bin-${name}-`));
        const out = path.join(dir, name);
        buildDirs.push(dir);
        try {
          await execFileP("go", ["build", "-o", out, `./cmd/${name}`], {
            cwd: repoRoot,
            timeout: timeoutMs,
            maxBuffer: 16 << 20,
          });
        } catch (err) {
          throw new Error(`go build ./cmd/${name} failed:\n${err.stderr || err.message}`);
        }
        return out;
      })(),
    );
  }
  return built.get(name);
}

/** Asks the kernel for a free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** One HTTPS GET with Node's own https module (for health checks). */
export function httpsGet(url, tls = {}, timeoutMs = 2000) {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ...tls, timeout: timeoutMs, agent: false }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () =>
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }),
      );
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on("error", reject);
  });
}

function tail(file, n = 40) {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-n).join("\n");
  } catch {
    return "(no log)";
  }
}

/**
 * A running ledgerd. Fields: endpoint, port, dataDir, serviceCert (PEM),
 * admin {cert, key}, logFile. stop() kills it and removes the temp dir.
 */
export class Ledgerd {
  static async start({ extraArgs = [], startTimeoutMs = 30_000, attempts = 3 } = {}) {
    const bin = await binary("ledgerd");
    let lastErr;
    for (let i = 0; i < attempts; i++) {
      const l = new Ledgerd();
      try {
        await l.#start(bin, extraArgs, startTimeoutMs);
        return l;
      } catch (err) {
        lastErr = err;
        const died = l.exited; // e.g. the free port was taken in between
        await l.stop();
        if (!died) break;
      }
    }
    throw lastErr;
  }

  async #start(bin, extraArgs, startTimeoutMs) {
    this.tmp = await mkdtemp(path.join(os.tmpdir(), "conformance-js-ledgerd-"));
    this.dataDir = path.join(this.tmp, "data");
    this.logFile = path.join(this.tmp, "ledgerd.log");
    this.port = await freePort();
    this.endpoint = `https://127.0.0.1:${this.port}`;
    this.args = [
      "--data", this.dataDir,
      "--listen", `127.0.0.1:${this.port}`,
      "--signature-interval", "5ms",
      ...extraArgs,
    ];
    const fd = openSync(this.logFile, "a");
    this.proc = spawn(bin, this.args, { stdio: ["ignore", fd, fd] });
    closeSync(fd);
    this.exited = false;
    this.exitInfo = null;
    this.exitPromise = new Promise((resolve) => {
      this.proc.on("exit", (code, signal) => {
        this.exited = true;
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      });
      this.proc.on("error", (err) => {
        this.exited = true;
        this.exitInfo = { error: err };
        resolve(this.exitInfo);
      });
    });
    this.onExit = () => {
      if (!this.exited) this.proc.kill("SIGKILL");
    };
    process.on("exit", this.onExit);

    const deadline = Date.now() + startTimeoutMs;
    const servicePem = path.join(this.dataDir, "service.pem");
    try {
      await pollUntil(
        async () => {
          this.#assertAlive();
          if (!existsSync(servicePem)) return undefined;
          const ca = readFileSync(servicePem, "utf8");
          if (!ca.includes("-----END CERTIFICATE-----")) return undefined;
          try {
            const res = await httpsGet(`${this.endpoint}/healthz`, { ca });
            return res.status === 200 ? true : undefined;
          } catch {
            return undefined;
          }
        },
        { deadline, intervalMs: 50, what: `ledgerd /healthz on ${this.endpoint}` },
      );
    } catch (err) {
      throw new Error(`${err.message}\nledgerd ${this.args.join(" ")}\n--- log tail ---\n${tail(this.logFile)}`);
    }
    this.serviceCert = readFileSync(servicePem, "utf8");
    this.admin = splitPem(readFileSync(path.join(this.dataDir, "admin.pem"), "utf8"));
  }

  #assertAlive() {
    if (this.exited) {
      throw new Error(`ledgerd exited early: ${JSON.stringify(this.exitInfo)}`);
    }
  }

  logTail(n) {
    return tail(this.logFile, n);
  }

  async stop() {
    if (this.onExit) process.off("exit", this.onExit);
    if (this.proc && !this.exited) {
      this.proc.kill("SIGTERM");
      const t = setTimeout(() => {
        if (!this.exited) this.proc.kill("SIGKILL");
      }, 5000);
      await this.exitPromise;
      clearTimeout(t);
    }
    if (this.tmp && !process.env.KEEP_LEDGERD_DATA) {
      await rm(this.tmp, { recursive: true, force: true });
    }
  }
}
