import { randomBytes } from "node:crypto";
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifySignedRequest } from "../../src/forward/identity-signature";
import { startDevGateway, startRecordingOrigin } from "./dev-gateway";

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
  const signingSecret = randomBytes(32).toString("hex");
  let origin: Awaited<ReturnType<typeof startRecordingOrigin>>;
  let gateway: Awaited<ReturnType<typeof startDevGateway>>;
  let port = 0;

  beforeAll(async () => {
    // The three origins: one server that records what reaches it.
    origin = await startRecordingOrigin();
    gateway = await startDevGateway(origin.url, signingSecret);
    port = gateway.port;
  });

  afterAll(async () => {
    await gateway?.stop();
    await origin?.close();
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
    const seen = origin.received.at(-1)!;
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
