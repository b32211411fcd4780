import { createExecutionContext, createScheduledController, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import worker from "../../src/index";
import { encodeBatch, type UsageCall } from "../../src/usage/usage-batches";
import { listUsage } from "../../src/usage/usage-history";
import { BATCH_CHARS, CALLS_PER_BATCH } from "../../src/usage/usage-log";
import { admin, bearer, call, callLive, createKey, json, login } from "../helpers";

const KEYS = "/zakgt/api/v1/developer/api-keys";

/** env.DB, adding up the D1 rows each statement it runs reports written (`meta.rows_written`). */
function rowsWrittenBy(db: D1Database, total: { rows: number }): D1Database {
  const unwrapped = new WeakMap<object, D1PreparedStatement>();
  const count = (result: D1Result) => void (total.rows += result.meta.rows_written ?? 0);
  const statement = (real: D1PreparedStatement): D1PreparedStatement => {
    const wrapped = new Proxy(real, {
      get(target, prop) {
        if (prop === "bind") return (...values: unknown[]) => statement(target.bind(...values));
        if (prop === "run" || prop === "all") return () => target[prop]().then((r: D1Result) => (count(r), r));
        const value = Reflect.get(target, prop, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    unwrapped.set(wrapped, real);
    return wrapped;
  };
  return new Proxy(db, {
    get(target, prop) {
      if (prop === "prepare") return (sql: string) => statement(target.prepare(sql));
      if (prop === "batch") {
        return async (statements: D1PreparedStatement[]) => {
          const results = await target.batch(statements.map((s) => unwrapped.get(s) ?? s));
          results.forEach(count);
          return results;
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

async function ownKey(token: string): Promise<{ id: string; key: string }> {
  const created = await call(KEYS, { method: "POST", headers: { ...bearer(token), "Content-Type": "application/json" }, body: "{}" });
  return (await json(created)).data;
}

/** Every call the developer API lists for the key, page by page. */
async function listedRequestIds(token: string, keyId: string, limit: number): Promise<string[]> {
  const ids: string[] = [];
  let cursor = "";
  do {
    const page = (
      await json(await call(`${KEYS}/${keyId}/usage?limit=${limit}${cursor && `&cursor=${cursor}`}`, { headers: bearer(token) }))
    ).data;
    ids.push(...page.items.map((u: { request_id: string }) => u.request_id));
    cursor = page.next_cursor ?? "";
  } while (cursor);
  return ids;
}

const batchesOf = async (keyId: string) =>
  (
    await env.DB.prepare("SELECT first_at, last_at, calls FROM key_usage_batches WHERE key_id = ?")
      .bind(keyId)
      .all<{ first_at: number; last_at: number; calls: string }>()
  ).results;

describe("key usage is written in batches", () => {
  it(`a hot key's ${CALLS_PER_BATCH} calls cost one D1 row written, and its per-call history is complete and in order`, async () => {
    const token = await login();
    const { id, key } = await ownKey(token);
    const written = { rows: 0 };
    const settings = { USAGE_FLUSH_MS: "20000", DB: rowsWrittenBy(env.DB, written) };
    const sent = Array.from({ length: CALLS_PER_BATCH }, (_, i) => `usage-hot-${String(i).padStart(4, "0")}`);
    // The last call's own waitUntil writes the key's batch; `call` waits for it.
    for (const requestId of sent.slice(0, -1))
      await callLive("/zakgt/api/v1/users/me", { headers: { ...bearer(key), "X-Request-Id": requestId }, settings });
    await call("/zakgt/api/v1/users/me", { headers: { ...bearer(key), "X-Request-Id": sent.at(-1)! }, settings });

    expect(written.rows).toBe(1);
    expect(await batchesOf(id)).toHaveLength(1);
    expect(await listedRequestIds(token, id, 100)).toEqual([...sent].reverse());
  });

  it("calls with long paths go in a row of their own before it could pass D1's row size limit", async () => {
    const token = await login();
    const { id, key } = await ownKey(token);
    const settings = { USAGE_FLUSH_MS: "20000" };
    // A user id of 4,000 characters: the origin answers 404, and the call is recorded with its path.
    const path = `/zakgt/api/v1/users/${"u".repeat(4_000)}`;
    // What usage-log.ts counts for it: the origin's path (no /zakgt), no user agent, 160 for the rest.
    const perCall = path.length - "/zakgt".length + 160;
    const fill = Math.ceil(BATCH_CHARS / perCall);
    expect(fill).toBeLessThan(CALLS_PER_BATCH);
    for (let i = 1; i < fill; i++) await callLive(path, { headers: bearer(key), settings });
    expect(await batchesOf(id)).toHaveLength(0);
    await call(path, { headers: bearer(key), settings });

    const batches = await batchesOf(id);
    expect(batches).toHaveLength(1);
    expect(JSON.parse(batches[0]!.calls)).toHaveLength(fill);
    expect(batches[0]!.calls.length).toBeLessThan(2_000_000);
  });

  it("a key's calls within USAGE_FLUSH_MS share one row", async () => {
    const token = await login();
    const { id, key } = await ownKey(token);
    const written = { rows: 0 };
    const settings = { USAGE_FLUSH_MS: "300", DB: rowsWrittenBy(env.DB, written) };
    for (let i = 0; i < 3; i++)
      await callLive("/zakgt/api/v1/users/me", { headers: { ...bearer(key), "X-Request-Id": `usage-cold-000${i}` }, settings });
    await vi.waitFor(async () => expect(await batchesOf(id)).toHaveLength(1), { timeout: 5_000, interval: 100 });
    expect(written.rows).toBe(1);
    expect(await listedRequestIds(token, id, 2)).toEqual(["usage-cold-0002", "usage-cold-0001", "usage-cold-0000"]);
  });

  it("a flush that comes late splits a key's calls so no row spans more than a minute", async () => {
    const token = await login();
    const { id, key } = await ownKey(token);
    const settings = { USAGE_FLUSH_MS: "500" };
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      await callLive("/zakgt/api/v1/users/me", { headers: bearer(key), settings });
      vi.setSystemTime(Date.now() + 61_000);
      await callLive("/zakgt/api/v1/users/me", { headers: bearer(key), settings });
    } finally {
      vi.useRealTimers();
    }
    await vi.waitFor(async () => expect(await batchesOf(id)).toHaveLength(2), { timeout: 5_000, interval: 100 });
    for (const batch of await batchesOf(id)) expect(batch.last_at - batch.first_at).toBeLessThanOrEqual(60_000);
  });
});

describe("what a call records", () => {
  it("time, method, path without query, status, request id, client address, country, ASN, user agent (256 chars) and outcome", async () => {
    const { id, key } = await createKey("zakgt", {
      account: "usr_demo",
      scopes: ["users"],
      limit_override: { windows: { standard: { limit: 1 } } },
    });
    const agent = `agent/${"x".repeat(400)}`;
    const from = { "CF-Connecting-IP": "2001:db8::7", "User-Agent": agent };
    const admitted = await call("/zakgt/api/v1/users/me?secret=1", {
      headers: { ...bearer(key), ...from, "X-Request-Id": "usage-fields-admitted" },
      cf: { country: "NL", asn: 64500 },
    } as RequestInit);
    expect(admitted.status).toBe(200);
    expect((await call("/zakgt/api/v1/ai/usage/history", { headers: bearer(key) })).status).toBe(403);
    expect((await call("/zakgt/api/v1/users/me", { headers: bearer(key) })).status).toBe(429);
    const revoked = await createKey("zakgt", { account: "usr_demo" });
    await admin(`/keys/${revoked.id}/revoke`, { method: "POST" });
    expect((await call("/zakgt/api/v1/users/me", { headers: bearer(revoked.key) })).status).toBe(401);

    const calls = await listUsage(env, id, { limit: 10 });
    expect(calls.map((c) => [c.status, c.outcome])).toEqual([
      [429, "rate_limited"],
      [403, "forbidden"],
      [200, "admitted"],
    ]);
    expect((await listUsage(env, revoked.id, { limit: 10 })).map((c) => [c.status, c.outcome])).toEqual([[401, "invalid_credential"]]);
    expect(calls[2]).toMatchObject({
      method: "GET",
      path: "/api/v1/users/me",
      requestId: "usage-fields-admitted",
      clientAddress: "2001:db8::7",
      country: "NL",
      asn: 64500,
      userAgent: agent.slice(0, 256),
    });
    expect(JSON.stringify(await batchesOf(id))).not.toContain(key);
  });
});

describe("last_used_at", () => {
  it("is the key's last admitted call: refused calls leave it", async () => {
    const { id, key, account } = await createKey("zakgt", { account: "usr_other" });
    expect((await json(await admin(`/keys/${id}`))).last_used_at).toBeNull();
    expect((await call("/zakgt/api/v1/users/me", { headers: bearer(key) })).status).toBe(200);
    const lastUse = (await json(await admin(`/keys/${id}`))).last_used_at;
    expect(Date.parse(lastUse)).toBeGreaterThan(Date.now() - 60_000);

    await new Promise((r) => setTimeout(r, 5));
    await admin(`/keys/${id}/revoke`, { method: "POST" });
    expect((await call("/zakgt/api/v1/users/me", { headers: bearer(key) })).status).toBe(401);
    expect((await listUsage(env, id, { limit: 10 }))[0]!.outcome).toBe("invalid_credential");
    expect((await json(await admin(`/keys/${id}`))).last_used_at).toBe(lastUse);
    const listed = (await json(await admin(`/keys?product=zakgt&account=${account}`))).keys;
    expect(listed.find((k: { id: string }) => k.id === id).last_used_at).toBe(lastUse);
  });
});

/** A batch as another isolate would have written it. */
async function insertBatch(keyId: string, batch: string, calls: Partial<UsageCall>[]) {
  const full = calls.map(
    (c) =>
      ({
        method: "GET",
        path: "/p",
        status: 200,
        requestId: "r",
        clientAddress: null,
        country: null,
        asn: null,
        userAgent: null,
        outcome: "admitted",
        at: 0,
        ...c,
      }) as UsageCall,
  );
  const row = encodeBatch(keyId, batch, full);
  await env.DB.prepare(
    "INSERT INTO key_usage_batches (key_id, first_at, batch, last_at, last_admitted_at, calls) VALUES (?, ?, ?, ?, ?, ?)",
  )
    .bind(row.key_id, row.first_at, row.batch, row.last_at, row.last_admitted_at, row.calls)
    .run();
}

describe("reading a key's history", () => {
  it("calls from isolates whose batches overlap come out newest first, through every page", async () => {
    const token = await login();
    const { id } = await ownKey(token);
    const t = Date.UTC(2030, 0, 1);
    // Two isolates flushing the same key over the same seconds, and an older batch.
    await insertBatch(
      id,
      "isolateA",
      [0, 2_000, 4_000, 9_000].map((dt) => ({ at: t + dt, requestId: `a+${dt}` })),
    );
    await insertBatch(
      id,
      "isolateB",
      [1_000, 3_000, 3_000, 8_000].map((dt, i) => ({ at: t + dt, requestId: `b+${dt}.${i}` })),
    );
    await insertBatch(id, "older", [{ at: t - 120_000, requestId: "old" }]);
    const newestFirst = ["a+9000", "b+8000.3", "a+4000", "b+3000.2", "b+3000.1", "a+2000", "b+1000.0", "a+0", "old"];
    for (const limit of [1, 2, 3, 100]) expect(await listedRequestIds(token, id, limit), `limit ${limit}`).toEqual(newestFirst);
    // The batch that started last is not the one that ended last.
    const listed = (await json(await call(KEYS, { headers: bearer(token) }))).data.keys.find((k: { id: string }) => k.id === id);
    expect(listed.last_used_at).toBe(new Date(t + 9_000).toISOString());

    const window = await listUsage(env, id, { limit: 10, since: t + 2_000, until: t + 8_000 });
    expect(window.map((c) => c.requestId)).toEqual(["b+8000.3", "a+4000", "b+3000.2", "b+3000.1", "a+2000"]);
    const afterFirst = await listUsage(env, id, { limit: 2, since: t + 2_000, after: window[0]!.position });
    expect(afterFirst.map((c) => c.requestId)).toEqual(["a+4000", "b+3000.2", "b+3000.1"]);
  });

  it("an unknown cursor shape is a 400, as before", async () => {
    const token = await login();
    const { id } = await ownKey(token);
    const legacyCursor = btoa(JSON.stringify({ i: 5 })).replace(/=+$/, "");
    const response = await call(`${KEYS}/${id}/usage?cursor=${legacyCursor}`, { headers: bearer(token) });
    expect(response.status).toBe(400);
    expect(await json(response)).toEqual({ detail: "Invalid cursor" });
  });
});

describe("retention", () => {
  async function runCron(at: number) {
    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ scheduledTime: at, cron: "17 * * * *" }), env, ctx);
    await waitOnExecutionContext(ctx);
  }

  it("the cron deletes whole batches whose last call is past USAGE_RETENTION_DAYS; the key's last use stays", async () => {
    const { id } = await createKey("zakgt");
    const t = Date.UTC(2001, 0, 1);
    const cutoff = t + 86_400_000;
    await insertBatch(id, "expired", [{ at: t }, { at: t + 5_000, outcome: "rate_limited" }]);
    await insertBatch(id, "straddles", [
      { at: cutoff - 10_000, outcome: "refused" },
      { at: cutoff + 10_000, outcome: "refused" },
    ]);
    await runCron(cutoff + 90 * 86_400_000);
    expect((await listUsage(env, id, { limit: 10 })).map((c) => c.at)).toEqual([cutoff + 10_000, cutoff - 10_000]);
    expect((await json(await admin(`/keys/${id}`))).last_used_at).toBe(new Date(t).toISOString());
  });
});
