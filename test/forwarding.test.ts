import { describe, expect, it } from "vitest";
import { verifyIdentitySignature } from "../src/proxy/identity-signature";
import { bearer, call, json, login, sims } from "./helpers";

/** The origin simulators answer `X-Sim-Echo: 1` with the request exactly as they received it. */
async function echo(path: string, init: RequestInit & { headers?: Record<string, string> } = {}) {
  const response = await call(path, { ...init, headers: { "X-Sim-Echo": "1", ...init.headers } });
  expect(response.status).toBe(200);
  return { response, seen: await json(response) };
}

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

  it("removes hop-by-hop headers, including those named by Connection", async () => {
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
        "X-Custom": "kept",
      },
      body: "{}",
    });
    for (const h of ["x-private-hop", "keep-alive", "proxy-authorization", "te", "upgrade"]) expect(seen.headers[h]).toBeUndefined();
    expect(seen.headers["x-custom"]).toBe("kept");
  });

  it("drops caller-supplied X-Zgate-* identity headers and adds its own, signed", async () => {
    const token = await login();
    const { seen, response } = await echo("/zakgt/api/v1/users/me?view=full", {
      headers: { ...bearer(token), "X-Zgate-Account": "usr_admin", "X-Zgate-User": "usr_admin", "X-Zgate-Key-Id": "k_forged" },
    });
    expect(seen.headers["x-zgate-product"]).toBe("zakgt");
    expect(seen.headers["x-zgate-account"]).toBe("usr_demo");
    expect(seen.headers["x-zgate-user"]).toBe("usr_demo");
    expect(seen.headers["x-zgate-key-id"]).toBeUndefined();
    expect(seen.headers["x-request-id"]).toBe(response.headers.get("X-Request-Id"));

    const identity = {
      timestamp: Number(seen.headers["x-zgate-timestamp"]),
      method: "GET",
      pathAndQuery: "/api/v1/users/me?view=full",
      product: "zakgt",
      account: "usr_demo",
      user: "usr_demo",
      keyId: "",
      requestId: seen.headers["x-request-id"],
    };
    expect(await verifyIdentitySignature(sims.signingSecret, identity, seen.headers["x-zgate-signature"])).toBe(true);
    // Any change to the signed fields breaks the signature.
    expect(await verifyIdentitySignature(sims.signingSecret, { ...identity, account: "usr_admin" }, seen.headers["x-zgate-signature"])).toBe(false);
    expect(await verifyIdentitySignature(sims.signingSecret, { ...identity, pathAndQuery: "/api/v1/wallet/balance" }, seen.headers["x-zgate-signature"])).toBe(false);
    expect(await verifyIdentitySignature("another-secret-another-secret-xx", identity, seen.headers["x-zgate-signature"])).toBe(false);
  });

  it("signs public requests too, with empty identity fields", async () => {
    const { seen } = await echo("/zakgt/api/v1/auth/forgot-password", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: "{}",
    });
    expect(seen.headers["x-zgate-account"]).toBeUndefined();
    const ok = await verifyIdentitySignature(
      sims.signingSecret,
      {
        timestamp: Number(seen.headers["x-zgate-timestamp"]),
        method: "POST",
        pathAndQuery: "/api/v1/auth/forgot-password",
        product: "zakgt",
        account: "",
        user: "",
        keyId: "",
        requestId: seen.headers["x-request-id"],
      },
      seen.headers["x-zgate-signature"],
    );
    expect(ok).toBe(true);
  });

  it("an origin refuses a stale signature", async () => {
    const identity = { timestamp: 1_000, method: "GET", pathAndQuery: "/", product: "zakgt", account: "", user: "", keyId: "", requestId: "r" };
    const { signIdentity } = await import("../src/proxy/identity-signature");
    const signature = await signIdentity(sims.signingSecret, identity);
    expect(await verifyIdentitySignature(sims.signingSecret, identity, signature, 1_000 + 299)).toBe(true);
    expect(await verifyIdentitySignature(sims.signingSecret, identity, signature, 1_000 + 301)).toBe(false);
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
