import { env, runInDurableObject } from "cloudflare:test";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { ProductId } from "../../src/products/types";
import { usageLogFor } from "../../src/usage/usage-client";
import { admin, bearer, call, createKey, json, keyHeaders, login, someIp } from "../helpers";

/**
 * "Never store unhashed tokens": after a full run of every key path, no plaintext key
 * and no access token appears in D1, KV, the guard's storage or the logs.
 */
describe("no plaintext secret is stored or logged", () => {
  const secrets: string[] = [];
  const logs: string[] = [];
  const guards: { product: string; account: string }[] = [];

  beforeAll(async () => {
    const capture = (...args: unknown[]) => void logs.push(args.map(String).join(" "));
    vi.spyOn(console, "log").mockImplementation(capture);
    vi.spyOn(console, "error").mockImplementation(capture);
    vi.spyOn(console, "warn").mockImplementation(capture);

    const token = await login();
    secrets.push(token, "demo-password");
    const jsonHeaders = { "Content-Type": "application/json" };

    for (const product of ["zakgt", "zsky", "zappway"] as const) {
      const made = await createKey(product, product === "zakgt" ? { account: "usr_demo" } : {});
      secrets.push(made.key);
      guards.push({ product, account: made.account });
      const path = { zakgt: "/zakgt/api/v1/users/me", zsky: "/zsky/v1/jobs/x", zappway: "/zappway/api/v1/agents" }[product];
      await call(path, { headers: keyHeaders(product, made.key) });
    }
    const own = (
      await json(
        await call("/zakgt/api/v1/developer/api-keys", {
          method: "POST",
          headers: { ...bearer(token), ...jsonHeaders },
          body: '{"label":"x"}',
        }),
      )
    ).data;
    secrets.push(own.key);
    await call("/zakgt/api/v1/ai/chat", { method: "POST", headers: { ...bearer(own.key), ...jsonHeaders }, body: '{"message":"hi"}' });
    await call(`/zakgt/api/v1/developer/api-keys/${own.id}/usage`, { headers: bearer(token) });

    const zsky = await createKey("zsky");
    secrets.push(zsky.key);
    guards.push({ product: "zsky", account: zsky.account });
    const rotated = await json(await call("/zsky/v1/keys/rotate", { method: "POST", headers: keyHeaders("zsky", zsky.key) }));
    secrets.push(rotated.key);
    await call("/zsky/v1/jobs/x", { headers: keyHeaders("zsky", rotated.key) });

    const leaked = await createKey("zappway");
    secrets.push(leaked.key);
    await admin("/keys/revoke-leaked", { json: { key: leaked.key } });
    await call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", leaked.key) });

    // Looked up, rolled, and reported in public: the leaked plaintext goes nowhere either.
    const investigated = await createKey("zsky");
    secrets.push(investigated.key);
    await admin("/keys/lookup", { json: { key: investigated.key } });
    const rolled = await json(await admin(`/keys/${investigated.id}/roll`, { json: { expire_old_in_seconds: 60 } }));
    secrets.push(rolled.key);
    await call("/zsky/v1/usage", { headers: keyHeaders("zsky", rolled.key) });
    await call("/security/v1/keys/report", {
      method: "POST",
      headers: { ...jsonHeaders, "CF-Connecting-IP": someIp() },
      body: JSON.stringify({ keys: [investigated.key] }),
    });

    const legacy = `legacy-${crypto.randomUUID()}`;
    secrets.push(legacy);
    await admin("/keys", { json: { product: "zsky", account: "legacy-acct", import_key: legacy } });
    await call("/zsky/v1/jobs/x", { headers: { "X-API-Key": legacy } });

    await call("/zakgt/api/v1/auth/logout", { method: "POST", headers: bearer(token) });
  });

  afterAll(() => vi.restoreAllMocks());

  const leaks = (haystack: string) => secrets.filter((s) => haystack.includes(s) || haystack.includes(s.slice(-16)));

  it("D1: no table holds a plaintext key or token", async () => {
    const tables = await env.DB.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all<{ name: string }>();
    expect(tables.results.map((t) => t.name)).toEqual(expect.arrayContaining(["api_keys", "audit_log"]));
    for (const { name } of tables.results) {
      if (name.startsWith("_cf") || name === "sqlite_sequence") continue;
      const rows = await env.DB.prepare(`SELECT * FROM "${name}"`).all();
      expect(leaks(JSON.stringify(rows.results)), name).toEqual([]);
    }
    const stored = await env.DB.prepare("SELECT key_hash FROM api_keys").all<{ key_hash: string }>();
    for (const row of stored.results) expect(row.key_hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it("KV: only hashes as names, only ids as values", async () => {
    const listed = await env.KEYS_KV.list();
    expect(listed.keys.length).toBeGreaterThan(0);
    for (const { name } of listed.keys) {
      expect(name).toMatch(/^key:[0-9a-f]{64}$/);
      const value = (await env.KEYS_KV.get(name)) ?? "";
      expect(leaks(name + value)).toEqual([]);
      expect(Object.keys(JSON.parse(value)).sort()).toEqual(["accountId", "keyId", "product"]);
    }
  });

  it("the account guards: key ids and token ids only", async () => {
    for (const { product, account } of guards) {
      const stub = env.ACCOUNT_GUARD.get(env.ACCOUNT_GUARD.idFromName(`${product}:${account}`));
      const dump: string = await runInDurableObject(stub, (_guard, state) => {
        const tables = state.storage.sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'").toArray();
        return JSON.stringify(
          tables.map(({ name }) => (name.startsWith("_cf") ? [] : state.storage.sql.exec(`SELECT * FROM "${name}"`).toArray())),
        );
      });
      expect(leaks(dump)).toEqual([]);
    }
  });

  it("the accounts' usage logs: key ids, never a key", async () => {
    for (const { product, account } of guards) {
      const dump: string = await runInDurableObject(
        usageLogFor(env, { product: product as ProductId, accountId: account }),
        (_log, state) => {
          const tables = state.storage.sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'").toArray();
          return JSON.stringify(
            tables.map(({ name }) => (name.startsWith("_cf") ? [] : state.storage.sql.exec(`SELECT * FROM "${name}"`).toArray())),
          );
        },
      );
      expect(leaks(dump)).toEqual([]);
    }
  });

  it("logs: nothing", () => {
    expect(logs.length).toBeGreaterThan(10);
    expect(leaks(logs.join("\n"))).toEqual([]);
  });
});
