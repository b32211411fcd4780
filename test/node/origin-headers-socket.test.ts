import { randomUUID } from "node:crypto";
import { connect } from "node:net";
import { beforeAll, describe, expect, it } from "vitest";
import { zgateVerifier } from "../../examples/origin-verify/zgate_verify";
import { sharedDevGateway, type SharedDevGateway } from "./dev-gateway";

/**
 * One HTTP/1.1 request written by hand on a TCP socket, as a client would send it; the raw
 * answer, once it is whole (its Content-Length, or its last chunk): the runtime's front end
 * keeps the connection open a while after answering, `Connection: close` or not.
 */
function rawRequest(port: number, head: string[], body: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let answer = "";
    const whole = () => {
      const end = answer.indexOf("\r\n\r\n");
      if (end < 0) return false;
      const length = /^content-length: *(\d+)/im.exec(answer.slice(0, end))?.[1];
      if (length !== undefined) return Buffer.byteLength(answer.slice(end + 4)) >= Number(length);
      return /^transfer-encoding: *chunked/im.test(answer.slice(0, end)) && answer.endsWith("\r\n0\r\n\r\n");
    };
    socket.on("data", (d) => {
      answer += d;
      if (whole()) {
        socket.destroy();
        resolve(answer);
      }
    });
    socket.on("error", reject);
    socket.on("close", () => resolve(answer));
    socket.write(`${head.join("\r\n")}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  });
}

/**
 * What an origin receives over real HTTP, with the gateway in workerd behind its own front
 * end (the run's gateway, test/node/gateway-runtime.mjs). In-process tests cannot show this:
 * there the Worker sees the `Connection` field, while behind the runtime's front end it does not.
 */
describe("origin request headers over a real socket", () => {
  // The run's gateway, in front of one server that records what reaches the three origins.
  let gateway: SharedDevGateway;
  let port = 0;

  beforeAll(async () => {
    gateway = await sharedDevGateway();
    port = gateway.port;
  });

  it("a field the client named in Connection, and a caller's forwarding or override field, never reach the origin", async () => {
    const body = '{"email":"demo@zakgt.test"}';
    const requestId = randomUUID();
    const answer = await rawRequest(
      port,
      [
        "POST /zakgt/api/v1/auth/forgot-password HTTP/1.1",
        `Host: 127.0.0.1:${port}`,
        "Content-Type: application/json",
        `X-Request-Id: ${requestId}`,
        "Connection: close, X-Secret-Hop",
        "X-Secret-Hop: v",
        "X-Forwarded-Host: evil.example",
        "X-HTTP-Method-Override: DELETE",
      ],
      body,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    const seen = await gateway.received(requestId);
    expect(seen.url).toBe("/api/v1/auth/forgot-password");
    expect(seen.headers["x-secret-hop"]).toBeUndefined();
    expect(seen.headers["x-http-method-override"]).toBeUndefined();
    expect(seen.headers["x-forwarded-host"]).toBe(`127.0.0.1:${port}`);

    expect(seen.headers["x-forwarded-prefix"]).toBe("/zakgt");

    // What the origin got is bound by zgate's assertion: its method, path and body, as received over the socket.
    const verify = zgateVerifier({ keys: new URL(gateway.jwksUrl), audience: "zakgt", origin: gateway.originUrl });
    const assertion = String(seen.headers["x-zgate-assertion"]);
    expect(await verify({ method: seen.method, target: seen.url, assertion, body: new Uint8Array(seen.body) })).toMatchObject({
      requestId,
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
