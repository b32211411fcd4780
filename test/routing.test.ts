import { describe, expect, it } from "vitest";
import { call, createKey, json } from "./helpers";

/** Every endpoint of the three references, with the auth policy the issue gives it. */
const ZAKGT: [string, string, "public" | "required"][] = [
  ["POST", "/api/v1/auth/login", "public"],
  ["POST", "/api/v1/auth/register", "public"],
  ["POST", "/api/v1/auth/refresh", "public"],
  ["POST", "/api/v1/auth/logout", "required"],
  ["POST", "/api/v1/auth/forgot-password", "public"],
  ["POST", "/api/v1/auth/reset-password", "public"],
  ["GET", "/api/v1/users/me", "required"],
  ["PUT", "/api/v1/users/me", "required"],
  ["GET", "/api/v1/users/usr_123", "required"],
  ["GET", "/api/v1/users/me/stats", "required"],
  ["DELETE", "/api/v1/users/me", "required"],
  ["GET", "/api/v1/wallet/balance", "required"],
  ["GET", "/api/v1/wallet/transactions", "required"],
  ["POST", "/api/v1/wallet/topup/stripe", "required"],
  ["POST", "/api/v1/wallet/topup/paypal", "required"],
  ["POST", "/api/v1/wallet/topup/aba", "required"],
  ["GET", "/api/v1/mart/products", "required"],
  ["GET", "/api/v1/mart/products/prod_1", "required"],
  ["POST", "/api/v1/mart/products", "required"],
  ["PUT", "/api/v1/mart/products/prod_1", "required"],
  ["DELETE", "/api/v1/mart/products/prod_1", "required"],
  ["POST", "/api/v1/mart/products/prod_1/purchase", "required"],
  ["GET", "/api/v1/live/sessions", "required"],
  ["GET", "/api/v1/live/sessions/ls_1", "required"],
  ["POST", "/api/v1/live/sessions/start", "required"],
  ["POST", "/api/v1/live/sessions/ls_1/end", "required"],
  ["GET", "/api/v1/tools/", "required"],
  ["GET", "/api/v1/tools/tool_writer", "required"],
  ["POST", "/api/v1/tools/tool_writer/purchase", "required"],
  ["GET", "/api/v1/tools/my-tools", "required"],
  ["POST", "/api/v1/ai/chat", "required"],
  ["POST", "/api/v1/ai/studio", "required"],
  ["GET", "/api/v1/ai/usage/history", "required"],
  ["POST", "/api/v1/developer/api-keys", "required"],
  ["GET", "/api/v1/developer/api-keys", "required"],
  ["DELETE", "/api/v1/developer/api-keys/key_1", "required"],
  ["GET", "/api/v1/developer/api-keys/key_1/usage", "required"],
];

const ZSKY: [string, string][] = [
  ["POST", "/v1/images/generate"],
  ["POST", "/v1/videos/generate"],
  ["GET", "/v1/jobs/abc123"],
  ["DELETE", "/v1/jobs/abc123"],
  ["GET", "/v1/usage"],
  ["POST", "/v1/keys/rotate"],
];

// ZappWay's reference names modules without listing them whole: every path under a
// module prefix, any method, is routed with a key required.
const ZAPPWAY: [string, string][] = [
  ["GET", "/api/v1/agents"],
  ["POST", "/api/v1/agents/agt_support/query"],
  ["GET", "/api/v1/agents/agt_support/conversations?limit=50&after=2025-01-01"],
  ["POST", "/api/v1/datastores/ds_1/upsert"],
  ["GET", "/api/v1/datasources"],
  ["PATCH", "/api/v1/datasources/src_1"],
  ["GET", "/api/v1/conversations/c_1"],
  ["GET", "/api/agents"],
];

describe("route table: every reference endpoint, by path prefix", () => {
  it.each(ZAKGT)("ZakGT %s %s is %s", async (method, path, auth) => {
    const response = await call(`/zakgt${path}`, {
      method,
      headers: { "Content-Type": "application/json" },
      body: method === "GET" || method === "DELETE" ? undefined : "{}",
    });
    const body = await json(response);
    if (auth === "required") {
      expect(response.status).toBe(401);
      expect(body).toEqual({ detail: "Not authenticated" });
    } else {
      // Reached the origin: whatever it answers, it is not the gateway's 401/404/405.
      expect(body).not.toEqual({ detail: "Not authenticated" });
      expect([404, 405]).not.toContain(response.status);
    }
  });

  it.each(ZSKY)("ZSky %s %s needs a key (ZSky envelope)", async (method, path) => {
    const response = await call(`/zsky${path}`, { method });
    expect(response.status).toBe(401);
    expect(await json(response)).toEqual({ error: "Missing API key" });
  });

  it.each(ZAPPWAY)("ZappWay %s %s needs a key (ZappWay envelope)", async (method, path) => {
    const response = await call(`/zappway${path}`, { method });
    expect(response.status).toBe(401);
    expect(await json(response)).toEqual({ error: { code: "UNAUTHORIZED", message: "Missing API key." } });
  });
});

describe("route table: by host", () => {
  it("resolves api.zakgt.net, zsky.ai and app.zappway.ai without a prefix", async () => {
    const zakgt = await call("/api/v1/users/me", { base: "http://api.zakgt.net" });
    expect(await json(zakgt)).toEqual({ detail: "Not authenticated" });
    const zsky = await call("/v1/usage", { base: "http://zsky.ai" });
    expect(await json(zsky)).toEqual({ error: "Missing API key" });
    const zappway = await call("/api/v1/agents", { base: "http://app.zappway.ai" });
    expect((await json(zappway)).error.code).toBe("UNAUTHORIZED");
  });

  it("takes hosts from settings", async () => {
    const response = await call("/v1/usage", {
      base: "http://images.example.test",
      settings: { ZSKY_HOSTS: "images.example.test, zsky.ai" },
    });
    expect(await json(response)).toEqual({ error: "Missing API key" });
  });

  it("host matching is case-insensitive", async () => {
    const response = await call("/v1/usage", { base: "http://ZSKY.AI" });
    expect(response.status).toBe(401);
  });
});

describe("unknown paths and wrong methods", () => {
  it("404 in each product's envelope", async () => {
    const zakgt = await call("/zakgt/api/v1/nope");
    expect(zakgt.status).toBe(404);
    expect(await json(zakgt)).toEqual({ detail: "Not Found" });
    const zsky = await call("/zsky/v1/nope");
    expect(zsky.status).toBe(404);
    expect(await json(zsky)).toEqual({ error: "Not Found" });
    const zappway = await call("/zappway/api/v1/billing");
    expect(zappway.status).toBe(404);
    expect(await json(zappway)).toEqual({ error: { code: "NOT_FOUND", message: "Not Found" } });
  });

  it("404 for a path that belongs to no product", async () => {
    const response = await call("/nothing/here");
    expect(response.status).toBe(404);
    expect(await json(response)).toEqual({ error: { code: "NOT_FOUND", message: "Not Found" } });
  });

  it("405 with Allow listing every method of the path", async () => {
    const users = await call("/zakgt/api/v1/users/me", { method: "POST" });
    expect(users.status).toBe(405);
    expect(users.headers.get("Allow")).toBe("DELETE, GET, HEAD, PUT");
    expect(await json(users)).toEqual({ detail: "Method Not Allowed" });

    const jobs = await call("/zsky/v1/jobs/abc", { method: "PUT" });
    expect(jobs.status).toBe(405);
    expect(jobs.headers.get("Allow")).toBe("DELETE, GET, HEAD");
    expect(await json(jobs)).toEqual({ error: "Method Not Allowed" });
  });

  it("a literal segment wins over a parameter (/tools/my-tools is not a tool id)", async () => {
    const response = await call("/zakgt/api/v1/tools/my-tools", { method: "DELETE" });
    expect(response.status).toBe(405);
    expect(response.headers.get("Allow")).toBe("GET, HEAD");
  });

  it("a path asked before is routed as the first time, per method: a 405 keeps its Allow, a refused path stays refused", async () => {
    // The edge keeps what it made of a method and path (route/route-request.ts): the second
    // answer of each comes from there.
    const { key } = await createKey("zsky");
    const headers = { "X-API-Key": key, "X-Sim-Echo": "1" };
    for (let round = 0; round < 2; round++) {
      const put = await call("/zsky/v1/jobs/job_memo", { method: "PUT", headers });
      expect(put.status).toBe(405);
      expect(put.headers.get("Allow")).toBe("DELETE, GET, HEAD");
      const get = await call("/zsky/v1/jobs/job_memo", { headers });
      expect(get.status).toBe(404); // routed as a poll: a job this account never submitted
      const refused = await call("/zsky/v1/jobs/job_memo%2F..%2Fusage", { headers });
      expect(refused.status).toBe(400);
      expect(await json(refused)).toEqual({ error: "Encoded slash or backslash in path" });
    }
  });

  it("405 is decided before authentication", async () => {
    const response = await call("/zsky/v1/usage", { method: "DELETE", headers: { "X-API-Key": "zsky_live_whatever" } });
    expect(response.status).toBe(405);
  });
});

describe("path hygiene: the origin receives exactly the path zgate matched and authorised", () => {
  it.each([
    ["/zakgt/api/v1//users/me", { detail: "Empty path segment" }],
    ["/zsky/v1//usage", { error: "Empty path segment" }],
    ["/zappway//api/v1/agents", { error: { code: "BAD_REQUEST", message: "Empty path segment" } }],
    ["/zsky/v1/jobs/abc%2F..%2Fusage", { error: "Encoded slash or backslash in path" }],
    ["/zappway/api/v1/agents/..%5Cdatastores", { error: { code: "BAD_REQUEST", message: "Encoded slash or backslash in path" } }],
    ["/zappway/api/v1/agents/..;/datastores", { error: { code: "BAD_REQUEST", message: "Dot segment in path" } }],
    ["/zakgt/api/v1/users/%E0%A4%A", { detail: "Malformed percent-encoding in path" }],
    ["/zakgt/api/v1/users/me%00", { detail: "Control character in path" }],
  ])("%s is refused with 400 in the product's envelope, before authentication", async (path, body) => {
    const response = await call(path);
    expect(response.status).toBe(400);
    expect(await json(response)).toEqual(body);
  });

  it("a key scoped to agents cannot reach datastores through an encoded separator", async () => {
    const { key } = await createKey("zappway", { scopes: ["agents"] });
    const headers = { Authorization: `Bearer ${key}`, "X-Sim-Echo": "1" };
    const encoded = await call("/zappway/api/v1/agents/..%2fdatastores", { headers });
    expect(encoded.status).toBe(400);
    // Dot segments are resolved by the URL parser before routing: what is matched (and
    // refused for this key) is the path the origin would have received.
    const dotted = await call("/zappway/api/v1/agents/%2e%2e/datastores", { headers });
    expect(dotted.status).toBe(403);
    const allowed = await call("/zappway/api/v1/agents/agt_support?x=1", { headers });
    expect((await json(allowed)).path).toBe("/api/v1/agents/agt_support");
  });

  it("one trailing slash is still the route (references write /tools/), forwarded as sent", async () => {
    const { key } = await createKey("zakgt", { account: "usr_demo" });
    const response = await call("/zakgt/api/v1/users/me/", { headers: { Authorization: `Bearer ${key}`, "X-Sim-Echo": "1" } });
    expect(response.status).toBe(200);
    expect((await json(response)).path).toBe("/api/v1/users/me/");
  });
});
