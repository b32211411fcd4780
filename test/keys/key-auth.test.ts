import { env } from "cloudflare:test";
import { decodeJwt } from "jose";
import { describe, expect, it } from "vitest";
import { generateKey } from "../../src/keys/key-format";
import { useTestClock } from "../clock";
import { admin, bearer, call, createKey, json, keyHeaders, login, sims } from "../helpers";

const jsonHeaders = { "Content-Type": "application/json" };

describe("keys authenticate each platform the way its reference says", () => {
  it("ZakGT: a zak_live_ key acts as its owner", async () => {
    const { key } = await createKey("zakgt", { account: "usr_demo" });
    const me = await call("/zakgt/api/v1/users/me", { headers: keyHeaders("zakgt", key) });
    expect(me.status).toBe(200);
    expect((await json(me)).data.id).toBe("usr_demo");
    const chat = await call("/zakgt/api/v1/ai/chat", {
      method: "POST",
      headers: { ...keyHeaders("zakgt", key), ...jsonHeaders },
      body: '{"message":"hello"}',
    });
    expect(chat.status).toBe(200);
  });

  it("ZSky: X-API-Key only, never Authorization", async () => {
    const { key } = await createKey("zsky");
    const ok = await call("/zsky/v1/images/generate", {
      method: "POST",
      headers: { "X-API-Key": key, ...jsonHeaders },
      body: '{"prompt":"a lighthouse"}',
    });
    expect(ok.status).toBe(200);
    expect(await json(ok)).toMatchObject({ status: "queued", kind: "image" });
    const viaBearer = await call("/zsky/v1/jobs/x", { headers: { Authorization: `Bearer ${key}` } });
    expect(viaBearer.status).toBe(401);
    expect(await json(viaBearer)).toEqual({ error: "Missing API key" });
  });

  it("ZappWay: Bearer, scheme in any case", async () => {
    const { key } = await createKey("zappway", { label: "CRM Integration" });
    const response = await call("/zappway/api/v1/agents", { headers: { Authorization: `BEARER ${key}` } });
    expect(response.status).toBe(200);
    expect((await json(response)).data.length).toBeGreaterThan(0);
  });

  it("never reads a key from the query string", async () => {
    const { key } = await createKey("zsky");
    const response = await call(`/zsky/v1/jobs/x?api_key=${key}&key=${key}`);
    expect(response.status).toBe(401);
    expect(await json(response)).toEqual({ error: "Missing API key" });
  });

  it("the origin gets the key id and account, never the key", async () => {
    const { id, key, account } = await createKey("zappway");
    const response = await call("/zappway/api/v1/agents", { headers: { ...keyHeaders("zappway", key), "X-Sim-Echo": "1" } });
    const seen = await json(response);
    expect(decodeJwt(seen.headers["x-zgate-assertion"])).toMatchObject({ sub: id, key_id: id, account });
    expect(seen.headers.authorization).toBeUndefined();
    expect(JSON.stringify(seen)).not.toContain(key);
  });
});

describe("unknown, revoked and expired keys look the same", () => {
  it.each(["zsky", "zappway", "zakgt"] as const)("%s: one 401 body for all three", async (product) => {
    const path = { zsky: "/zsky/v1/jobs/x", zappway: "/zappway/api/v1/agents", zakgt: "/zakgt/api/v1/wallet/balance" }[product];
    const unknown = generateKey(({ zsky: "zsky_live_", zappway: "zw_live_", zakgt: "zak_live_" } as const)[product]);
    const revoked = await createKey(product);
    await admin(`/keys/${revoked.id}/revoke`, { method: "POST" });
    const clock = useTestClock();
    const expiring = await createKey(product, { expires_at: new Date(clock.now() + 1500).toISOString() });
    expect((await call(path, { headers: keyHeaders(product, expiring.key) })).status).not.toBe(401);
    await clock.advance(1500);

    const bodies = [];
    for (const key of [unknown, revoked.key, expiring.key]) {
      const response = await call(path, { headers: keyHeaders(product, key) });
      expect(response.status).toBe(401);
      bodies.push(await response.text());
    }
    expect(new Set(bodies).size).toBe(1);
    const listed = await json(await admin(`/keys/${expiring.id}`));
    expect(listed.status).toBe("expired");
  });
});

describe("a key of another product is an invalid key: 401 in the product's own envelope", () => {
  it.each([
    {
      key: "zsky",
      on: "zappway",
      path: "/zappway/api/v1/agents",
      body: { error: { code: "UNAUTHORIZED", message: "Invalid or expired API key." } },
    },
    { key: "zappway", on: "zakgt", path: "/zakgt/api/v1/wallet/balance", body: { detail: "Could not validate credentials" } },
    { key: "zappway", on: "zsky", path: "/zsky/v1/jobs/x", body: { error: "Invalid API key" } },
  ] as const)("a $key key on $on: the same 401 as an unknown key", async ({ key, on, path, body }) => {
    const issued = await createKey(key);
    const foreign = await call(path, { headers: keyHeaders(on, issued.key) });
    expect(foreign.status).toBe(401);
    expect(await json(foreign)).toEqual(body);
    const unknown = await call(path, {
      headers: keyHeaders(on, generateKey(({ zsky: "zsky_live_", zappway: "zw_live_", zakgt: "zak_live_" } as const)[key])),
    });
    expect(await json(unknown)).toEqual(body);
  });

  it("the guard refuses it too, as a credential, should a request ever reach it", async () => {
    const { id, account } = await createKey("zappway");
    const stub = env.ACCOUNT_GUARD.get(env.ACCOUNT_GUARD.idFromName(`zappway:${account}`));
    const decision = await stub.admit({
      product: "zsky",
      route: { scope: "jobs", sessionOnly: false },
      credential: { via: "key", product: "zappway", keyId: id },
      accountId: account,
      limits: { windows: [] },
    });
    expect(decision).toEqual({ allow: false, refusal: "credential" });
  });
});

describe("valid key, missing scope or session-only route: 403", () => {
  it("a key scoped to `ai` can chat but not read the wallet", async () => {
    const { key } = await createKey("zakgt", { account: "usr_demo", scopes: ["ai"] });
    const chat = await call("/zakgt/api/v1/ai/chat", {
      method: "POST",
      headers: { ...keyHeaders("zakgt", key), ...jsonHeaders },
      body: '{"message":"x"}',
    });
    expect(chat.status).toBe(200);
    const wallet = await call("/zakgt/api/v1/wallet/balance", { headers: keyHeaders("zakgt", key) });
    expect(wallet.status).toBe(403);
    expect(await json(wallet)).toEqual({ detail: "This key does not have the 'wallet' scope" });
  });

  it("a key cannot manage keys (sessions only)", async () => {
    const { key } = await createKey("zakgt", { account: "usr_demo" });
    const response = await call("/zakgt/api/v1/developer/api-keys", { headers: keyHeaders("zakgt", key) });
    expect(response.status).toBe(403);
    expect(await json(response)).toEqual({ detail: "This endpoint needs a signed-in session, not an API key" });
  });
});

const PRODUCTION = { ENVIRONMENT: "production" };

describe("zak_test_ keys never reach production origins", () => {
  it("work in development (one origin) and are refused where no test origin is set", async () => {
    const created = await admin("/keys", { json: { product: "zakgt", account: "usr_demo", mode: "test" } });
    const { key } = await json(created);
    expect(key.startsWith("zak_test_")).toBe(true);
    expect((await call("/zakgt/api/v1/users/me", { headers: bearer(key) })).status).toBe(200);
    // users/me on ZakGT's own host of a production deployment with no test origin.
    const inProduction = (presented: string) =>
      call("/api/v1/users/me", { base: "https://api.zakgt.net", headers: bearer(presented), settings: PRODUCTION });
    const prod = await inProduction(key);
    expect(prod.status).toBe(403);
    expect(await json(prod)).toEqual({ detail: "Test keys are not accepted by this deployment" });
    // A mistyped test key is refused as any mistyped key is, before its mode is judged: 401, not 403.
    const mistyped = key.replace(/.$/, (c: string) => (c === "0" ? "1" : "0"));
    const refused = await inProduction(mistyped);
    expect(refused.status).toBe(401);
    expect(await json(refused)).toEqual({ detail: "Could not validate credentials" });
  });

  it("go to ORIGIN_ZAKGT_TEST when it is set", async () => {
    const { key } = await json(await admin("/keys", { json: { product: "zakgt", account: "usr_demo", mode: "test" } }));
    const response = await call("/api/v1/users/me", {
      base: "https://api.zakgt.net",
      headers: bearer(key),
      settings: { ENVIRONMENT: "production", ORIGIN_ZAKGT: "http://127.0.0.1:9", ORIGIN_ZAKGT_TEST: sims.origins.zakgt },
    });
    expect(response.status).toBe(200);
  });
});

describe("JWT sessions still work beside keys", () => {
  it("a JWT and a key for the same user both reach users/me", async () => {
    const token = await login();
    const { key } = await createKey("zakgt", { account: "usr_demo" });
    for (const credential of [token, key]) {
      expect((await call("/zakgt/api/v1/users/me", { headers: bearer(credential) })).status).toBe(200);
    }
  });
});
