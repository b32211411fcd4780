import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifySignedRequest } from "../../src/proxy/identity-signature";
import { freePort } from "./free-port";

const root = new URL("../..", import.meta.url).pathname;

interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** One HTTP/1.1 request written by hand on a TCP socket, as a client would send it; the raw answer. */
function rawRequest(port: number, head: string[], body: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let answer = "";
    socket.on("data", (d) => (answer += d));
    socket.on("error", reject);
    socket.on("close", () => resolve(answer));
    socket.write(`${head.join("\r\n")}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  });
}

/**
 * What an origin receives over real HTTP, with the gateway under `wrangler dev` (the
 * runtime as `npm start` runs it). In-process tests cannot show this: there the Worker
 * sees the `Connection` field, while behind the runtime's own front end it does not.
 */
describe("origin request headers over a real socket", () => {
  let gateway: ChildProcess;
  let origin: Server;
  let port = 0;
  let log = "";
  const received: Received[] = [];
  const signingSecret = randomBytes(32).toString("hex");
  const work = mkdtempSync(join(tmpdir(), "zgate-socket-"));

  beforeAll(async () => {
    // The three origins: one server that records what reaches it.
    origin = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        received.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks) });
        res.writeHead(200, { "Content-Type": "application/json" });
        res.end('{"status":"ok","data":{"sent":true}}');
      });
    });
    await new Promise<void>((r) => origin.listen(0, "127.0.0.1", r));
    const originUrl = `http://127.0.0.1:${(origin.address() as { port: number }).port}`;

    port = await freePort();
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
        "",
      ].join("\n"),
      { mode: 0o600 },
    );
    gateway = spawn(
      join(root, "node_modules", ".bin", "wrangler"),
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
      { cwd: root, env: { ...process.env, WRANGLER_SEND_METRICS: "false" }, stdio: ["ignore", "pipe", "pipe"], detached: true },
    );
    gateway.stdout!.on("data", (d) => (log += d));
    gateway.stderr!.on("data", (d) => (log += d));
    const deadline = Date.now() + 100_000;
    for (;;) {
      const up = await fetch(`http://127.0.0.1:${port}/zsky/v1/usage`).then(
        (r) => r.status === 401,
        () => false,
      );
      if (up) break;
      if (Date.now() > deadline || gateway.exitCode !== null) throw new Error(`wrangler dev did not come up:\n${log}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  });

  afterAll(async () => {
    if (gateway?.pid) process.kill(-gateway.pid, "SIGTERM");
    origin?.closeAllConnections();
    await new Promise((r) => origin?.close(r));
    rmSync(work, { recursive: true, force: true });
  });

  it("a field the client named in Connection, and a caller's forwarding or override field, never reach the origin", async () => {
    const body = '{"email":"demo@zakgt.test"}';
    const answer = await rawRequest(
      port,
      [
        "POST /zakgt/api/v1/auth/forgot-password HTTP/1.1",
        `Host: 127.0.0.1:${port}`,
        "Content-Type: application/json",
        "Connection: close, X-Secret-Hop",
        "X-Secret-Hop: v",
        "X-Forwarded-Host: evil.example",
        "X-HTTP-Method-Override: DELETE",
      ],
      body,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    const seen = received.at(-1)!;
    expect(seen.url).toBe("/api/v1/auth/forgot-password");
    expect(seen.headers["x-secret-hop"]).toBeUndefined();
    expect(seen.headers["x-http-method-override"]).toBeUndefined();
    expect(seen.headers["x-forwarded-host"]).toBe(`127.0.0.1:${port}`);

    // What the origin got is signed end to end: its body's digest, its path, zgate's own X-Forwarded-*.
    const headers = new Headers(Object.entries(seen.headers).map(([k, v]) => [k, String(v)] as [string, string]));
    const signed = await verifySignedRequest(
      [signingSecret],
      { method: seen.method, url: `http://origin${seen.url}`, headers },
      new Uint8Array(seen.body),
    );
    expect(signed).toMatchObject({
      pathAndQuery: "/api/v1/auth/forgot-password",
      forwardedHost: `127.0.0.1:${port}`,
      forwardedPrefix: "/zakgt",
    });
  });

  it("a GET with a body is refused with 400 in the product's envelope (fetch could never forward it)", async () => {
    const path = "/zsky/v1/results/job_x?expires=9999999999&kid=r1&sig=00";
    const head = [`GET ${path} HTTP/1.1`, `Host: 127.0.0.1:${port}`, "Connection: close"];
    const withBody = await rawRequest(port, head, "surprise");
    expect(withBody).toMatch(/^HTTP\/1\.1 400 /);
    expect(withBody).toContain('{"error":"A GET request must not have a body"}');
    // The same request without a body reaches the signature check.
    expect(await rawRequest(port, head, "")).toMatch(/^HTTP\/1\.1 403 /);
  });
});
