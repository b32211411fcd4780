import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { afterDrain, useTestClock, type TestClock } from "../clock";
import { MAX_LEASE_MS } from "../../src/limits/guard-protocol";
import { admin, bearer, burst, call, countingGuards, createKey, json, keyHeaders, limitOverrides, newUser, race, someIp } from "../helpers";

/**
 * Guard leases (src/guard/lease-registry.ts): a hot credential is admitted from leases
 * sized to its rate, so the guard is called far less than once per request, while
 * windows stay exact and a revoke still refuses every request that starts after it returns.
 *
 * On a test clock (test/clock.ts) but for the first test: a lease lives until the test
 * moves the clock past its end (GUARD_LEASE_MS, 250 ms here), and a mutation that waits
 * for it returns when the clock gets there.
 */

const LEASE_MS = 250;

/** `settings` whose guard calls are noted: how many `admit` calls were made from now on. */
function countingAdmits(settings: Record<string, unknown>) {
  const calls: string[] = [];
  return {
    settings: { ...settings, ACCOUNT_GUARD: countingGuards(calls) },
    admits: () => calls.filter((m) => m === "admit").length,
    calls,
  };
}

/** `total` requests in waves of `wave` concurrent ones: the arrival rate that makes a key hot. */
async function waves(total: number, wave: number, send: () => Promise<Response>): Promise<Response[]> {
  const responses: Response[] = [];
  for (let sent = 0; sent < total; sent += wave) responses.push(...(await burst(Math.min(wave, total - sent), send)));
  return responses;
}

/** What a response's RateLimit field says is left in its (first) window. */
const remaining = (response: Response) => Number(response.headers.get("RateLimit")!.match(/r=(\d+)/)![1]);

const roomy = limitOverrides({
  zappway: { windows: { plan_rate: { limit: 100_000 } } },
  zakgt: { windows: { standard: { limit: 100_000 } } },
});
const zskyRoomy = limitOverrides({ zsky: { windows: { burst: { limit: 100_000 }, poll: { limit: 100_000 } } } });

/** Submits a ZSky image job with the key in `headers`: its polls are what get leased. */
async function submitJob(headers: Record<string, string>): Promise<string> {
  const submitted = await call("/zsky/v1/images/generate", {
    method: "POST",
    headers: { ...headers, "Content-Type": "application/json" },
    body: JSON.stringify({ prompt: "a lighthouse" }),
    settings: zskyRoomy,
  });
  return (await json(submitted)).job_id as string;
}

/** A change the credential's live leases hold up: seen waiting on the clock, it returns when they end. */
const drained = (clock: TestClock, change: () => Promise<Response>) => () => afterDrain(clock, change);

describe("guard leases: happy path", () => {
  // On the system clock: leases granted, spent and refunded in real time. They live as long
  // as a deployment may make them (MAX_LEASE_MS): the default quarter of a second can pass
  // between a lease's ask and its answer on a loaded machine (a full suite on 2 cores), and
  // a lease that arrives ended is no lease (155 guard calls for 200 requests in one such run).
  it("a hot key is admitted with far fewer guard calls than requests, and each response counts down its window", async () => {
    const { key } = await createKey("zappway");
    const { settings, admits } = countingAdmits({ ...roomy, GUARD_LEASE_MS: String(MAX_LEASE_MS) });
    const responses = await waves(200, 50, () => call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings }));
    expect(responses.map((r) => r.status).filter((s) => s !== 200)).toEqual([]);
    // How many depends on the load: far fewer all the same.
    expect(admits()).toBeLessThan(200 / 2);
    // Every admission is counted: no response claims more room than 200 requests left,
    // less the tokens leased for as many requests as arrived in a lease life (at most 200).
    expect(Math.min(...responses.map(remaining))).toBeGreaterThanOrEqual(100_000 - 200 - 200);
    expect(Math.max(...responses.map(remaining))).toBe(100_000 - 1);
  });

  it("a hot client address on a public route is leased too, and every admission is still counted", async () => {
    useTestClock();
    const address = someIp();
    const { settings, admits } = countingAdmits(limitOverrides({ zakgt: { windows: { auth_refresh_ip: { limit: 100_000 } } } }));
    const refresh = () =>
      call("/zakgt/api/v1/auth/refresh", {
        method: "POST",
        headers: { "Content-Type": "application/json", "CF-Connecting-IP": address },
        body: '{"refresh_token":"x"}',
        settings,
      });
    const responses = await waves(200, 50, refresh);
    expect(responses.filter((r) => r.status === 429)).toEqual([]);
    expect(admits()).toBeLessThan(200 / 4);
    expect(Math.min(...responses.map(remaining))).toBeGreaterThanOrEqual(100_000 - 200 - 200);
  });

  it("a key calling less often than once per lease life asks the guard for every request", async () => {
    const clock = useTestClock();
    const { key } = await createKey("zappway");
    const { settings, admits } = countingAdmits(roomy);
    for (let i = 1; i <= 4; i++) {
      const response = await call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings });
      expect(response.headers.get("RateLimit")).toMatch(new RegExp(`^"plan_rate";r=${100_000 - i};t=\\d+$`));
      await clock.advance(LEASE_MS + 1);
    }
    expect(admits()).toBe(4);
  });

  it("a sequential client's headers count down one by one, leases or not", async () => {
    useTestClock();
    const { key } = await createKey("zappway");
    const { settings, admits } = countingAdmits(roomy);
    for (let i = 1; i <= 12; i++) {
      const response = await call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings });
      expect(response.headers.get("RateLimit")).toMatch(new RegExp(`^"plan_rate";r=${100_000 - i};t=\\d+$`));
    }
    // All at one moment: the key was hot from its second request on, and leased.
    expect(admits()).toBeLessThan(12);
  });

  it("GUARD_LEASE_MS=0 turns leases off: one guard call per request", async () => {
    useTestClock();
    const { key } = await createKey("zappway");
    const { settings, admits } = countingAdmits({ ...roomy, GUARD_LEASE_MS: "0" });
    const responses = await waves(100, 50, () => call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings }));
    expect(responses.map((r) => r.status)).toEqual(Array(100).fill(200));
    expect(admits()).toBe(100);
  });
});

describe("guard leases: exact windows", () => {
  it("a burst far over the limit admits at most the limit, and unspent lease tokens come back", async () => {
    const clock = useTestClock();
    const limit = 64;
    const tight = limitOverrides({ zappway: { windows: { plan_rate: { limit } } } });
    const { key } = await createKey("zappway");
    const send = () => call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings: tight });
    const first = await waves(150, 50, send);
    const admittedInBurst = first.filter((r) => r.status === 200).length;
    expect(admittedInBurst).toBeLessThanOrEqual(limit);
    for (const refused of first.filter((r) => r.status === 429)) {
      const retryAfter = Number(refused.headers.get("Retry-After"));
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(60);
    }
    // Once leases have ended, what they did not spend is back in the window: it ends up
    // holding exactly the limit, one request at a time.
    await clock.advance(LEASE_MS);
    let admittedAfter = 0;
    for (let i = 0; i < limit + 1; i++) {
      const response = await send();
      if (response.status !== 200) {
        expect(response.status).toBe(429);
        break;
      }
      admittedAfter++;
    }
    expect(admittedInBurst + admittedAfter).toBe(limit);
  });

  it("a lease's unspent tokens go back when it ends: the window holds exactly the admitted requests", async () => {
    const clock = useTestClock();
    const { key } = await createKey("zappway");
    const { settings, calls } = countingAdmits(roomy);
    const responses = await burst(50, () => call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings }));
    expect(responses.every((r) => r.status === 200)).toBe(true);
    expect(calls).not.toContain("refundLeases");
    await clock.advance(LEASE_MS);
    expect(calls).toContain("refundLeases");
    // The account's window, read through another route (another lease-book entry, so no
    // call of its own carries a refund): 50 admitted, and this one.
    const probe = await call("/zappway/api/v1/datastores", { headers: keyHeaders("zappway", key), settings });
    expect(remaining(probe)).toBe(100_000 - 51);
  });

  it("Retry-After is never early with leases out, and leased requests handed back leave the window when they were spent", async () => {
    const clock = useTestClock();
    const t0 = clock.now();
    const tight = limitOverrides({ zappway: { windows: { plan_rate: { limit: 64 } } } });
    const { key } = await createKey("zappway");
    const send = () => call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings: tight });
    // A hot key fills its window at t0: the requests admitted alone counted at t0, the
    // leased ones at their lease's end, t0 + a lease life, until handed back.
    const first = await waves(100, 50, send);
    const refusals = first.filter((r) => r.status === 429);
    expect(refusals.map((r) => r.headers.get("Retry-After"))).toEqual(Array(refusals.length).fill("60"));
    await clock.advanceTo(t0 + 60_000 - 1);
    expect((await send()).status).toBe(429);
    // Handed back with their last spend (t0), the leased ones have left with the others: the whole limit again.
    await clock.advanceTo(t0 + 60_000);
    const again: number[] = [];
    for (let i = 0; i <= 64; i++) again.push((await send()).status);
    expect(again).toEqual([...Array(64).fill(200), 429]);
  });

  it("a rotated key's leases refund to the new key, which carries the old one's window", async () => {
    const clock = useTestClock();
    const { key } = await createKey("zsky");
    const headers = keyHeaders("zsky", key);
    const jobId = await submitJob(headers);
    // Polls with leases out, and the rotation while they are: it waits for them to end.
    const polls = await burst(50, () => call(`/zsky/v1/jobs/${jobId}`, { headers, settings: zskyRoomy }));
    const rotated = await json(
      await afterDrain(clock, () => call("/zsky/v1/keys/rotate", { method: "POST", headers, settings: zskyRoomy })),
    );
    const admitted = polls.filter((r) => r.status === 200).length;
    expect(admitted).toBe(50);
    // Every admitted poll, and the generate call and the rotation itself: no idle lease token left.
    const newHeaders = keyHeaders("zsky", rotated.key);
    expect(remaining(await call(`/zsky/v1/jobs/${jobId}`, { headers: newHeaders, settings: zskyRoomy }))).toBe(100_000 - admitted - 1);
    expect(remaining(await call("/zsky/v1/usage", { headers: newHeaders, settings: zskyRoomy }))).toBe(100_000 - 2 - 1);
  });

  it("small limits are never leased: each request is decided by the guard", async () => {
    useTestClock();
    const { key } = await createKey("zsky");
    // Polls of a job that is not the account's are counted, then answered 404.
    const { settings, admits } = countingAdmits(limitOverrides({ zsky: { windows: { poll: { limit: 20 } } } }));
    const responses = await burst(25, () => call("/zsky/v1/jobs/job_elsewhere", { headers: keyHeaders("zsky", key), settings }));
    expect(responses.filter((r) => r.status === 404)).toHaveLength(20);
    expect(responses.filter((r) => r.status === 429).map((r) => r.headers.get("Retry-After"))).toEqual(Array(5).fill("60"));
    expect(admits()).toBe(25);
  });
});

describe("guard leases: revocation stays instant", () => {
  it("admin revoke of a hot, leased key: zero admitted after it returns", async () => {
    const clock = useTestClock();
    const { id, key } = await createKey("zappway");
    const { settings, admits } = countingAdmits(roomy);
    const send = () => call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings });
    // Hot first, so the race starts with leases out.
    await waves(40, 20, send);
    expect(admits()).toBeLessThan(10);
    const results = await race(
      send,
      drained(clock, () => admin(`/keys/${id}/revoke`, { method: "POST" })),
      150,
    );
    expect(results.filter((r) => r.startedAfterRevoke && r.status !== 401)).toEqual([]);
    expect(results.some((r) => !r.startedAfterRevoke && r.status === 200)).toBe(true);
  });

  it("the very next request after a revoke is refused, though the isolate held unspent tokens when it was made", async () => {
    const clock = useTestClock();
    const { id, key } = await createKey("zappway");
    const send = () => call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings: roomy });
    expect((await waves(40, 20, send)).every((r) => r.status === 200)).toBe(true);
    expect((await afterDrain(clock, () => admin(`/keys/${id}/revoke`, { method: "POST" }))).status).toBe(200);
    expect((await waves(20, 20, send)).map((r) => r.status)).toEqual(Array(20).fill(401));
  });

  it("no lease outlives its key: a hot key is refused from the moment it expires", async () => {
    const clock = useTestClock();
    const expiresAt = clock.now() + 1_500;
    const { key } = await createKey("zappway", { expires_at: new Date(expiresAt).toISOString() });
    const send = () => call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings: roomy });
    expect((await waves(40, 20, send)).every((r) => r.status === 200)).toBe(true);
    // A millisecond before: still admitted, leases or not (a lease granted now ends with the key).
    await clock.advanceTo(expiresAt - 1);
    expect((await waves(40, 20, send)).every((r) => r.status === 200)).toBe(true);
    await clock.advance(1);
    expect((await waves(20, 20, send)).map((r) => r.status)).toEqual(Array(20).fill(401));
  });

  it("a guard restarted while leases were out still waits for them before a revoke returns", async () => {
    const clock = useTestClock();
    const { id, key, account } = await createKey("zappway");
    const send = () => call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings: roomy });
    await waves(40, 20, send);
    const stub = env.ACCOUNT_GUARD.get(env.ACCOUNT_GUARD.idFromName(`zappway:${account}`));
    await expect(runInDurableObject(stub, (_guard, state) => state.abort("restart"))).rejects.toThrow("restart");
    // The new instance does not know the leases, only when the last one ends at the latest: it waits for that.
    expect((await afterDrain(clock, () => admin(`/keys/${id}/revoke`, { method: "POST" }))).status).toBe(200);
    expect((await waves(20, 20, send)).map((r) => r.status)).toEqual(Array(20).fill(401));
  });

  it("a revoke whose wait a guard restart cuts short is finished by its retry", async () => {
    const clock = useTestClock();
    const { id, key, account } = await createKey("zappway");
    const send = () => call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings: roomy });
    const stub = env.ACCOUNT_GUARD.get(env.ACCOUNT_GUARD.idFromName(`zappway:${account}`));
    // A lease out: the revoke below waits for it, and the restart comes while it does.
    await burst(20, send);
    const draining = clock.nextSleep();
    const revoking = admin(`/keys/${id}/revoke`, { method: "POST" });
    await draining;
    const retried = clock.nextSleep();
    await expect(runInDurableObject(stub, (_guard, state) => state.abort("deploy"))).rejects.toThrow("deploy");
    // The repeat on a new instance waits again (for every lease the old one may have granted).
    await clock.advanceTo(await retried);
    const revoked = await revoking;
    expect(revoked.status).toBe(200);
    expect((await json(revoked)).status).toBe("revoked");
    expect((await waves(20, 20, send)).map((r) => r.status)).toEqual(Array(20).fill(401));
  });

  it("the very next request after logout is refused", async () => {
    const clock = useTestClock();
    const token = await (await newUser()).login();
    const send = () => call("/zakgt/api/v1/users/me", { headers: bearer(token), settings: roomy });
    expect((await waves(40, 20, send)).every((r) => r.status === 200)).toBe(true);
    const logout = await afterDrain(clock, () =>
      call("/zakgt/api/v1/auth/logout", { method: "POST", headers: bearer(token), settings: roomy }),
    );
    expect(logout.status).toBe(200);
    expect((await waves(20, 20, send)).map((r) => r.status)).toEqual(Array(20).fill(401));
  });

  it("logout of a hot, leased session", async () => {
    const clock = useTestClock();
    const token = await (await newUser()).login();
    const results = await race(
      () => call("/zakgt/api/v1/users/me", { headers: bearer(token), settings: roomy }),
      drained(clock, () => call("/zakgt/api/v1/auth/logout", { method: "POST", headers: bearer(token), settings: roomy })),
      150,
    );
    expect(results.filter((r) => r.startedAfterRevoke && r.status !== 401)).toEqual([]);
    expect(results.some((r) => !r.startedAfterRevoke && r.status === 200)).toBe(true);
  });

  it("a plan change applies to every request after it returns, even with leases out", async () => {
    const clock = useTestClock();
    const { id, key } = await createKey("zappway");
    const send = () => call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings: roomy });
    await waves(40, 20, send);
    const changed = await afterDrain(clock, () =>
      admin(`/keys/${id}`, { method: "PATCH", json: { limit_override: { windows: { plan_rate: { limit: 1 } } } } }),
    );
    expect(changed.status).toBe(200);
    // 40 already counted in the window, and a limit of 1: nothing more may pass.
    expect((await waves(20, 20, send)).map((r) => r.status)).toEqual(Array(20).fill(429));
  });

  it("a purged job is 404 for every poll that starts after the purge returns", async () => {
    const clock = useTestClock();
    const { key } = await createKey("zsky");
    const headers = keyHeaders("zsky", key);
    const jobId = await submitJob(headers);
    const poll = () => call(`/zsky/v1/jobs/${jobId}`, { headers, settings: zskyRoomy });
    // Hot first, so the race starts with leases out. (Polls in flight during the purge may
    // meet the origin after it forgot the job: only those sent before it count as answered.)
    expect((await burst(10, poll)).map((r) => r.status)).toEqual(Array(10).fill(200));
    const results = await race(
      poll,
      drained(clock, () => call(`/zsky/v1/jobs/${jobId}`, { method: "DELETE", headers, settings: zskyRoomy })),
      150,
    );
    expect(results.filter((r) => r.startedAfterRevoke && r.status !== 404)).toEqual([]);
  });
});
