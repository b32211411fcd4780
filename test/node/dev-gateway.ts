import { execFile, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { inject } from "vitest";
import { freePort } from "../../bench/free-port.mjs";
import { newAssertionKey } from "../../src/forward/assertion-keys";

const root = new URL("../..", import.meta.url).pathname;

/** A request exactly as an origin received it over HTTP. */
export interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** One loopback server standing in for the three origins: it records every request and answers 200. */
export async function startRecordingOrigin(): Promise<{ url: string; received: Received[]; close(): Promise<void> }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      received.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end('{"status":"ok","data":{"sent":true}}');
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const WRANGLER = join(root, "node_modules", ".bin", "wrangler");
const QUIET = { ...process.env, WRANGLER_SEND_METRICS: "false" };
const RUNTIME = join(root, "test", "node", "gateway-runtime.mjs");

/**
 * A new local state directory (wrangler's `--persist-to`) with the D1 migrations applied,
 * by wrangler's own command. The node project's global setup makes one for the run
 * (test/node/gateway-setup.ts) and each new gateway starts on a copy of it: applying them
 * runs a wrangler and a workerd of their own, some 4.5 s of CPU a gateway, in a suite
 * whose length is its CPU.
 */
export async function makeMigratedState(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "zgate-migrated-"));
  await promisify(execFile)(WRANGLER, ["d1", "migrations", "apply", "DB", "--local", "--persist-to", dir], {
    cwd: root,
    env: QUIET,
    timeout: 90_000,
  });
  return dir;
}

/** The run's migrated state directory (makeMigratedState), from the global setup's broker. */
async function runMigratedState(): Promise<string> {
  const answer = await fetch(`${inject("devGatewayBroker")}/migrated-state`, { method: "POST" });
  if (!answer.ok) throw new Error(`no migrated state directory: ${await answer.text()}`);
  return ((await answer.json()) as { dir: string }).dir;
}

/** The run's one build of zgate for gateway-runtime.mjs (its directory), from the global setup's broker: every gateway of the run serves it. */
async function runWorker(): Promise<string> {
  const answer = await fetch(`${inject("devGatewayBroker")}/worker`, { method: "POST" });
  if (!answer.ok) throw new Error(`no worker build: ${await answer.text()}`);
  return ((await answer.json()) as { dir: string }).dir;
}

/** A gateway startDevGateway started. */
export interface DevGateway {
  port: number;
  /** `http://127.0.0.1:<port>` */
  base: string;
  adminToken: string;
  /** The process group of the gateway's process and its runtime (workerd). */
  group: number;
  /** What the gateway has printed so far (the Worker's console among it). */
  log(): string;
  stop(): Promise<void>;
}

/**
 * The gateway in workerd as wrangler dev configures it (test/node/gateway-runtime.mjs:
 * wrangler.toml's bindings and development vars, without wrangler's proxy in front), with
 * every origin at `originUrl`, signing its assertions with `assertionKeys`
 * (ORIGIN_ASSERTION_KEYS), D1 migrated, with an admin token of its own. Its local data lives
 * in a directory of its own, removed by `stop`; or in `state`, kept: a start on a `state`
 * started before is a restart, with the same data, settings, admin token and keys.
 * `settings` are more of the Worker's settings (vars). `worker` (the build) and `migrated`:
 * the run's (from the global setup's broker) unless given.
 */
export async function startDevGateway(
  originUrl: string,
  assertionKeys: Record<string, string>,
  {
    state,
    settings = {},
    migrated,
    worker,
  }: { state?: string; settings?: Record<string, string>; migrated?: string; worker?: string } = {},
): Promise<DevGateway> {
  const work = state ?? mkdtempSync(join(tmpdir(), "zgate-dev-"));
  const settingsFile = join(work, "settings.json");
  if (!existsSync(settingsFile)) {
    cpSync(migrated ?? (await runMigratedState()), join(work, "state"), { recursive: true });
    const all: Record<string, string> = {
      ORIGIN_ZAKGT: originUrl,
      ORIGIN_ZSKY: originUrl,
      ORIGIN_ZAPPWAY: originUrl,
      ZAKGT_JWKS_URL: `${originUrl}/.well-known/jwks.json`,
      ORIGIN_ASSERTION_KEYS: JSON.stringify(assertionKeys),
      RESULT_SIGNING_KEYS: JSON.stringify({ r1: randomBytes(32).toString("hex") }),
      RESULT_SIGNING_KEY_ID: "r1",
      ADMIN_TOKEN: `test_admin_${randomBytes(16).toString("hex")}`,
      ...settings,
    };
    writeFileSync(settingsFile, JSON.stringify(all), { mode: 0o600 });
  }
  const { ADMIN_TOKEN: adminToken } = JSON.parse(readFileSync(settingsFile, "utf8")) as { ADMIN_TOKEN: string };
  const port = await freePort();
  const gateway = spawn(process.execPath, [RUNTIME, worker ?? (await runWorker()), join(work, "state"), String(port), settingsFile], {
    cwd: root,
    env: QUIET,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let log = "";
  gateway.stdout!.on("data", (d) => (log += d));
  gateway.stderr!.on("data", (d) => (log += d));
  const stop = async () => {
    if (gateway.pid && gateway.exitCode === null) {
      const exited = new Promise((r) => gateway.once("exit", r));
      // The whole group: a runtime whose gateway process was killed is left behind otherwise.
      process.kill(-gateway.pid, "SIGTERM");
      // A stop must not hang a test's teardown (Miniflare closing a runtime a test killed).
      const late = setTimeout(() => {
        try {
          process.kill(-gateway.pid!, "SIGKILL");
        } catch {
          // Gone meanwhile.
        }
      }, 10_000);
      await exited;
      clearTimeout(late);
    }
    if (!state) rmSync(work, { recursive: true, force: true });
  };
  const deadline = Date.now() + 100_000;
  while (!log.includes(`ready on http://127.0.0.1:${port}`)) {
    if (Date.now() > deadline || gateway.exitCode !== null) {
      await stop();
      throw new Error(`the gateway did not come up:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { port, base: `http://127.0.0.1:${port}`, adminToken, group: gateway.pid!, log: () => log, stop };
}

/** The runtime's processes (workerd) in a dev gateway's process group: what a test kills. */
export const runtimeOf = (gw: DevGateway): number[] =>
  execFileSync("ps", ["-o", "pid=,comm=", "-g", String(gw.group)], { encoding: "utf8" })
    .split("\n")
    .filter((line) => line.includes("workerd"))
    .map((line) => Number(line.trim().split(/\s+/)[0]));

/**
 * A dev gateway for a test that stops its runtime and starts it again: each `start` is a
 * restart on the same kept state (data, settings, admin token, keys), in front of one
 * recording origin, and stops the gateway it started before, if any (a test's retry finds
 * the one its failed try left running). `close` stops it and removes the state.
 */
export function restartableGateway(settings: Record<string, string> = {}) {
  const state = mkdtempSync(join(tmpdir(), "zgate-kept-"));
  const assertionKeys = { k1: newAssertionKey() };
  let origin: Awaited<ReturnType<typeof startRecordingOrigin>> | undefined;
  let current: DevGateway | undefined;
  return {
    async start(): Promise<DevGateway> {
      origin ??= await startRecordingOrigin();
      await current?.stop();
      current = undefined;
      current = await startDevGateway(origin.url, assertionKeys, { state, settings });
      return current;
    },
    async close(): Promise<void> {
      await current?.stop();
      await origin?.close();
      rmSync(state, { recursive: true, force: true });
    },
  };
}

/**
 * The run's one shared dev gateway (test/node/gateway-setup.ts boots it on the first ask):
 * a startDevGateway in front of a recording origin standing for the three origins, signing
 * with a key of its own (published at `jwksUrl`). `received(id)` is the request the origin received with that
 * X-Request-Id (the caller's, when it sends a well-formed one), exactly as it arrived.
 */
export interface SharedDevGateway {
  port: number;
  base: string;
  adminToken: string;
  /** Where it publishes its assertion keys. */
  jwksUrl: string;
  /** The recording origin's URL: ORIGIN_<ID> of every product. */
  originUrl: string;
  received(requestId: string): Promise<Received>;
  /** What it has printed so far. */
  log(): Promise<string>;
}

export async function sharedDevGateway(): Promise<SharedDevGateway> {
  const broker = inject("devGatewayBroker");
  const answer = await fetch(`${broker}/gateway`, { method: "POST" });
  if (!answer.ok) throw new Error(`the shared dev gateway did not come up: ${await answer.text()}`);
  const { port, adminToken, originUrl } = (await answer.json()) as { port: number; adminToken: string; originUrl: string };
  return {
    port,
    base: `http://127.0.0.1:${port}`,
    adminToken,
    jwksUrl: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    originUrl,
    async received(requestId) {
      const found = await fetch(`${broker}/received/${encodeURIComponent(requestId)}`);
      if (!found.ok) throw new Error(`the origin received no request ${requestId}: ${found.status}`);
      const r = (await found.json()) as Omit<Received, "body"> & { body: string };
      return { ...r, body: Buffer.from(r.body, "base64") };
    },
    async log() {
      return ((await (await fetch(`${broker}/log`)).json()) as { log: string }).log;
    },
  };
}
