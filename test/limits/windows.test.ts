import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { useTestClock } from "../clock";
import { admin, bearer, burst, call, createKey, json, keyHeaders, limitOverrides, login } from "../helpers";

// On a test clock (test/clock.ts), which stands still unless a test moves it: a burst
// arrives at one moment. Without leases, so every request is decided by the guard and
// a burst is counted exactly to the request and the millisecond (leases.test.ts holds
// the leased requests to the same limits).
const single = { GUARD_LEASE_MS: "0" };
const agents = (key: string, settings: Record<string, unknown> = {}) =>
  call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings: { ...single, ...settings } });
const statuses = (responses: Response[]) => responses.map((r) => r.status);

describe("exact sliding windows", () => {
  it("far more than N concurrent requests at one key: exactly N admitted, every refusal with a correct Retry-After", async () => {
    useTestClock();
    const { key } = await createKey("zappway"); // Free plan: 60 per minute
    const responses = await burst(150, () => agents(key));
    expect(statuses(responses).filter((s) => s === 200)).toHaveLength(60);
    const refused = responses.filter((r) => r.status === 429);
    expect(refused).toHaveLength(90);
    for (const r of refused) {
      // All 60 admissions happened at T0: room opens exactly 60 s later.
      expect(r.headers.get("Retry-After")).toBe("60");
      expect(r.headers.get("RateLimit-Policy")).toBe('"plan_rate";q=60;w=60');
      expect(r.headers.get("RateLimit")).toBe('"plan_rate";r=0;t=60');
      expect(await json(r)).toEqual({ error: { code: "RATE_LIMITED", message: "Rate limit exceeded" } });
    }
  });

  it("waiting Retry-After seconds then admits, and not a moment before", async () => {
    const clock = useTestClock();
    const T0 = clock.now();
    const { key } = await createKey("zappway", { plan: "free" });
    for (let i = 0; i < 40; i++) expect((await agents(key)).status).toBe(200);
    await clock.advanceTo(T0 + 20_000);
    for (let i = 0; i < 20; i++) expect((await agents(key)).status).toBe(200);
    const refused = await agents(key);
    expect(refused.status).toBe(429);
    expect(refused.headers.get("Retry-After")).toBe("40"); // the 40 from T0 leave at T0+60s

    await clock.advanceTo(T0 + 59_999);
    const early = await agents(key);
    expect(early.status).toBe(429);
    expect(early.headers.get("Retry-After")).toBe("1");
    await clock.advanceTo(T0 + 60_000);
    // 40 slots opened at once; the 20 from T0+20s still count.
    expect(statuses(await burst(45, () => agents(key))).filter((s) => s === 200)).toHaveLength(40);
  });

  it("every response to a limited route carries RateLimit-Policy and RateLimit", async () => {
    const clock = useTestClock();
    const { key } = await createKey("zappway");
    const first = await agents(key);
    expect(first.status).toBe(200);
    expect(first.headers.get("RateLimit-Policy")).toBe('"plan_rate";q=60;w=60');
    expect(first.headers.get("RateLimit")).toBe('"plan_rate";r=59;t=60');
    await clock.advance(15_000);
    const second = await agents(key);
    expect(second.headers.get("RateLimit")).toBe('"plan_rate";r=58;t=45');
    // Origin errors carry them too: the request was admitted and counted.
    const notFound = await call("/zappway/api/v1/agents/agt_nope/query", {
      method: "POST",
      headers: { ...keyHeaders("zappway", key), "Content-Type": "application/json" },
      body: '{"query":"x"}',
      settings: single,
    });
    expect(notFound.status).toBe(404);
    expect(notFound.headers.get("RateLimit")).toBe('"plan_rate";r=57;t=45');
  });

  it("keys of one organization share its plan's window; another organization's keys are untouched", async () => {
    const a = await createKey("zappway");
    const b = await createKey("zappway", { account: a.account });
    const other = await createKey("zappway");
    useTestClock();
    expect(statuses(await burst(70, () => agents(a.key))).filter((s) => s === 200)).toHaveLength(60);
    expect((await agents(a.key)).status).toBe(429);
    expect((await agents(b.key)).status).toBe(429);
    expect(statuses(await burst(60, () => agents(other.key))).every((s) => s === 200)).toBe(true);
  });

  it("plans and per-key overrides: Pro 300, Enterprise per key", async () => {
    useTestClock();
    const pro = await createKey("zappway", { plan: "pro" });
    expect(statuses(await burst(320, () => agents(pro.key))).filter((s) => s === 200)).toHaveLength(300);

    const ent = await createKey("zappway", {
      plan: "enterprise",
      limit_override: { windows: { plan_rate: { limit: 5, window_seconds: 10 } } },
    });
    const r = await burst(8, () => agents(ent.key));
    expect(statuses(r).filter((s) => s === 200)).toHaveLength(5);
    expect(r.find((x) => x.status === 429)!.headers.get("Retry-After")).toBe("10");
    expect(r.find((x) => x.status === 200)!.headers.get("RateLimit-Policy")).toBe('"plan_rate";q=5;w=10');

    // An admin raises it; the next request sees the new limit.
    const patched = await admin(`/keys/${ent.id}`, {
      method: "PATCH",
      json: { limit_override: { windows: { plan_rate: { limit: 7, window_seconds: 10 } } } },
    });
    expect(patched.status).toBe(200);
    expect((await json(patched)).limit_override).toEqual({ windows: { plan_rate: { limit: 7, window_seconds: 10 } } });
    expect(statuses(await burst(4, () => agents(ent.key))).filter((s) => s === 200)).toHaveLength(2);
    expect(
      (await admin(`/keys/${ent.id}`, { method: "PATCH", json: { limit_override: { windows: { plan_rate: { limit: 0 } } } } })).status,
    ).toBe(400);
  });

  it("deployment-wide overrides (LIMIT_OVERRIDES) change the defaults", async () => {
    useTestClock();
    const { key } = await createKey("zappway");
    const settings = limitOverrides({ zappway: { windows: { plan_rate: { limit: 3 } } } });
    expect(statuses(await burst(5, () => agents(key, settings))).filter((s) => s === 200)).toHaveLength(3);
    const pro = await createKey("zappway", { plan: "pro" });
    const proSettings = limitOverrides({ zappway: { plans: { pro: { plan_rate: { limit: 4 } } } } });
    expect(statuses(await burst(6, () => agents(pro.key, proSettings))).filter((s) => s === 200)).toHaveLength(4);
    const bad = await agents(key, { LIMIT_OVERRIDES: "{not json" });
    expect(bad.status).toBe(503);
    expect((await json(bad)).error.message).toBe("Service temporarily unavailable");
  });

  it("counters persist across Durable Object restarts", async () => {
    const { key, account } = await createKey("zappway", { limit_override: { windows: { plan_rate: { limit: 3, window_seconds: 3600 } } } });
    for (let i = 0; i < 3; i++) expect((await agents(key)).status).toBe(200);
    const stub = env.ACCOUNT_GUARD.get(env.ACCOUNT_GUARD.idFromName(`zappway:${account}`));
    const { runInDurableObject } = await import("cloudflare:test");
    // Simulate a restart: the object's in-memory state is dropped, its storage is not.
    await expect(runInDurableObject(stub, (_guard, state) => state.abort("restart"))).rejects.toThrow("restart");
    expect((await agents(key)).status).toBe(429);
  });
});

describe("ZakGT limits", () => {
  const chat = (credential: string) =>
    call("/zakgt/api/v1/ai/chat", {
      method: "POST",
      headers: { ...bearer(credential), "Content-Type": "application/json" },
      body: '{"message":"hi"}',
    });

  it("AI chat: 30 per minute per access key, each key its own allowance", async () => {
    const owner = `usr_keys_${crypto.randomUUID().slice(0, 8)}`;
    const a = await createKey("zakgt", { account: owner });
    const b = await createKey("zakgt", { account: owner });
    useTestClock();
    const first = await burst(40, () => chat(a.key));
    expect(statuses(first).filter((s) => s === 200)).toHaveLength(30);
    const refused = first.find((r) => r.status === 429)!;
    expect(await json(refused)).toEqual({ detail: "Rate limit exceeded" });
    expect(refused.headers.get("Retry-After")).toBe("60");
    expect(refused.headers.get("RateLimit-Policy")).toBe('"ai_chat_key";q=30;w=60, "standard";q=300;w=60');
    expect(statuses(await burst(30, () => chat(b.key))).every((s) => s === 200)).toBe(true);
  });

  it("AI chat: 30 per minute per user for session calls", async () => {
    const token = await login("other@zakgt.test", "other-password");
    const responses = await burst(35, () => chat(token));
    expect(statuses(responses).filter((s) => s === 200).length).toBeLessThanOrEqual(30);
    expect(statuses(responses).filter((s) => s === 429).length).toBeGreaterThanOrEqual(5);
    expect(responses[0]!.headers.get("RateLimit-Policy")).toContain('"ai_chat_user";q=30;w=60');
  });

  it("a standard per-user limit on other endpoints (configurable)", async () => {
    const token = await login();
    const settings = limitOverrides({ zakgt: { windows: { standard: { limit: 4, windowSeconds: 30 } } } });
    const results = [];
    for (let i = 0; i < 5; i++)
      results.push(
        await call("/zakgt/api/v1/users/me", { headers: { ...bearer(token), "X-Request-Id": `std-limit-${i}-xxxx` }, settings }),
      );
    expect(results.map((r) => r.status).slice(-1)).toEqual([429]);
  });

  it("per client IP on the public auth endpoints, against credential stuffing", async () => {
    const ip = `203.0.113.${Math.floor(Math.random() * 200) + 1}`;
    const attempt = (from: string) =>
      call("/zakgt/api/v1/auth/login", {
        method: "POST",
        headers: { "Content-Type": "application/json", "CF-Connecting-IP": from },
        body: '{"email":"demo@zakgt.test","password":"guess"}',
      });
    const responses = await burst(25, () => attempt(ip));
    expect(statuses(responses).filter((s) => s === 401)).toHaveLength(20); // reached the origin: wrong password
    const limited = responses.filter((r) => r.status === 429);
    expect(limited).toHaveLength(5);
    expect(await json(limited[0]!)).toEqual({ detail: "Rate limit exceeded" });
    expect(limited[0]!.headers.get("RateLimit-Policy")).toBe('"auth_ip";q=20;w=60');
    expect((await attempt("192.0.2.77")).status).toBe(401);
    // Refresh has a per-IP window of its own: the logins above did not use it up.
    const refresh = await call("/zakgt/api/v1/auth/refresh", {
      method: "POST",
      headers: { "Content-Type": "application/json", "CF-Connecting-IP": ip },
      body: '{"refresh_token":"x"}',
    });
    expect(refresh.status).toBe(401);
    expect(refresh.headers.get("RateLimit-Policy")).toBe('"auth_refresh_ip";q=60;w=60');
  });
});

describe("failure policy", () => {
  it("fails closed with 503 and Retry-After when the guard cannot be reached", async () => {
    const { key } = await createKey("zappway");
    const unreachable = {
      idFromName: (name: string) => env.ACCOUNT_GUARD.idFromName(name),
      get: () => ({ admit: () => Promise.reject(new Error("Durable Object unavailable")) }),
    };
    const response = await agents(key, { ACCOUNT_GUARD: unreachable });
    expect(response.status).toBe(503);
    expect(response.headers.get("Retry-After")).toBe("1");
    expect(await json(response)).toEqual({
      error: { code: "SERVICE_UNAVAILABLE", message: "Service temporarily unavailable, please retry" },
    });
    const session = await call("/zakgt/api/v1/users/me", { headers: bearer(await login()), settings: { ACCOUNT_GUARD: unreachable } });
    expect(session.status).toBe(503);
  });
});
