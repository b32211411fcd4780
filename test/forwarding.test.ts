import { describe, expect, it } from "vitest";
import { bearer, call, echo, json, login } from "./helpers";

describe("forwarding to the origin", () => {
  it("rewrites the path to the origin's own, keeps the query, method and body", async () => {
    const { seen } = await echo("/zakgt/api/v1/auth/login?next=%2Fhome&x=1", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email: "a@b.c", password: "x" }),
    });
    expect(seen.method).toBe("POST");
    expect(seen.path).toBe("/api/v1/auth/login");
    expect(seen.query).toBe("?next=%2Fhome&x=1");
    expect(JSON.parse(seen.body)).toEqual({ email: "a@b.c", password: "x" });
  });

  it("forwards the end-to-end fields of an API call and no others (hop-by-hop, named by Connection, unknown)", async () => {
    const { seen } = await echo("/zakgt/api/v1/auth/forgot-password", {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Connection: "X-Private-Hop",
        "X-Private-Hop": "secret",
        "Keep-Alive": "timeout=5",
        "Proxy-Authorization": "Basic abc",
        TE: "trailers",
        Upgrade: "websocket",
        Cookie: "session=abc",
        "X-Custom": "not an origin's contract",
        Accept: "application/json",
        "Accept-Language": "km",
        "Idempotency-Key": "idem-0001",
        "User-Agent": "sdk/1.0",
      },
      body: "{}",
    });
    for (const h of ["connection", "x-private-hop", "keep-alive", "proxy-authorization", "te", "upgrade", "cookie", "x-custom"]) {
      expect(seen.headers[h]).toBeUndefined();
    }
    expect(seen.headers).toMatchObject({
      accept: "application/json",
      "accept-language": "km",
      "idempotency-key": "idem-0001",
      "user-agent": "sdk/1.0",
    });
  });

  it("never passes a caller's forwarding, method-override or rewrite fields; sends its own X-Forwarded-*", async () => {
    const { seen } = await echo("/zakgt/api/v1/auth/forgot-password", {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        "CF-Connecting-IP": "203.0.113.7",
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Port": "8443",
        "X-Forwarded-Prefix": "/evil",
        "X-Forwarded-Server": "evil",
        "X-HTTP-Method-Override": "DELETE",
        "X-HTTP-Method": "DELETE",
        "X-Method-Override": "DELETE",
        "X-Original-URL": "/api/v1/users/me",
        "X-Rewrite-URL": "/api/v1/users/me",
      },
      body: "{}",
    });
    const forwarded = Object.fromEntries(
      Object.entries(seen.headers as Record<string, string>).filter(([h]) => h.startsWith("x-forwarded-")),
    );
    expect(forwarded).toEqual({
      "x-forwarded-for": "203.0.113.7",
      "x-forwarded-host": "localhost",
      "x-forwarded-proto": "http",
      "x-forwarded-prefix": "/zakgt",
    });
    for (const h of ["x-http-method-override", "x-http-method", "x-method-override", "x-original-url", "x-rewrite-url"])
      expect(seen.headers[h]).toBeUndefined();

    // On the product's own host there is no prefix to report.
    const byHost = await call("/api/v1/auth/forgot-password", {
      base: "https://api.zakgt.net",
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Sim-Echo": "1", "X-Forwarded-Prefix": "/evil" },
      body: "{}",
    });
    const hostSeen = (await json(byHost)).headers;
    expect([hostSeen["x-forwarded-host"], hostSeen["x-forwarded-proto"], hostSeen["x-forwarded-prefix"]]).toEqual([
      "api.zakgt.net",
      "https",
      undefined,
    ]);
  });

  it("a deployment may forward more fields (ORIGIN_FORWARD_HEADERS), never ones zgate owns", async () => {
    const settings = { ORIGIN_FORWARD_HEADERS: "X-Sim-*, X-Tenant, X-Partner-*" };
    const response = await call("/zakgt/api/v1/auth/forgot-password", {
      method: "POST",
      settings,
      headers: { "Content-Type": "application/json", "X-Sim-Echo": "1", "X-Tenant": "t1", "X-Partner-Id": "p1", "X-Other": "no" },
      body: "{}",
    });
    const seen = (await json(response)).headers;
    expect([seen["x-tenant"], seen["x-partner-id"], seen["x-other"]]).toEqual(["t1", "p1", undefined]);
    for (const owned of ["X-Forwarded-Host", "X-Zgate-*", "X-HTTP-Method-Override", "Authorization", "Connection"]) {
      const refused = await call("/zakgt/api/v1/auth/forgot-password", {
        method: "POST",
        settings: { ORIGIN_FORWARD_HEADERS: owned },
        body: "{}",
      });
      expect(refused.status).toBe(503);
    }
  });

  it("never forwards an API-key secret, wherever the caller put it", async () => {
    const { seen } = await echo("/zakgt/api/v1/auth/forgot-password", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-API-Key": "zsky_live_secret", Authorization: "Bearer zak_live_secretsecret" },
      body: "{}",
    });
    expect(seen.headers["x-api-key"]).toBeUndefined();
    expect(seen.headers.authorization).toBeUndefined();
    expect(JSON.stringify(seen)).not.toContain("secret");
  });

  it("passes a verified ZakGT session token on to the origin that issued it", async () => {
    const token = await login();
    const { seen } = await echo("/zakgt/api/v1/users/me", { headers: bearer(token) });
    expect(seen.headers.authorization).toBe(`Bearer ${token}`);
  });

  it("passes origin responses through untouched: status, headers, body", async () => {
    const response = await call("/zakgt/api/v1/auth/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email: "demo@zakgt.test", password: "wrong" }),
    });
    expect(response.status).toBe(401);
    expect(await json(response)).toEqual({ detail: "Invalid email or password" });

    const token = await login();
    const notFound = await call("/zakgt/api/v1/tools/tool_missing", { headers: bearer(token) });
    expect(notFound.status).toBe(404);
    expect(await json(notFound)).toEqual({ detail: "Tool not found" });
  });
});

describe("X-Request-Id", () => {
  it("keeps a caller's well-formed id on the response and towards the origin", async () => {
    const { seen, response } = await echo("/zakgt/api/v1/auth/forgot-password", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Request-Id": "client-req-0001" },
      body: "{}",
    });
    expect(response.headers.get("X-Request-Id")).toBe("client-req-0001");
    expect(seen.headers["x-request-id"]).toBe("client-req-0001");
  });

  it("replaces a malformed one with a new UUID", async () => {
    for (const bad of ["short", "has spaces in it", "x".repeat(200), "semi;colon-0001"]) {
      const response = await call("/zakgt/api/v1/nope", { headers: { "X-Request-Id": bad } });
      expect(response.headers.get("X-Request-Id")).toMatch(/^[0-9a-f-]{36}$/);
    }
  });

  it("is on every response, including gateway errors", async () => {
    for (const path of ["/nothing", "/zsky/v1/usage", "/zakgt/api/v1/users/me"]) {
      const response = await call(path);
      expect(response.headers.get("X-Request-Id")).toMatch(/^[0-9a-f-]{36}$/);
    }
  });
});
