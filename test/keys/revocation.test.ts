import { createExecutionContext, env, runDurableObjectAlarm, waitOnExecutionContext } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import worker from "../../src/index";
import { useTestClock, type TestClock } from "../clock";
import { ADMIN_TOKEN, admin, bearer, call, createKey, json, keyHeaders, newUser, race, someIp } from "../helpers";

describe("instant revocation under concurrency", () => {
  it("admin revoke of a ZSky key: zero admitted after it returns", async () => {
    const { id, key } = await createKey("zsky");
    const results = await race(
      () => call("/zsky/v1/jobs/nope", { headers: keyHeaders("zsky", key) }),
      () => admin(`/keys/${id}/revoke`, { method: "POST" }),
    );
    const after = results.filter((r) => r.startedAfterRevoke);
    expect(after.length).toBeGreaterThanOrEqual(50);
    expect(after.filter((r) => r.status !== 401)).toEqual([]);
    // Before the revoke, the key was admitted (the origin answered 404 for the made-up job).
    expect(results.some((r) => !r.startedAfterRevoke && r.status === 404)).toBe(true);
  });

  it("revoke-leaked of a ZappWay key", async () => {
    const { key } = await createKey("zappway");
    const results = await race(
      () => call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key) }),
      () => admin("/keys/revoke-leaked", { json: { key } }),
    );
    expect(results.filter((r) => r.startedAfterRevoke && r.status !== 401)).toEqual([]);
  });

  it("logout of a ZakGT session", async () => {
    const token = await (await newUser()).login();
    const results = await race(
      () => call("/zakgt/api/v1/users/me", { headers: bearer(token) }),
      () => call("/zakgt/api/v1/auth/logout", { method: "POST", headers: bearer(token) }),
    );
    expect(results.filter((r) => r.startedAfterRevoke && r.status !== 401)).toEqual([]);
    expect(results.some((r) => !r.startedAfterRevoke && r.status === 200)).toBe(true);
  });

  it("revoking all of a user's sessions", async () => {
    const user = await newUser();
    const tokens = [await user.login(), await user.login()];
    let n = 0;
    const results = await race(
      () => call("/zakgt/api/v1/users/me", { headers: bearer(tokens[n++ % 2]!) }),
      () => admin(`/users/${user.userId}/revoke-sessions`, { json: {} }),
    );
    expect(results.filter((r) => r.startedAfterRevoke && r.status !== 401)).toEqual([]);
  });

  it("a warm KV entry cannot keep a revoked key alive", async () => {
    const { id, key } = await createKey("zappway");
    // Warm every cache on the path.
    for (let i = 0; i < 3; i++) expect((await call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key) })).status).toBe(200);
    await admin(`/keys/${id}/revoke`, { method: "POST" });
    expect((await call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key) })).status).toBe(401);
    expect((await json(await admin(`/keys/${id}`))).status).toBe("revoked");
  });
});

describe("what the guard decided reaches D1 and the audit log even if the call that asked dies", () => {
  let clock: TestClock;
  beforeEach(() => {
    clock = useTestClock();
  });
  /** D1 failing every statement that matches `pattern`: the call that writes one dies there, after the guard decided. */
  function d1FailingOn(pattern: RegExp): D1Database {
    const failing = new Set<unknown>();
    const fail = () => Promise.reject(new Error("D1 went away"));
    return new Proxy(env.DB, {
      get(target, prop) {
        if (prop === "prepare")
          return (sql: string) => {
            if (!pattern.test(sql)) return target.prepare(sql);
            const statement = { bind: () => statement, run: fail, first: fail, all: fail };
            failing.add(statement);
            return statement;
          };
        if (prop === "batch")
          return (statements: D1PreparedStatement[]) => (statements.some((s) => failing.has(s)) ? fail() : target.batch(statements));
        const value = Reflect.get(target, prop) as unknown;
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  }
  /** A POST through the Worker's fetch handler with that D1 (its 500 is no documented answer, so not through `call`). */
  async function dyingCall(path: string, DB: D1Database, body?: unknown, headers: Record<string, string> = {}): Promise<Response> {
    const ctx = createExecutionContext();
    const request = new Request(`http://localhost${path}`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "CF-Connecting-IP": someIp(), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const response = await worker.fetch(request, { ...env, DB }, ctx);
    await waitOnExecutionContext(ctx);
    return response;
  }
  const dyingAdmin = (path: string, DB: D1Database, body?: unknown) =>
    dyingCall(`/admin/v1${path}`, DB, body, { Authorization: `Bearer ${ADMIN_TOKEN}` });
  /** Past the outbox's grace period, its alarm runs. */
  async function guardAlarmLater(product: string, account: string) {
    await clock.advance(31_000);
    expect(await runDurableObjectAlarm(env.ACCOUNT_GUARD.get(env.ACCOUNT_GUARD.idFromName(`${product}:${account}`)))).toBe(true);
  }
  const auditOf = async (keyId: string) => (await json(await admin(`/audit?target=${keyId}`))).entries as Record<string, any>[];

  it("a revoke: the edge refuses the key at once, and the guard's alarm records it in D1 and the audit log", async () => {
    const { id, key, account } = await createKey("zappway");
    expect((await call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key) })).status).toBe(200);
    const dead = await dyingAdmin(`/keys/${id}/revoke`, d1FailingOn(/UPDATE api_keys SET revoked_at/), {
      reason: "leaked in a gist",
      ticket: "SEC-9",
    });
    expect(dead.status).toBe(500);
    expect((await call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key) })).status).toBe(401);
    expect(await json(await admin(`/keys/${id}`))).toMatchObject({ status: "active" });
    expect((await auditOf(id)).filter((e) => e.action === "key.revoke")).toEqual([]);

    await guardAlarmLater("zappway", account);
    expect(await json(await admin(`/keys/${id}`))).toMatchObject({
      status: "revoked",
      revoked_by: "admin:token",
      revoke_reason: "leaked in a gist",
      revoke_ticket: "SEC-9",
    });
    const revokes = (await auditOf(id)).filter((e) => e.action === "key.revoke");
    expect(revokes).toHaveLength(1);
    expect(revokes[0]).toMatchObject({
      actor: "admin:token",
      detail: { already_revoked: false, reason: "leaked in a gist", ticket: "SEC-9", completed_by: "guard" },
    });
    // Delivered, so the outbox is empty: no alarm is left to come.
    expect(await runDurableObjectAlarm(env.ACCOUNT_GUARD.get(env.ACCOUNT_GUARD.idFromName(`zappway:${account}`)))).toBe(false);
  });

  it("before its account's guard exists, a revoke and its audit entry are one D1 transaction: a call dying on the audit write changed nothing", async () => {
    const { id, key } = await createKey("zappway");
    const dead = await dyingAdmin(`/keys/${id}/revoke`, d1FailingOn(/INSERT INTO audit_log/), { reason: "leaked in a gist" });
    expect(dead.status).toBe(500);
    expect(await json(await admin(`/keys/${id}`))).toMatchObject({ status: "active" });
    expect((await call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key) })).status).toBe(200);
    // Asked again (its guard exists now: the guard's way), it is revoked and recorded once.
    expect((await admin(`/keys/${id}/revoke`, { method: "POST", json: { reason: "leaked in a gist" } })).status).toBe(200);
    expect((await auditOf(id)).filter((e) => e.action === "key.revoke")).toHaveLength(1);
  });
  it("a roll: the old key's end set by the guard reaches D1, with both audit entries", async () => {
    const { id, key, account } = await createKey("zsky");
    // Used once: its guard exists, so the roll is the guard's (before, D1 decides it: guard-placement.test.ts).
    expect((await call("/zsky/v1/usage", { headers: keyHeaders("zsky", key) })).status).toBe(200);
    const dead = await dyingAdmin(`/keys/${id}/roll`, d1FailingOn(/UPDATE api_keys SET expires_at/), { expire_old_in_seconds: 3600 });
    expect(dead.status).toBe(500);
    expect(await json(await admin(`/keys/${id}`))).toMatchObject({ status: "active", expires_at: null });

    await guardAlarmLater("zsky", account);
    const old = await json(await admin(`/keys/${id}`));
    const endsAt = Date.parse(old.expires_at);
    expect(endsAt).toBeGreaterThan(Date.now() + 3_500_000);
    const roll = (await auditOf(id)).find((e) => e.action === "key.roll")!;
    expect(roll.detail).toMatchObject({ old_key_ends_at: endsAt });
    const created = await json(await admin(`/audit?target=${roll.detail.replaced_by}`));
    expect(created.entries.map((e: { action: string }) => e.action)).toEqual(["key.create"]);
  });
  it("a ZSky rotation: the old key is recorded revoked, with the rotation's audit entries", async () => {
    const { id, key, account } = await createKey("zsky");
    const dead = await dyingCall("/zsky/v1/keys/rotate", d1FailingOn(/UPDATE api_keys SET revoked_at/), undefined, keyHeaders("zsky", key));
    expect(dead.status).toBe(500);
    expect((await call("/zsky/v1/usage", { headers: keyHeaders("zsky", key) })).status).toBe(401);
    expect(await json(await admin(`/keys/${id}`))).toMatchObject({ status: "active" });

    await guardAlarmLater("zsky", account);
    expect(await json(await admin(`/keys/${id}`))).toMatchObject({ status: "revoked", revoked_by: `key:${id}` });
    const rotate = (await auditOf(id)).find((e) => e.action === "key.rotate")!;
    expect(rotate.detail).toMatchObject({ completed_by: "guard" });
    const successor = await json(await admin(`/keys/${rotate.detail.replaced_by}`));
    expect(successor).toMatchObject({ status: "active", replaces: id });
    expect((await auditOf(successor.id)).map((e) => e.action)).toEqual(["key.create"]);
  });

  it("all of a user's keys: each recorded revoked, and the one audit entry names them", async () => {
    const { id, key, account } = await createKey("zakgt");
    const other = await createKey("zakgt", { account });
    // Used once, so its guard exists and decides (before that, D1 does, in one batch: guard-placement.test.ts).
    // (admitted: the origin has no such user)
    expect((await call("/zakgt/api/v1/users/me", { headers: keyHeaders("zakgt", key) })).status).toBe(404);
    const dead = await dyingAdmin(`/users/${account}/revoke-sessions`, d1FailingOn(/UPDATE api_keys SET revoked_at/), {
      revoke_keys: true,
    });
    expect(dead.status).toBe(500);
    expect(await json(await admin(`/keys/${id}`))).toMatchObject({ status: "active" });

    await guardAlarmLater("zakgt", account);
    for (const keyId of [id, other.id]) expect(await json(await admin(`/keys/${keyId}`))).toMatchObject({ status: "revoked" });
    const entries = (await json(await admin(`/audit?target=${account}&action=user.revoke_all`))).entries;
    expect(entries).toHaveLength(1);
    expect(entries[0].detail.keys_revoked.sort()).toEqual([id, other.id].sort());
  });
});
