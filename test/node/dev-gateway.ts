import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort } from "./free-port";

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

/** The admin token of every gateway startDevGateway starts. */
export const DEV_ADMIN_TOKEN = `test_admin_${randomBytes(16).toString("hex")}`;

/**
 * The gateway under `wrangler dev` (the runtime as `npm start` runs it) with every origin
 * at `originUrl`, signing with `signingSecret`, D1 migrated. Secrets go through an env
 * file, as in scripts/start.mjs; state lives in a directory of its own, removed by `stop`.
 */
export async function startDevGateway(originUrl: string, signingSecret: string): Promise<{ port: number; stop(): Promise<void> }> {
  const work = mkdtempSync(join(tmpdir(), "zgate-dev-"));
  const wrangler = join(root, "node_modules", ".bin", "wrangler");
  const quiet = { ...process.env, WRANGLER_SEND_METRICS: "false" };
  await promisify(execFile)(wrangler, ["d1", "migrations", "apply", "DB", "--local", "--persist-to", join(work, "state")], {
    cwd: root,
    env: quiet,
    timeout: 90_000,
  });
  const envFile = join(work, "dev.env");
  writeFileSync(
    envFile,
    [
      `ORIGIN_ZAKGT=${originUrl}`,
      `ORIGIN_ZSKY=${originUrl}`,
      `ORIGIN_ZAPPWAY=${originUrl}`,
      `ZAKGT_JWKS_URL=${originUrl}/.well-known/jwks.json`,
      `ORIGIN_SIGNING_SECRET=${signingSecret}`,
      `RESULT_SIGNING_KEYS='{"r1":"${randomBytes(32).toString("hex")}"}'`,
      "RESULT_SIGNING_KEY_ID=r1",
      `ADMIN_TOKEN=${DEV_ADMIN_TOKEN}`,
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  const port = await freePort();
  const gateway = spawn(
    wrangler,
    [
      "dev",
      "--ip",
      "127.0.0.1",
      "--port",
      String(port),
      "--inspector-port",
      String(await freePort()),
      "--env-file",
      envFile,
      "--persist-to",
      join(work, "state"),
      "--show-interactive-dev-session=false",
    ],
    { cwd: root, env: quiet, stdio: ["ignore", "pipe", "pipe"], detached: true },
  );
  let log = "";
  gateway.stdout!.on("data", (d) => (log += d));
  gateway.stderr!.on("data", (d) => (log += d));
  const stop = async () => {
    if (gateway.pid && gateway.exitCode === null) {
      const exited = new Promise((r) => gateway.once("exit", r));
      process.kill(-gateway.pid, "SIGTERM");
      await exited;
    }
    rmSync(work, { recursive: true, force: true });
  };
  const deadline = Date.now() + 100_000;
  for (;;) {
    const up = await fetch(`http://127.0.0.1:${port}/zsky/v1/usage`).then(
      (r) => r.status === 401,
      () => false,
    );
    if (up) return { port, stop };
    if (Date.now() > deadline || gateway.exitCode !== null) {
      await stop();
      throw new Error(`wrangler dev did not come up:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
