import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { listUsage } from "../../src/usage/usage-history";
import { APPEND_RETRIES_MS, BATCH_CHARS, CALLS_PER_BATCH, PENDING_CHARS } from "../../src/usage/usage-log";
import { usageLogFor } from "../../src/usage/usage-client";
import { COMPACT_AFTER_MS } from "../../src/usage/usage-log-object";
import { useTestClock } from "../clock";
import { admin, bearer, call, callLive, createKey, json, keyHeaders, login, someIp } from "../helpers";
import { appendBatch, countingUsageLogs, keyRef, usageBatches } from "../usage";

const KEYS = "/zakgt/api/v1/developer/api-keys";

async function ownKey(token: string): Promise<{ id: string; key: string }> {
  const created = await call(KEYS, { method: "POST", headers: { ...bearer(token), "Content-Type": "application/json" }, body: "{}" });
  return (await json(created)).data;
}

/**
 * Every call the developer API lists for the key, page by page. Leases off (a setting a
 * deployment may choose): one session's pages, one after another, would each wait out its
 * lease's refund in `call` (a lease life and the refund: about 0.3 s a page, 6 s for the
 * overlap test's 20 pages, past its 30 s under a loaded CI run), and leases are not what
 * these tests are about.
 */
async function listedRequestIds(token: string, keyId: string, limit: number): Promise<string[]> {
  const ids: string[] = [];
  let cursor = "";
  do {
    const path = `${KEYS}/${keyId}/usage?limit=${limit}${cursor && `&cursor=${cursor}`}`;
    const page = (await json(await call(path, { headers: bearer(token), settings: { GUARD_LEASE_MS: "0" } }))).data;
    ids.push(...page.items.map((u: { request_id: string }) => u.request_id));
    cursor = page.next_cursor ?? "";
  } while (cursor);
  return ids;
}

const batchesOf = usageBatches;

describe("key usage is written in batches", () => {
  it(`a hot key's ${CALLS_PER_BATCH} calls cost one append of one row to its account's usage log, and its per-call history is complete and in order`, async () => {
    const token = await login();
    const { id, key } = await ownKey(token);
    const appends: string[] = [];
    const settings = { USAGE_FLUSH_MS: "20000", USAGE_LOG: countingUsageLogs(appends) };
    const sent = Array.from({ length: CALLS_PER_BATCH }, (_, i) => `usage-hot-${String(i).padStart(4, "0")}`);
    // In waves of 16 at once: one after another, 256 calls outlasted USAGE_FLUSH_MS (20 s at
    // most) on a loaded machine, and its timer appended part of the batch.
    const waves: string[][] = [];
    for (let i = 0; i < CALLS_PER_BATCH - 1; i += 16) waves.push(sent.slice(i, Math.min(i + 16, CALLS_PER_BATCH - 1)));
    for (const wave of waves)
      await Promise.all(
        wave.map((requestId) => callLive("/zakgt/api/v1/users/me", { headers: { ...bearer(key), "X-Request-Id": requestId }, settings })),
      );
    // The last call's own waitUntil writes the key's batch; `call` waits for it.
    await call("/zakgt/api/v1/users/me", { headers: { ...bearer(key), "X-Request-Id": sent.at(-1)! }, settings });

    const { product, accountId } = await keyRef(id);
    expect(appends).toEqual([`${product}:${accountId}`]);
    expect(await batchesOf(id)).toHaveLength(1);
    // Every call, newest first: each wave after the one before it (within a wave, as they were answered).
    const listed = (await listedRequestIds(token, id, 100)).reverse();
    expect(listed).toHaveLength(CALLS_PER_BATCH);
    let at = 0;
    for (const wave of [...waves, [sent.at(-1)!]]) {
      expect(new Set(listed.slice(at, at + wave.length))).toEqual(new Set(wave));
      at += wave.length;
    }
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

  it("an isolate holds at most PENDING_CHARS of calls for all accounts together: past it, every account's calls are appended at once", async () => {
    const keys = await Promise.all(Array.from({ length: 5 }, () => createKey("zakgt")));
    const appends: string[] = [];
    const settings = { USAGE_FLUSH_MS: "20000", USAGE_LOG: countingUsageLogs(appends) };
    // Long paths (the origin answered 431 to 8,000 characters), so that fewer calls reach the bound.
    const path = `/zakgt/api/v1/users/${"u".repeat(6_500)}`;
    const perCall = path.length - "/zakgt".length + 160;
    const total = Math.ceil(PENDING_CHARS / perCall);
    // No key alone reaches its own row's limits: only the isolate's bound appends them.
    expect(Math.ceil(total / keys.length) * perCall).toBeLessThan(BATCH_CHARS);
    const send = (i: number) => ({ headers: bearer(keys[i % keys.length]!.key), settings });
    // Eight at a time: every call must come within USAGE_FLUSH_MS (20 s at most) or the timed
    // flush takes them first, and one by one they took 33 s in a loaded full run.
    for (let i = 0; i < total - 1; i += 8) {
      await Promise.all(Array.from({ length: Math.min(8, total - 1 - i) }, (_, j) => callLive(path, send(i + j))));
    }
    expect(appends).toEqual([]);
    await call(path, send(total - 1));

    expect(appends).toHaveLength(keys.length);
    const written = await Promise.all(keys.map(({ id }) => batchesOf(id)));
    expect(written.map((batches) => batches.length)).toEqual(keys.map(() => 1));
    expect(written.flat().reduce((n, b) => n + JSON.parse(b.calls).length, 0)).toBe(total);
  });

  it("a key's calls within USAGE_FLUSH_MS share one row", async () => {
    const token = await login();
    const { id, key } = await ownKey(token);
    const appends: string[] = [];
    // Long enough for three calls in a row on a loaded machine (at 300 ms a full npm test once
    // flushed the first two before the third came).
    const settings = { USAGE_FLUSH_MS: "2000", USAGE_LOG: countingUsageLogs(appends) };
    for (let i = 0; i < 3; i++)
      await callLive("/zakgt/api/v1/users/me", { headers: { ...bearer(key), "X-Request-Id": `usage-cold-000${i}` }, settings });
    await vi.waitFor(async () => expect(await batchesOf(id)).toHaveLength(1), { timeout: 10_000, interval: 100 });
    expect(appends).toHaveLength(1);
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

describe("appending to the account's usage log", () => {
  const agents = (key: string, requestId: string, settings: Record<string, unknown>) =>
    callLive("/zappway/api/v1/agents", { headers: { ...keyHeaders("zappway", key), "X-Request-Id": requestId }, settings });

  it("an append that fails is tried again, so its calls are not lost", async () => {
    const { id, key } = await createKey("zappway");
    const appends: string[] = [];
    const settings = { USAGE_LOG: countingUsageLogs(appends, 1) };
    const clock = useTestClock();
    const retry = clock.nextSleep();
    expect((await agents(key, "usage-retried", settings)).status).toBe(200);
    expect(await retry).toBe(clock.now() + APPEND_RETRIES_MS[0]!);
    await clock.advance(APPEND_RETRIES_MS[0]!);
    await vi.waitFor(async () => expect(await usageBatches(id)).toHaveLength(1), { timeout: 5_000, interval: 50 });
    expect(appends).toHaveLength(2);
    expect((await listUsage(env, await keyRef(id), { limit: 10 })).map((c) => c.requestId)).toEqual(["usage-retried"]);
  });

  it("an append that fails every try is logged with the calls it lost, never dropped silently", async () => {
    const { id, key } = await createKey("zappway");
    const errors = vi.spyOn(console, "error");
    const settings = { USAGE_LOG: countingUsageLogs([], Infinity) };
    const clock = useTestClock();
    for (const wait of APPEND_RETRIES_MS) {
      const retry = clock.nextSleep();
      if (wait === APPEND_RETRIES_MS[0]) expect((await agents(key, "usage-lost", settings)).status).toBe(200);
      await retry;
      await clock.advance(wait);
    }
    await vi.waitFor(() =>
      expect(errors.mock.calls.map((c) => String(c[0]))).toContainEqual(expect.stringContaining("usage_write_failed")),
    );
    const line = JSON.parse(errors.mock.calls.map((c) => String(c[0])).find((l) => l.includes("usage_write_failed"))!);
    expect(line).toMatchObject({ msg: "usage_write_failed", product: "zappway", calls: 1 });
    expect(line.lost_total).toBeGreaterThanOrEqual(1);
    expect(await usageBatches(id)).toEqual([]);
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

    const calls = await listUsage(env, await keyRef(id), { limit: 10 });
    expect(calls.map((c) => [c.status, c.outcome])).toEqual([
      [429, "rate_limited"],
      [403, "forbidden"],
      [200, "admitted"],
    ]);
    expect((await listUsage(env, await keyRef(revoked.id), { limit: 10 })).map((c) => [c.status, c.outcome])).toEqual([
      [401, "invalid_credential"],
    ]);
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
    expect((await listUsage(env, await keyRef(id), { limit: 10 }))[0]!.outcome).toBe("invalid_credential");
    expect((await json(await admin(`/keys/${id}`))).last_used_at).toBe(lastUse);
    const listed = (await json(await admin(`/keys?product=zakgt&account=${account}`))).keys;
    expect(listed.find((k: { id: string }) => k.id === id).last_used_at).toBe(lastUse);
  });
});

describe("reading a key's history", () => {
  it("calls from isolates whose batches overlap come out newest first, through every page", async () => {
    const token = await login();
    const { id } = await ownKey(token);
    const t = Date.UTC(2030, 0, 1);
    // Two isolates flushing the same key over the same seconds, and an older batch.
    await appendBatch(
      id,
      "isolateA",
      [0, 2_000, 4_000, 9_000].map((dt) => ({ at: t + dt, requestId: `a+${dt}` })),
    );
    await appendBatch(
      id,
      "isolateB",
      [1_000, 3_000, 3_000, 8_000].map((dt, i) => ({ at: t + dt, requestId: `b+${dt}.${i}` })),
    );
    await appendBatch(id, "older", [{ at: t - 120_000, requestId: "old" }]);
    const newestFirst = ["a+9000", "b+8000.3", "a+4000", "b+3000.2", "b+3000.1", "a+2000", "b+1000.0", "a+0", "old"];
    for (const limit of [1, 2, 3, 100]) expect(await listedRequestIds(token, id, limit), `limit ${limit}`).toEqual(newestFirst);
    // The batch that started last is not the one that ended last.
    const listed = (await json(await call(KEYS, { headers: bearer(token) }))).data.keys.find((k: { id: string }) => k.id === id);
    expect(listed.last_used_at).toBe(new Date(t + 9_000).toISOString());

    const window = await listUsage(env, await keyRef(id), { limit: 10, since: t + 2_000, until: t + 8_000 });
    expect(window.map((c) => c.requestId)).toEqual(["b+8000.3", "a+4000", "b+3000.2", "b+3000.1", "a+2000"]);
    const afterFirst = await listUsage(env, await keyRef(id), { limit: 2, since: t + 2_000, after: window[0]!.position });
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

describe("compaction to R2", () => {
  it("an hour after its first call an account's rows move to R2, and every read of its calls answers as before", async () => {
    const { id, key, account } = await createKey("zsky", { label: "archived" });
    const address = someIp();
    for (let i = 0; i < 5; i++) {
      const from = { "X-Request-Id": `archived-${i}`, "CF-Connecting-IP": i % 2 ? address : someIp(), "User-Agent": `sdk/${i}` };
      expect((await call("/zsky/v1/usage", { headers: { ...keyHeaders("zsky", key), ...from } })).status).toBe(200);
    }
    const ref = await keyRef(id);
    const pages = async () => {
      const first = await json(await admin(`/keys/${id}/usage?limit=2`));
      const second = await json(await admin(`/keys/${id}/usage?limit=2&cursor=${first.next_cursor}`));
      return [first, second];
    };
    const reads = async () => {
      const inAccount = await json(await admin(`/calls?product=zsky&account=${account}`));
      const byAddress = await json(await admin(`/calls?product=zsky&account=${account}&address=${address}`));
      return {
        pages: await pages(),
        exported: await (await admin(`/keys/${id}/usage/export?format=ndjson`)).text(),
        inAccount: [inAccount.calls, inAccount.keys],
        byAddress: [byAddress.calls, byAddress.keys],
        acrossAccounts: (await json(await admin(`/calls?address=${address}`))).calls,
        lastUsed: (await json(await admin(`/keys/${id}`))).last_used_at,
      };
    };
    const before = await reads();
    expect(before.pages[0].calls).toHaveLength(2);
    expect(before.byAddress[0]).toHaveLength(2);

    useTestClock(Date.now() + COMPACT_AFTER_MS + 1_000);
    expect(await runDurableObjectAlarm(usageLogFor(env, ref))).toBe(true);
    expect(await usageBatches(id)).toEqual([]);
    const archived = await env.RESULTS.list({ prefix: "usage/" });
    expect(archived.objects.length).toBeGreaterThan(0);
    expect(await reads()).toEqual(before);
  });
});

describe("retention", () => {
  it("archived calls past USAGE_RETENTION_DAYS leave the history and R2, by the object's alarm; the key's last use stays", async () => {
    const { id } = await createKey("zakgt");
    const t = Date.now();
    await appendBatch(id, "archived", [{ at: t }, { at: t + 5_000, outcome: "rate_limited" }]);
    const ref = await keyRef(id);
    const clock = useTestClock(t + COMPACT_AFTER_MS + 1_000);
    expect(await runDurableObjectAlarm(usageLogFor(env, ref))).toBe(true);
    const objects = (await env.RESULTS.list({ prefix: "usage/" })).objects.map((o) => o.key);
    const ours = await runInDurableObject(usageLogFor(env, ref), (_log, state) =>
      state.storage.sql
        .exec<{ object: string }>("SELECT object FROM segments")
        .toArray()
        .map((r) => r.object),
    );
    expect(ours).toHaveLength(1);
    expect(objects).toContain(ours[0]);
    expect((await listUsage(env, ref, { limit: 10 })).map((c) => c.at)).toEqual([t + 5_000, t]);

    await clock.advanceTo(t + 5_000 + 90 * 86_400_000 + 1);
    expect(await runDurableObjectAlarm(usageLogFor(env, ref))).toBe(true);
    expect(await listUsage(env, ref, { limit: 10 })).toEqual([]);
    expect(await env.RESULTS.head(ours[0]!)).toBeNull();
    expect((await json(await admin(`/keys/${id}`))).last_used_at).toBe(new Date(t).toISOString());
  });

  it("the account's usage log deletes whole batches whose last call is past USAGE_RETENTION_DAYS, by its alarm; the key's last use stays", async () => {
    const { id } = await createKey("zakgt");
    // Calls from now on, so the alarm they set is due only when the test moves the clock there.
    const t = Date.now();
    const cutoff = t + 86_400_000;
    await appendBatch(id, "expired", [{ at: t }, { at: t + 5_000, outcome: "rate_limited" }]);
    await appendBatch(id, "straddles", [
      { at: cutoff - 10_000, outcome: "refused" },
      { at: cutoff + 10_000, outcome: "refused" },
    ]);
    const ref = await keyRef(id);
    useTestClock(cutoff + 90 * 86_400_000);
    expect(await runDurableObjectAlarm(usageLogFor(env, ref))).toBe(true);
    expect((await listUsage(env, await keyRef(id), { limit: 10 })).map((c) => c.at)).toEqual([cutoff + 10_000, cutoff - 10_000]);
    expect((await json(await admin(`/keys/${id}`))).last_used_at).toBe(new Date(t).toISOString());
  });
});
