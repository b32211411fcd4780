import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { admin, bearer, burst, call, createKey, json, keyHeaders, limitOverrides, login, mintToken, newUser } from "../helpers";
import { afterDrain, useTestClock } from "../clock";

/**
 * Who each window counts (docs/limits.md): ZakGT keys each their own windows and
 * sessions per user; ending a credential never waits on a window that credential can
 * fill; a session's plan follows its account tier; a ZappWay plan and its rate are the
 * organization's, shared by all its keys.
 */

const jsonHeaders = { "Content-Type": "application/json" };
const statuses = (responses: Response[]) => responses.map((r) => r.status);
const ok = (responses: Response[]) => statuses(responses).filter((s) => s === 200).length;

const me = (credential: string, settings?: Record<string, unknown>) =>
  call("/zakgt/api/v1/users/me", { headers: bearer(credential), settings });
const chat = (credential: string, settings?: Record<string, unknown>) =>
  call("/zakgt/api/v1/ai/chat", { method: "POST", headers: { ...bearer(credential), ...jsonHeaders }, body: '{"message":"hi"}', settings });
const revokeOwnKey = (token: string, id: string, settings?: Record<string, unknown>) =>
  call(`/zakgt/api/v1/developer/api-keys/${id}`, { method: "DELETE", headers: bearer(token), settings });
const logout = (token: string, settings?: Record<string, unknown>) =>
  call("/zakgt/api/v1/auth/logout", { method: "POST", headers: { ...bearer(token), ...jsonHeaders }, body: "{}", settings });

/** A `zak_live_` key the signed-in user makes for themselves. */
async function ownKey(token: string): Promise<{ id: string; key: string }> {
  const created = await call("/zakgt/api/v1/developer/api-keys", {
    method: "POST",
    headers: { ...bearer(token), ...jsonHeaders },
    body: "{}",
  });
  expect(created.status).toBe(201);
  const { id, key } = (await json(created)).data;
  return { id, key };
}

describe("ZakGT: ending a credential is never refused by a window that credential can fill", () => {
  it("a key that used up its standard window: its owner revokes it with a session (200), and it is 401 at once", async () => {
    const user = await newUser();
    const token = await user.login();
    const { id, key } = await ownKey(token);
    // On a test clock, without leases: the burst is one moment, counted exactly (early
    // 429s of leases under load are limits.md's, not this test's).
    const single = { GUARD_LEASE_MS: "0" };
    useTestClock();
    const used = await burst(310, () => me(key, single));
    expect(ok(used)).toBeLessThanOrEqual(300);
    expect((await me(key, single)).status).toBe(429);

    const revoked = await revokeOwnKey(token, id, single);
    expect(revoked.status).toBe(200);
    expect((await json(revoked)).data).toEqual({ id, status: "revoked" });
    expect((await me(key, single)).status).toBe(401);
  });

  it("a leaked session that used up the user's standard window: it can still log out, and the owner's other session revokes keys", async () => {
    const settings = limitOverrides({ zakgt: { windows: { standard: { limit: 5 } } } });
    const user = await newUser();
    const [leaked, owners] = [await user.login(), await user.login()];
    const { id, key } = await ownKey(owners);
    // The user's window of 5 held the key's creation; the leaked session takes the rest.
    expect(ok(await burst(8, () => me(leaked, settings)))).toBe(4);
    expect((await me(owners, settings)).status).toBe(429);

    expect((await revokeOwnKey(owners, id, settings)).status).toBe(200);
    expect((await me(key, settings)).status).toBe(401);
    const out = await logout(leaked, settings);
    expect(out.status).toBe(200);
    expect(out.headers.get("RateLimit-Policy")).toBe('"revocation";q=20;w=60');
    expect((await me(leaked, settings)).status).toBe(401);
  });

  it("deleting the account is not refused by a full standard window either", async () => {
    const settings = limitOverrides({ zakgt: { windows: { standard: { limit: 3 } } } });
    const user = await newUser();
    const token = await user.login();
    await burst(5, () => me(token, settings));
    expect((await me(token, settings)).status).toBe(429);
    const deleted = await call("/zakgt/api/v1/users/me", { method: "DELETE", headers: bearer(token), settings });
    expect(deleted.status).toBe(200);
    expect((await me(token, settings)).status).toBe(401);
  });

  it("their own small window is per credential: one session filling it leaves the user's other session untouched", async () => {
    const user = await newUser();
    const [first, second] = [await user.login(), await user.login()];
    const nope = await burst(20, () => revokeOwnKey(first, "key_doesnotexist"));
    expect(statuses(nope).every((s) => s === 404)).toBe(true);
    const limited = await revokeOwnKey(first, "key_doesnotexist");
    expect(limited.status).toBe(429);
    expect(await json(limited)).toEqual({ detail: "Rate limit exceeded" });
    expect(limited.headers.get("RateLimit")).toMatch(/^"revocation";r=0;t=\d+$/);
    expect((await revokeOwnKey(second, "key_doesnotexist")).status).toBe(404);
    // Nor did those calls count in the standard window.
    expect((await me(first)).headers.get("RateLimit")).toMatch(/^"standard";r=299;/);
  });

  it("an admin revokes a key that has used up every window it has", async () => {
    const settings = limitOverrides({ zakgt: { windows: { standard: { limit: 2 }, ai_chat_key: { limit: 1 } } } });
    const { id, key } = await createKey("zakgt", { account: `usr_${crypto.randomUUID().slice(0, 8)}` });
    await burst(3, () => me(key, settings));
    await burst(2, () => chat(key, settings));
    expect((await admin(`/keys/${id}/revoke`, { method: "POST", settings })).status).toBe(200);
    expect((await me(key, settings)).status).toBe(401);
  });
});

describe("ZakGT: programmatic calls are limited per key, session calls per user", () => {
  it("one key's full standard window leaves another key of the same user, and the user's sessions, their own", async () => {
    const settings = limitOverrides({ zakgt: { windows: { standard: { limit: 5 } } } });
    const user = await newUser();
    const first = await createKey("zakgt", { account: user.userId });
    const second = await createKey("zakgt", { account: user.userId });
    expect(ok(await burst(8, () => me(first.key, settings)))).toBe(5);
    expect((await chat(first.key, settings)).status).toBe(429);

    const other = await chat(second.key, settings);
    expect(other.status).toBe(200);
    expect(other.headers.get("RateLimit")).toBe('"ai_chat_key";r=29;t=60, "standard";r=4;t=60');
    const session = await me(await user.login(), settings);
    expect(session.status).toBe(200);
    expect(session.headers.get("RateLimit")).toBe('"standard";r=4;t=60');
  });
});

describe("ZakGT: session limits follow the account tier", () => {
  it("a session's verified tier claim picks its plan (Enterprise: standard 3000)", async () => {
    const enterprise = await me(await login("enterprise@zakgt.test", "enterprise-password"));
    expect(enterprise.status).toBe(200);
    expect(enterprise.headers.get("RateLimit-Policy")).toBe('"standard";q=3000;w=60');
    expect((await me(await login())).headers.get("RateLimit-Policy")).toBe('"standard";q=300;w=60');
    // Compared lower-cased; a value naming no plan is the base limits.
    expect((await me(await mintToken({ sub: "usr_demo", tier: "Enterprise" }))).headers.get("RateLimit-Policy")).toBe(
      '"standard";q=3000;w=60',
    );
    expect((await me(await mintToken({ sub: "usr_demo", tier: "platinum" }))).headers.get("RateLimit-Policy")).toBe(
      '"standard";q=300;w=60',
    );
    expect((await me(await mintToken({ sub: "usr_demo", tier: ["enterprise"] }))).headers.get("RateLimit-Policy")).toBe(
      '"standard";q=300;w=60',
    );
  });

  it("ZAKGT_TIER_CLAIM names the claim read", async () => {
    const settings = { ZAKGT_TIER_CLAIM: "zakgt_plan" };
    const named = await mintToken({ sub: "usr_demo", zakgt_plan: "enterprise" });
    const other = await mintToken({ sub: "usr_demo", tier: "enterprise" });
    expect((await me(named, settings)).headers.get("RateLimit-Policy")).toBe('"standard";q=3000;w=60');
    expect((await me(other, settings)).headers.get("RateLimit-Policy")).toBe('"standard";q=300;w=60');
  });

  it("an admin-set account plan applies to the user's sessions and keys from the next request, over the tier claim", async () => {
    const settings = limitOverrides({ zakgt: { plans: { pro: { standard: { limit: 600 } } } } });
    const userId = `usr_${crypto.randomUUID().slice(0, 8)}`;
    const session = await mintToken({ sub: userId, tier: "enterprise" });
    const { key } = await createKey("zakgt", { account: userId });
    const policy = async (credential: string) => (await me(credential, settings)).headers.get("RateLimit-Policy");
    expect(await policy(session)).toBe('"standard";q=3000;w=60');
    // The key takes the tier its owner's session presented.
    expect(await policy(key)).toBe('"standard";q=3000;w=60');

    const set = await admin(`/accounts/zakgt/${userId}/plan`, { method: "PUT", json: { plan: "pro" }, settings });
    expect(set.status).toBe(200);
    expect(await json(set)).toEqual({ product: "zakgt", account: userId, plan: "pro", limit_override: null });
    expect(await policy(session)).toBe('"standard";q=600;w=60');
    expect(await policy(key)).toBe('"standard";q=600;w=60');

    expect((await admin(`/accounts/zakgt/${userId}/plan`, { method: "PUT", json: { plan: null }, settings })).status).toBe(200);
    expect(await policy(session)).toBe('"standard";q=3000;w=60');
    expect(await policy(key)).toBe('"standard";q=3000;w=60');
    const audit = await json(await admin(`/audit?target=${userId}&action=account.set_plan`));
    expect(audit.entries.map((e: { detail: { plan: string | null } }) => e.detail.plan)).toEqual([null, "pro"]);
  });
});

describe("ZakGT: a user's keys follow the user's account tier", () => {
  it("an Enterprise user's own key gets the Enterprise limit, from the tier the user's sessions present, across a guard restart", async () => {
    const { userId } = await newUser();
    const { key } = await createKey("zakgt", { account: userId });
    expect((await me(key)).headers.get("RateLimit-Policy")).toBe('"standard";q=300;w=60');
    expect((await me(await mintToken({ sub: userId, tier: "enterprise" }))).headers.get("RateLimit-Policy")).toBe('"standard";q=3000;w=60');
    await expect(
      runInDurableObject(env.ACCOUNT_GUARD.get(env.ACCOUNT_GUARD.idFromName(`zakgt:${userId}`)), (_guard, state) => state.abort("restart")),
    ).rejects.toThrow("restart");
    const first = await me(key);
    expect(first.headers.get("RateLimit-Policy")).toBe('"standard";q=3000;w=60');
    // Past the base 300 in one minute: every one admitted. Sent in waves of 31, so that what
    // is measured is the limit, not how many requests at once a loaded machine's origin
    // simulator answers (one run of 310 at once under load 10 got 308 answers of 200).
    const answers: Response[] = [];
    for (let wave = 0; wave < 10; wave++) answers.push(...(await burst(31, () => me(key))));
    expect(statuses(answers).filter((s) => s !== 200)).toEqual([]);
    expect(answers).toHaveLength(310);
  });

  it("a session that presents no tier any more (a downgrade) takes its keys back to the base limit", async () => {
    const userId = `usr_${crypto.randomUUID().slice(0, 8)}`;
    const { key } = await createKey("zakgt", { account: userId });
    await me(await mintToken({ sub: userId, tier: "enterprise" }));
    expect((await me(key)).headers.get("RateLimit-Policy")).toBe('"standard";q=3000;w=60');
    await me(await mintToken({ sub: userId }));
    expect((await me(key)).headers.get("RateLimit-Policy")).toBe('"standard";q=300;w=60');
  });
});

describe("ZappWay: the plan and its rate are the organization's", () => {
  // On a test clock, without leases: a burst is one moment, counted exactly.
  const single = { GUARD_LEASE_MS: "0" };
  const agents = (key: string) => call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings: single });

  it("Free: 60 per minute for the whole organization, however many keys it holds", async () => {
    const first = await createKey("zappway");
    const keys = [first, ...(await Promise.all([1, 2, 3, 4].map(() => createKey("zappway", { account: first.account }))))];
    useTestClock();
    const responses = await burst(100, (i) => agents(keys[i % keys.length]!.key));
    expect(ok(responses)).toBe(60);
    expect(responses.find((r) => r.status === 200)!.headers.get("RateLimit-Policy")).toBe('"plan_rate";q=60;w=60');
  });

  it("an admin-set plan is every key's, whatever plan a key was made with; one window for all of them", async () => {
    const first = await createKey("zappway", { plan: "free" });
    const second = await createKey("zappway", { account: first.account, plan: "enterprise" });
    useTestClock();
    const set = await admin(`/accounts/zappway/${first.account}/plan`, { method: "PUT", json: { plan: "pro" } });
    expect(set.status).toBe(200);
    const a = await agents(first.key);
    const b = await agents(second.key);
    expect([a.headers.get("RateLimit-Policy"), b.headers.get("RateLimit-Policy")]).toEqual([
      '"plan_rate";q=300;w=60',
      '"plan_rate";q=300;w=60',
    ]);
    expect([a.headers.get("RateLimit"), b.headers.get("RateLimit")]).toEqual(['"plan_rate";r=299;t=60', '"plan_rate";r=298;t=60']);
  });

  it("Enterprise: the agreed rate is set once for the organization", async () => {
    const first = await createKey("zappway");
    const second = await createKey("zappway", { account: first.account });
    useTestClock();
    const body = { plan: "enterprise", limit_override: { windows: { plan_rate: { limit: 5, window_seconds: 10 } } } };
    const set = await admin(`/accounts/zappway/${first.account}/plan`, { method: "PUT", json: body });
    expect(set.status).toBe(200);
    expect(await json(set)).toEqual({ product: "zappway", account: first.account, ...body });
    const responses = await burst(8, (i) => agents([first, second][i % 2]!.key));
    expect(ok(responses)).toBe(5);
    expect(responses.find((r) => r.status === 429)!.headers.get("Retry-After")).toBe("10");
    expect(responses.find((r) => r.status === 200)!.headers.get("RateLimit-Policy")).toBe('"plan_rate";q=5;w=10');
  });

  it("a key's own override caps that key on the organization's window, leaving the rest to the others", async () => {
    const capped = await createKey("zappway", { limit_override: { windows: { plan_rate: { limit: 10 } } } });
    const other = await createKey("zappway", { account: capped.account });
    useTestClock();
    expect(ok(await burst(10, () => agents(other.key)))).toBe(10);
    expect((await agents(capped.key)).status).toBe(429);
    expect(ok(await burst(50, () => agents(other.key)))).toBe(50);
  });

  it("a plan change returns only once every lease out for the account has ended, and applies to the next request", async () => {
    const clock = useTestClock();
    const { id, key, account } = await createKey("zappway", { plan: "pro" });
    // What an isolate asks for when the key is hot (lease-book.ts): a lease of a second.
    const guard = env.ACCOUNT_GUARD.get(env.ACCOUNT_GUARD.idFromName(`zappway:${account}`));
    const leased = await guard.admit({
      product: "zappway",
      route: { scope: "agents", sessionOnly: false },
      credential: { via: "key", product: "zappway", keyId: id },
      accountId: account,
      limits: { windows: [{ name: "plan_rate", subject: "account", limit: 300, windowSeconds: 60 }] },
      lease: { want: 10, ttlMs: 1000 },
    });
    expect(leased.allow && leased.lease!.tokens).toBe(10);
    const leaseEnds = clock.now() + 1000;
    const body = { plan: "pro", limit_override: { windows: { plan_rate: { limit: 1 } } } };
    expect((await afterDrain(clock, () => admin(`/accounts/zappway/${account}/plan`, { method: "PUT", json: body }))).status).toBe(200);
    expect(clock.now()).toBe(leaseEnds);
    expect((await agents(key)).status).toBe(429);
  });

  it("a plan or window the product does not have is refused 400, in the admin envelope", async () => {
    const account = `org_${crypto.randomUUID().slice(0, 8)}`;
    const noPlan = await admin(`/accounts/zappway/${account}/plan`, { method: "PUT", json: { plan: "platinum" } });
    expect(noPlan.status).toBe(400);
    expect(await json(noPlan)).toEqual({
      error: { code: "BAD_REQUEST", message: "plan: zappway has no plan 'platinum' (plans: free, pro, enterprise)" },
    });
    const noWindow = await admin(`/accounts/zappway/${account}/plan`, {
      method: "PUT",
      json: { plan: "pro", limit_override: { windows: { burst: { limit: 5 } } } },
    });
    expect(noWindow.status).toBe(400);
    expect((await json(noWindow)).error.message).toBe("limit_override.windows: zappway has no window 'burst'");
    expect((await admin(`/accounts/zsky/${account}/plan`, { method: "PUT", json: { plan: "pro" } })).status).toBe(400);
    expect((await admin(`/accounts/zappway/${account}/plan`, { method: "PUT", json: {} })).status).toBe(400);
  });
});
