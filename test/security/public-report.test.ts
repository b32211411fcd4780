import { describe, expect, it } from "vitest";
import { generateKey } from "../../src/keys/key-format";
import { admin, call, createKey, json, keyHeaders, someIp } from "../helpers";
import { fetchUrl, finishedImage, zskyClient } from "../results/zsky-client";
import { program } from "./scanner-program";

const reportKeys = (body: unknown, address = someIp(), base?: string, settings?: Record<string, unknown>) =>
  call("/security/v1/keys/report", {
    method: "POST",
    headers: { "Content-Type": "application/json", "CF-Connecting-IP": address },
    body: typeof body === "string" ? body : JSON.stringify(body),
    ...(base ? { base } : {}),
    ...(settings ? { settings } : {}),
  });

describe("POST /security/v1/keys/report (public, unauthenticated)", () => {
  it("revokes existing zgate keys, audited as report:public; the answer never says which existed", async () => {
    const leaked = await createKey("zappway", { label: "pasted in a forum" });
    const reporter = someIp();
    const withReal = await reportKeys({ keys: [leaked.key], url: "https://forum.example/t/1" }, reporter);
    const withoutReal = await reportKeys({ keys: [generateKey("zw_live_")] });
    expect(withReal.status).toBe(202);
    expect(withoutReal.status).toBe(202);
    expect(await json(withReal)).toEqual(await json(withoutReal));
    expect((await call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", leaked.key) })).status).toBe(401);
    const [entry] = (await json(await admin(`/audit?target=${leaked.id}`))).entries;
    expect(entry).toMatchObject({
      actor: "report:public",
      action: "key.revoke_leaked",
      detail: { source_url: "https://forum.example/t/1", reporter_address: reporter },
    });
  });

  it("a dead key's report changes nothing: the key its customer rotated to keeps working, nothing is audited or announced", async () => {
    const hooks = program();
    const settings = { LEAK_WEBHOOK_URL: hooks.webhookUrl, LEAK_WEBHOOK_SECRET: "leak-webhook-secret-0123456789abcdef" };
    const old = await createKey("zsky");
    const rotated = await json(await call("/zsky/v1/keys/rotate", { method: "POST", headers: keyHeaders("zsky", old.key) }));
    for (let i = 0; i < 3; i++) expect((await reportKeys({ keys: [old.key] }, someIp(), undefined, settings)).status).toBe(202);
    expect((await call("/zsky/v1/usage", { headers: keyHeaders("zsky", rotated.key) })).status).toBe(200);
    expect(await json(await admin(`/keys/${rotated.key_id}`))).toMatchObject({ status: "active", revoked_by: null });
    for (const id of [old.id, rotated.key_id]) {
      expect((await json(await admin(`/audit?target=${id}&action=key.revoke_leaked`))).entries).toEqual([]);
    }
    expect(await hooks.deliveries()).toEqual([]);
  });

  it("a live key is revoked alone: the successor an admin rolled it to keeps working, and so do the links it was handed", async () => {
    const hooks = program();
    const settings = { LEAK_WEBHOOK_URL: hooks.webhookUrl, LEAK_WEBHOOK_SECRET: "leak-webhook-secret-0123456789abcdef" };
    const old = await createKey("zsky");
    const rolled = await json(await admin(`/keys/${old.id}/roll`, { json: { expire_old_in_seconds: 3600 } }));
    const { response } = await finishedImage(zskyClient(rolled.key, {}), "a lighthouse at dusk");
    const link = (await json(response)).result_url as string;
    for (let i = 0; i < 3; i++) expect((await reportKeys({ keys: [old.key] }, someIp(), undefined, settings)).status).toBe(202);
    expect((await call("/zsky/v1/usage", { headers: keyHeaders("zsky", old.key) })).status).toBe(401);
    expect((await call("/zsky/v1/usage", { headers: keyHeaders("zsky", rolled.key) })).status).toBe(200);
    expect((await fetchUrl(link)).status).toBe(200);
    expect((await json(await admin(`/audit?target=${old.id}&action=key.revoke_leaked`))).entries).toHaveLength(1);
    const deliveries = await hooks.deliveries();
    expect(deliveries).toHaveLength(1);
    expect(JSON.parse(deliveries[0]!.body)).toMatchObject({ source: "report:public", revoked: [{ id: old.id, why: "leaked" }] });
  });

  it("revokes only checksum-valid zgate keys: an imported key of another shape is never revoked by report", async () => {
    const legacy = `legacy-zsky-${crypto.randomUUID()}`;
    const imported = await json(
      await admin("/keys", { json: { product: "zsky", account: `acct_${crypto.randomUUID()}`, import_key: legacy } }),
    );
    const valid = await createKey("zsky");
    const mistyped = valid.key.slice(0, -1) + (valid.key.endsWith("A") ? "B" : "A");
    expect((await reportKeys({ keys: [legacy, mistyped] })).status).toBe(202);
    expect((await json(await admin(`/keys/${imported.id}`))).status).toBe("active");
    expect((await json(await admin(`/keys/${valid.id}`))).status).toBe("active");
  });

  it("400 on anything but 1 to 100 keys", async () => {
    const many = Array.from({ length: 101 }, () => generateKey("zsky_live_"));
    for (const body of ["not json", {}, { keys: [] }, { keys: many }, { keys: [5] }, { keys: ["k"], extra: true }]) {
      const response = await reportKeys(body);
      expect(response.status, JSON.stringify(body).slice(0, 40)).toBe(400);
      expect((await json(response)).error.code).toBe("BAD_REQUEST");
    }
    expect((await reportKeys({ keys: many.slice(0, 100) })).status).toBe(202);
  });

  it("limited per client address: the 11th call in an hour is 429 with Retry-After", async () => {
    // A /64 of its own (IPv6 addresses are limited per /64), shared with no other test.
    const hex = () => Math.floor(Math.random() * 0xffff).toString(16);
    const address = `2001:db8:${hex()}:${hex()}::1`;
    for (let i = 0; i < 10; i++) expect((await reportKeys({ keys: ["x"] }, address)).status).toBe(202);
    const refused = await reportKeys({ keys: ["x"] }, address);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("Retry-After"))).toBeGreaterThan(0);
    expect(await json(refused)).toEqual({ error: { code: "RATE_LIMITED", message: "Too many reports, retry later" } });
    expect((await reportKeys({ keys: ["x"] }, someIp())).status).toBe(202);
  });

  it("lives on gateway hosts only: a product host answers its own 404", async () => {
    const leaked = await createKey("zsky");
    const onProduct = await reportKeys({ keys: [leaked.key] }, someIp(), "https://zsky.ai", { ENVIRONMENT: "production" });
    expect(onProduct.status).toBe(404);
    expect(await json(onProduct)).toEqual({ error: "Not Found" });
    const scanning = await call("/security/v1/secret-scanning/github", {
      method: "POST",
      base: "https://zsky.ai",
      body: "[]",
      settings: { ENVIRONMENT: "production" },
    });
    expect(scanning.status).toBe(404);
    expect((await json(await admin(`/keys/${leaked.id}`))).status).toBe("active");
    const gateway = { ENVIRONMENT: "production", GATEWAY_HOSTS: "gw.zgate.example" };
    expect((await reportKeys({ keys: [leaked.key] }, someIp(), "https://gw.zgate.example", gateway)).status).toBe(202);
    expect((await json(await admin(`/keys/${leaked.id}`))).status).toBe("revoked");
  });
});
