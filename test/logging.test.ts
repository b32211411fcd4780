import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { bearer, call, login } from "./helpers";

let lines: string[] = [];

beforeEach(() => {
  lines = [];
  const capture = (...args: unknown[]) => void lines.push(args.map(String).join(" "));
  vi.spyOn(console, "log").mockImplementation(capture);
  vi.spyOn(console, "error").mockImplementation(capture);
  vi.spyOn(console, "warn").mockImplementation(capture);
});
afterEach(() => vi.restoreAllMocks());

describe("structured access log", () => {
  it("writes one JSON line per request with its identifiers", async () => {
    const token = await login();
    lines = [];
    const response = await call("/zakgt/api/v1/users/me", { headers: { ...bearer(token), "X-Request-Id": "log-test-0001" } });
    expect(response.status).toBe(200);
    expect(lines).toHaveLength(1);
    const entry = JSON.parse(lines[0]!);
    expect(entry).toMatchObject({
      msg: "request",
      request_id: "log-test-0001",
      method: "GET",
      product: "zakgt",
      route: "users.me.get",
      status: 200,
      account: "usr_demo",
      key_id: null,
      outcome: "forwarded",
    });
    expect(typeof entry.latency_ms).toBe("number");
  });

  it("logs rejections with their outcome", async () => {
    await call("/zsky/v1/usage", { headers: { "X-API-Key": "zsky_live_nope" } });
    const entry = JSON.parse(lines[0]!);
    expect(entry).toMatchObject({ product: "zsky", route: "usage.get", status: 401, outcome: "rejected" });
  });

  it("never logs a token, key, password, signature or query string", async () => {
    const token = await login("demo@zakgt.test", "demo-password");
    await call("/zakgt/api/v1/users/me?access_token=leaky-query-value", { headers: bearer(token) });
    await call("/zakgt/api/v1/auth/logout", { method: "POST", headers: bearer(token) });
    await call("/zakgt/api/v1/users/me", { headers: bearer(token) });
    await call("/zsky/v1/usage", { headers: { "X-API-Key": "zsky_live_secretvalue123" } });
    await call("/zappway/api/v1/agents", { headers: { Authorization: "Bearer zw_live_secretvalue456" } });
    await call("/zakgt/api/v1/users/me", { headers: bearer(token), settings: { ORIGIN_ASSERTION_KEYS: '{"k1": "short"}' } });
    const all = lines.join("\n");
    expect(lines.length).toBeGreaterThanOrEqual(6);
    for (const secret of [token, token.split(".")[2]!, "demo-password", "leaky-query-value", "secretvalue123", "secretvalue456", "short"]) {
      expect(all).not.toContain(secret);
    }
    // Nor zgate's origin assertion: its header, or a JWS whose header starts {"alg":"EdDSA".
    expect(all).not.toMatch(/x-zgate-assertion|eyJhbGciOiJFZERTQSI/i);
  });
});
