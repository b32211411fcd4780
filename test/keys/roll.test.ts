import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { useTestClock } from "../clock";
import { admin, call, createKey, json, keyHeaders, limitOverrides } from "../helpers";
import { zskyClient } from "../results/zsky-client";

const usage = (key: string) => call("/zsky/v1/usage", { headers: keyHeaders("zsky", key) });
const rotate = (key: string) => call("/zsky/v1/keys/rotate", { method: "POST", headers: keyHeaders("zsky", key) });
const restartGuard = (product: string, account: string) =>
  expect(
    runInDurableObject(env.ACCOUNT_GUARD.get(env.ACCOUNT_GUARD.idFromName(`${product}:${account}`)), (_guard, state) =>
      state.abort("restart"),
    ),
  ).rejects.toThrow("restart");
// A day in the middle of a month, 12:00 UTC, next year: the test clock (test/clock.ts) runs ahead of the real one.
const NOON = Date.UTC(new Date().getUTCFullYear() + 1, 10, 18, 12, 0, 0);
const agents = (key: string) => call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key) });

describe("POST /admin/v1/keys/{id}/roll", () => {
  it("issues a successor that inherits the key, shown once; the old key works until the grace ends on the guard's clock", async () => {
    const clock = useTestClock();
    const old = await createKey("zsky", {
      label: "render farm",
      plan: "pro",
      scopes: ["images", "usage"],
      limit_override: { daily_per_key: { image: 7 } },
    });
    const response = await admin(`/keys/${old.id}/roll`, { json: { expire_old_in_seconds: 3600, reason: "scheduled", ticket: "OPS-1" } });
    expect(response.status).toBe(201);
    const body = await json(response);
    expect(body.key.startsWith("zsky_live_")).toBe(true);
    expect(body).toMatchObject({
      account: old.account,
      label: "render farm",
      plan: "pro",
      scopes: ["images", "usage"],
      limit_override: { daily_per_key: { image: 7 } },
      replaces: old.id,
      status: "active",
      expires_at: null,
      old_key: { id: old.id, status: "active" },
    });
    const endsAt = Date.parse(body.old_key_ends_at);
    expect(body.old_key.expires_at).toBe(body.old_key_ends_at);
    expect(endsAt).toBe(clock.now() + 3_600_000);
    expect((await json(await admin(`/keys/${body.id}`))).key).toBeUndefined();

    expect((await usage(old.key)).status).toBe(200);
    expect((await usage(body.key)).status).toBe(200);
    await clock.advanceTo(endsAt - 1);
    expect((await usage(old.key)).status).toBe(200);
    await clock.advanceTo(endsAt);
    expect((await usage(old.key)).status).toBe(401);
    expect((await usage(body.key)).status).toBe(200);

    const audit = (await json(await admin(`/audit?target=${old.id}`))).entries;
    expect(audit[0]).toMatchObject({
      actor: "admin:token",
      action: "key.roll",
      detail: { replaced_by: body.id, old_key_ends_at: endsAt, reason: "scheduled", ticket: "OPS-1" },
    });
  });

  it("the two keys share one set of counters during the grace period", async () => {
    const old = await createKey("zsky", { limit_override: { windows: { burst: { limit: 3 } } } });
    expect((await usage(old.key)).status).toBe(200);
    expect((await usage(old.key)).status).toBe(200);
    const rolled = await json(await admin(`/keys/${old.id}/roll`, { json: { expire_old_in_seconds: 600 } }));
    expect((await usage(rolled.key)).status).toBe(200);
    expect((await usage(rolled.key)).status).toBe(429);
    expect((await usage(old.key)).status).toBe(429);
  });

  it("the shared counting and the grace period's end survive a restart of the guard", async () => {
    const clock = useTestClock();
    const old = await createKey("zsky", { limit_override: { windows: { burst: { limit: 4 } } } });
    expect((await usage(old.key)).status).toBe(200);
    const rolled = await json(await admin(`/keys/${old.id}/roll`, { json: { expire_old_in_seconds: 600 } }));
    const guard = () => env.ACCOUNT_GUARD.get(env.ACCOUNT_GUARD.idFromName(`zsky:${old.account}`));
    await expect(runInDurableObject(guard(), (_guard, state) => state.abort("restart"))).rejects.toThrow("restart");
    // Counted apart, the two keys would get 3 + 4 more; together, at most the 3 left (a restart only ever counts more).
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await usage(old.key)).status, (await usage(rolled.key)).status);
    expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(3);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(1);
    expect(statuses.filter((s) => s !== 200).every((s) => s === 429)).toBe(true);
    await clock.advanceTo(Date.parse(rolled.old_key_ends_at));
    expect((await usage(old.key)).status).toBe(401);
  });

  it("never past the old key's own expiry, which the successor inherits; 0 stops the old key at once", async () => {
    const expires = new Date(Date.now() + 3_600_000).toISOString();
    const old = await createKey("zappway", { expires_at: expires });
    const rolled = await json(await admin(`/keys/${old.id}/roll`, { json: { expire_old_in_seconds: 86_400 } }));
    expect(rolled.expires_at).toBe(expires);
    expect(rolled.old_key_ends_at).toBe(expires);

    const now = await createKey("zappway");
    const cut = await admin(`/keys/${now.id}/roll`, { json: { expire_old_in_seconds: 0 } });
    expect(cut.status).toBe(201);
    expect((await agents(now.key)).status).toBe(401);
    expect((await agents((await json(cut)).key)).status).toBe(200);
  });

  it("a leak of the old key later revokes it but not the successor the admin rolled to", async () => {
    const old = await createKey("zsky");
    const rolled = await json(await admin(`/keys/${old.id}/roll`, { json: { expire_old_in_seconds: 3600 } }));
    const leaked = await json(await admin("/keys/revoke-leaked", { json: { key: old.key } }));
    expect(leaked.revoked.map((r: { id: string }) => r.id)).toEqual([old.id]);
    expect(leaked.kept).toEqual([{ id: rolled.id, replaces: old.id, why: "rolled_by_admin", status: "active", result_links_revoked: 0 }]);
    expect(leaked.already_rotated).toBe(true);
    expect((await usage(old.key)).status).toBe(401);
    expect((await usage(rolled.key)).status).toBe(200);
  });

  it("400 on a bad grace period, 404 for an unknown key, 409 for a revoked one", async () => {
    const { id } = await createKey("zsky");
    for (const body of [
      {},
      { expire_old_in_seconds: -1 },
      { expire_old_in_seconds: 2_592_001 },
      { expire_old_in_seconds: "60" },
      { expire_old_in_seconds: 1.5 },
      { expire_old_in_seconds: 60, label: "x" },
    ]) {
      const response = await admin(`/keys/${id}/roll`, { json: body });
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect((await json(response)).error.code).toBe("BAD_REQUEST");
    }
    expect((await admin(`/keys/${id}/roll`, { json: { expire_old_in_seconds: 2_592_000 } })).status).toBe(201);
    expect((await admin("/keys/key_nope/roll", { json: { expire_old_in_seconds: 60 } })).status).toBe(404);
    const revoked = await createKey("zsky");
    await admin(`/keys/${revoked.id}/revoke`, { method: "POST" });
    const refused = await admin(`/keys/${revoked.id}/roll`, { json: { expire_old_in_seconds: 60 } });
    expect(refused.status).toBe(409);
    expect((await json(refused)).error.code).toBe("CONFLICT");
  });
});

describe("a chain of rolls and rotations shares one set of counters, however it was made", () => {
  /** `keys` take turns, `n` calls in all; the statuses in order. */
  async function alternate(keys: string[], n: number, send: (key: string) => Promise<Response> = usage): Promise<number[]> {
    const statuses: number[] = [];
    for (let i = 0; i < n; i++) statuses.push((await send(keys[i % keys.length]!)).status);
    return statuses;
  }
  const admitted = (statuses: number[]) => statuses.filter((s) => s === 200).length;

  it("roll A->B with grace, then the customer rotates B->C: A and C share the 20/min burst", async () => {
    const a = await createKey("zsky");
    expect((await usage(a.key)).status).toBe(200);
    const b = await json(await admin(`/keys/${a.id}/roll`, { json: { expire_old_in_seconds: 3600 } }));
    const rotated = await rotate(b.key);
    expect(rotated.status).toBe(200);
    const c = (await json(rotated)).key as string;
    // 2 of the burst's 20 used (a call, the rotation); apart, A would get 20 more and C 18.
    const statuses = await alternate([a.key, c], 40);
    expect(admitted(statuses)).toBe(18);
    expect(statuses.filter((s) => s !== 200).every((s) => s === 429)).toBe(true);
    expect((await usage(b.key)).status).toBe(401);
  });

  it("the chain survives guard restarts between the roll, the rotation and the calls", async () => {
    const a = await createKey("zsky");
    expect((await usage(a.key)).status).toBe(200);
    const b = await json(await admin(`/keys/${a.id}/roll`, { json: { expire_old_in_seconds: 3600 } }));
    await restartGuard("zsky", a.account);
    const c = (await json(await rotate(b.key))).key as string;
    await restartGuard("zsky", a.account);
    // Together at most the 18 left (a restart only ever counts more); apart, A alone would get 20.
    const statuses = await alternate([a.key, c], 40);
    expect(admitted(statuses)).toBeLessThanOrEqual(18);
    expect(admitted(statuses)).toBeGreaterThanOrEqual(1);
    expect(statuses.filter((s) => s !== 200).every((s) => s === 429)).toBe(true);
  });

  it("two admin rolls A->B->C: the three keys share the 20/min burst", async () => {
    const a = await createKey("zsky");
    const b = await json(await admin(`/keys/${a.id}/roll`, { json: { expire_old_in_seconds: 3600 } }));
    const c = await json(await admin(`/keys/${b.id}/roll`, { json: { expire_old_in_seconds: 3600 } }));
    const statuses = await alternate([a.key, b.key, c.key], 60);
    expect(admitted(statuses)).toBe(20);
    expect(statuses.filter((s) => s !== 200).every((s) => s === 429)).toBe(true);
  });

  it("the customer rotates the grace key itself: the new key joins the chain, shares its burst and ends with the grace period", async () => {
    const a = await createKey("zsky");
    const b = await json(await admin(`/keys/${a.id}/roll`, { json: { expire_old_in_seconds: 3600 } }));
    const rotated = await json(await rotate(a.key));
    expect(Date.parse((await json(await admin(`/keys/${rotated.key_id}`))).expires_at)).toBe(Date.parse(b.old_key_ends_at));
    // The rotation used 1 of the 20.
    const statuses = await alternate([b.key, rotated.key], 40);
    expect(admitted(statuses)).toBe(19);
    expect(statuses.filter((s) => s !== 200).every((s) => s === 429)).toBe(true);
  });

  it("roll then rotate: the grace key and the rotated successor share one daily cap", async () => {
    const a = await createKey("zsky", { limit_override: { daily_per_key: { image: 2 } } });
    useTestClock(NOON);
    const b = await json(await admin(`/keys/${a.id}/roll`, { json: { expire_old_in_seconds: 3600 } }));
    const c = (await json(await rotate(b.key))).key as string;
    const submit = (key: string) => zskyClient(key, {}).submit("images", { prompt: "a lighthouse" });
    const statuses = await alternate([a.key, c], 4, submit);
    expect(admitted(statuses)).toBe(2);
    expect(statuses.filter((s) => s !== 200).every((s) => s === 429)).toBe(true);
  });

  it("roll then rotate: a suspension of the rotated successor refuses the grace key too, and lifting it on either key lifts both", async () => {
    const a = await createKey("zsky");
    useTestClock(NOON);
    const b = await json(await admin(`/keys/${a.id}/roll`, { json: { expire_old_in_seconds: 3600 } }));
    const rotated = await json(await rotate(b.key));
    const settings = limitOverrides({ zsky: { windows: { burst: { limit: 10_000 } }, generation: { concurrentJobsPerKey: 100 } } });
    const c = zskyClient(rotated.key, settings);
    // ZSky's rule: more than half of 10 attempts blocked by the safety filter.
    for (let i = 0; i < 10; i++)
      expect((await c.submit("images", { prompt: i < 6 ? "blocked-at-submit" : "fine" })).status).toBe(i < 6 ? 451 : 200);
    expect((await c.usage()).status).toBe(403);
    const graceKey = zskyClient(a.key, settings);
    const refused = await graceKey.usage();
    expect(refused.status).toBe(403);
    expect(await json(refused)).toEqual({ error: "API key suspended" });
    expect((await graceKey.submit("images", { prompt: "fine" })).status).toBe(403);

    expect(await json(await admin(`/keys/${a.id}/lift-suspension`, { method: "POST" }))).toEqual({ id: a.id, was_suspended: true });
    expect((await graceKey.usage()).status).toBe(200);
    expect((await c.usage()).status).toBe(200);
  });
});
