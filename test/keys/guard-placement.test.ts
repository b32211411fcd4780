import { describe, expect, it } from "vitest";
import {
  admin,
  aroundGuards,
  bearer,
  call,
  createKey,
  freshAccount,
  json,
  keyHeaders,
  limitOverrides,
  newUser,
  race,
  someIp,
} from "../helpers";

/**
 * Where an account's guard lives (src/keys/guard-birth.ts): a Durable Object is placed near
 * its first caller, so no admin action on an account whose guard does not exist yet calls
 * (and so creates) it; the account's first request does, and the guard reads from D1 what
 * the admin actions decided meanwhile.
 */

/** Guard stubs that note `<object name> <method>` for every call made on them. */
const namingGuards = (calls: string[]) => aroundGuards((name, method, call) => (calls.push(`${name} ${method}`), call()));

const callsOn = (calls: string[], guard: string) => calls.filter((c) => c.startsWith(`${guard} `)).map((c) => c.slice(guard.length + 1));

describe("admin actions never decide where an account's guard lives", () => {
  it("creating, listing, limiting and lifting a key call no guard; the key's first request creates it, under the limits set meanwhile", async () => {
    const calls: string[] = [];
    const settings = { ACCOUNT_GUARD: namingGuards(calls) };
    const account = freshAccount();
    const created = await admin("/keys", { json: { product: "zsky", account }, settings });
    expect(created.status).toBe(201);
    const { id, key } = await json(created);
    expect((await admin(`/keys?product=zsky&account=${account}`, { settings })).status).toBe(200);
    const limited = await admin(`/keys/${id}`, {
      method: "PATCH",
      json: { limit_override: { windows: { burst: { limit: 7, window_seconds: 60 } } } },
      settings,
    });
    expect(limited.status).toBe(200);
    const lifted = await admin(`/keys/${id}/lift-suspension`, { method: "POST", settings });
    expect(await json(lifted)).toEqual({ id, was_suspended: false });
    expect(callsOn(calls, `zsky:${account}`)).toEqual([]);

    const used = await call("/zsky/v1/usage", { headers: keyHeaders("zsky", key), settings });
    expect(used.status).toBe(200);
    expect(callsOn(calls, `zsky:${account}`)).toEqual(["admit"]);
    expect(used.headers.get("RateLimit-Policy")).toBe('"burst";q=7;w=60');
    // Born now: the next key of the account is registered with it, and works.
    const second = await admin("/keys", { json: { product: "zsky", account }, settings });
    expect(callsOn(calls, `zsky:${account}`)).toEqual(["admit", "registerKey"]);
    expect((await call("/zsky/v1/usage", { headers: keyHeaders("zsky", (await json(second)).key), settings })).status).toBe(200);
  });

  it("rolling a key never used calls no guard; the guard its first request creates counts the old key as its successor until the grace ends", async () => {
    const calls: string[] = [];
    const settings = { ACCOUNT_GUARD: namingGuards(calls) };
    const old = await createKey("zsky", { limit_override: { windows: { burst: { limit: 3 } } } });
    const rolled = await admin(`/keys/${old.id}/roll`, { json: { expire_old_in_seconds: 600 }, settings });
    expect(rolled.status).toBe(201);
    const successor = await json(rolled);
    expect(callsOn(calls, `zsky:${old.account}`)).toEqual([]);
    const usage = (key: string) => call("/zsky/v1/usage", { headers: keyHeaders("zsky", key), settings });
    // One window of 3 for the two: the successor's limits, the old key counted as it.
    expect([(await usage(old.key)).status, (await usage(successor.key)).status, (await usage(old.key)).status]).toEqual([200, 200, 200]);
    expect((await usage(successor.key)).status).toBe(429);
    expect((await usage(old.key)).status).toBe(429);
    const record = await json(await admin(`/keys/${old.id}`));
    expect(Date.parse(record.expires_at) - Date.now()).toBeGreaterThan(590_000);
  });

  it("a key revoked before its guard exists is refused from the moment the revoke returns, recorded as any revoke, and a revoke racing a key's first requests admits nothing sent after it returned", async () => {
    const calls: string[] = [];
    const settings = { ACCOUNT_GUARD: namingGuards(calls) };
    const { id, key, account } = await createKey("zappway");
    const revoked = await admin(`/keys/${id}/revoke`, { method: "POST", json: { reason: "never used", ticket: "SEC-7" }, settings });
    expect(revoked.status).toBe(200);
    expect(callsOn(calls, `zappway:${account}`)).toEqual([]);
    const record = await json(await admin(`/keys/${id}`));
    expect(record.status).toBe("revoked");
    const audit = (await json(await admin(`/audit?target=${id}`))).entries as { action: string; detail: Record<string, unknown> }[];
    expect(audit.find((e) => e.action === "key.revoke")?.detail).toMatchObject({
      reason: "never used",
      ticket: "SEC-7",
      already_revoked: false,
    });
    // The account's first request creates its guard, which reads the key revoked.
    expect((await call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings })).status).toBe(401);
    expect(callsOn(calls, `zappway:${account}`)).toEqual(["admit"]);
    // Revoked again, now that its guard exists: the guard finds it revoked already.
    expect((await json(await admin(`/keys/${id}/revoke`, { method: "POST" }))).id).toBe(id);

    // A key's first requests racing its revoke: whichever makes the guard first, nothing sent after the revoke returned is admitted.
    const raced = await createKey("zappway");
    const results = await race(
      () => call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", raced.key) }),
      () => admin(`/keys/${raced.id}/revoke`, { method: "POST" }),
      120,
    );
    const after = results.filter((r) => r.startedAfterRevoke);
    expect(after.length).toBeGreaterThan(0);
    expect(after.filter((r) => r.status === 200)).toEqual([]);
  });

  it("the security team's revokes of a key never used (revoke-leaked, a public leak report) call no account guard, and it is refused at once", async () => {
    const calls: string[] = [];
    const settings = { ACCOUNT_GUARD: namingGuards(calls) };
    const leaked = await createKey("zsky");
    const answer = await json(await admin("/keys/revoke-leaked", { json: { key: leaked.key, reason: "in a gist" }, settings }));
    expect(answer.revoked).toEqual([expect.objectContaining({ id: leaked.id, already_revoked: false, result_links_revoked: 0 })]);
    const reported = await createKey("zappway");
    const report = await call("/security/v1/keys/report", {
      method: "POST",
      headers: { "Content-Type": "application/json", "CF-Connecting-IP": someIp() },
      body: JSON.stringify({ keys: [reported.key] }),
      settings,
    });
    expect(report.status).toBe(202);
    expect(callsOn(calls, `zsky:${leaked.account}`)).toEqual([]);
    expect(callsOn(calls, `zappway:${reported.account}`)).toEqual([]);
    expect((await call("/zsky/v1/usage", { headers: keyHeaders("zsky", leaked.key) })).status).toBe(401);
    expect((await call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", reported.key) })).status).toBe(401);
    expect((await json(await admin(`/audit?target=${reported.id}`))).entries[0]).toMatchObject({
      actor: "report:public",
      action: "key.revoke_leaked",
    });
  });

  it("an account's plan and ZSky overage set before its guard exists call no guard; its first requests are counted under them", async () => {
    const calls: string[] = [];
    const settings = { ACCOUNT_GUARD: namingGuards(calls) };
    const { key, account } = await createKey("zsky");
    const plan = await admin(`/accounts/zsky/${account}/plan`, {
      method: "PUT",
      json: { plan: null, limit_override: { windows: { burst: { limit: 5, window_seconds: 60 } } } },
      settings,
    });
    expect(plan.status).toBe(200);
    const overage = await admin(`/accounts/zsky/${account}/overage`, {
      method: "PUT",
      json: { enabled: true, monthly_cap_cents: 10 },
      settings,
    });
    expect(overage.status).toBe(200);
    expect(callsOn(calls, `zsky:${account}`)).toEqual([]);

    // One image a month included: the next ones are overage, within its 10 cents.
    const oneImage = {
      ...limitOverrides({ zsky: { generation: { monthlyPerAccount: { image: 1 }, concurrentJobsPerKey: 100 } } }),
      ...settings,
    };
    const generate = () =>
      call("/zsky/v1/images/generate", {
        method: "POST",
        headers: { ...keyHeaders("zsky", key), "Content-Type": "application/json" },
        body: '{"prompt":"a lighthouse"}',
        settings: oneImage,
      });
    const first = await generate();
    expect(first.status).toBe(200);
    expect(first.headers.get("RateLimit-Policy")).toBe('"burst";q=5;w=60');
    expect((await generate()).status).toBe(200);
    expect(callsOn(calls, `zsky:${account}`)[0]).toBe("admit");
  });

  it("a ZakGT user's sessions and keys revoked before the user's guard exists call no guard, and are refused from its first request", async () => {
    const calls: string[] = [];
    const settings = { ACCOUNT_GUARD: namingGuards(calls) };
    const user = await newUser();
    const token = await user.login();
    const { id, key } = await createKey("zakgt", { account: user.userId });
    const revoked = await admin(`/users/${user.userId}/revoke-sessions`, {
      json: { revoke_keys: true, reason: "account takeover" },
      settings,
    });
    expect(await json(revoked)).toEqual({ user_id: user.userId, sessions_revoked: true, keys_revoked: [id] });
    expect(callsOn(calls, `zakgt:${user.userId}`)).toEqual([]);

    expect((await call("/zakgt/api/v1/users/me", { headers: bearer(token), settings })).status).toBe(401);
    expect((await call("/zakgt/api/v1/users/me", { headers: bearer(key), settings })).status).toBe(401);
    expect(callsOn(calls, `zakgt:${user.userId}`)[0]).toBe("admit");
    expect((await json(await admin(`/keys/${id}`))).status).toBe("revoked");
    const audit = (await json(await admin(`/audit?target=${user.userId}`))).entries as {
      action: string;
      detail: Record<string, unknown>;
    }[];
    expect(audit.find((e) => e.action === "user.revoke_all")?.detail).toMatchObject({ reason: "account takeover", keys_revoked: [id] });

    // Sessions alone (the admin's revoke-sessions without keys), before the user's guard exists.
    const other = await newUser();
    const otherToken = await other.login();
    expect((await admin(`/users/${other.userId}/revoke-sessions`, { json: {}, settings })).status).toBe(200);
    expect(callsOn(calls, `zakgt:${other.userId}`)).toEqual([]);
    expect((await call("/zakgt/api/v1/users/me", { headers: bearer(otherToken), settings })).status).toBe(401);
  });
});
