import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { AccountGuard } from "../../src/guard/account-guard";
import type { SlidingLog } from "../../src/guard/sliding-log";
import { admin, bearer, burst, call, createKey, json, keyHeaders, limitOverrides, newUser, race } from "../helpers";

/**
 * Guard leases (src/guard/lease-registry.ts): a hot credential is admitted from leases
 * of up to 64 admissions, so the guard is called far less than once per request, while
 * windows stay exact and a revoke still refuses every request that starts after it returns.
 */

// Calls per guard instance. RPC calls reach the class's method, not an instance's own
// property, so the counter wraps the prototype once and tells instances apart.
const admitCalls = new WeakMap<object, number>();
let counting = false;

/** Counts the `admit` calls one account guard receives from now on. */
function countAdmits(product: string, account: string): Promise<() => number> {
  return countAdmitsIn(`${product}:${account}`);
}

/** Counts the `admit` calls the guard of this name (an account's, or a client address's `ip|…`) receives from now on. */
async function countAdmitsIn(name: string): Promise<() => number> {
  const stub = env.ACCOUNT_GUARD.get(env.ACCOUNT_GUARD.idFromName(name));
  let instance: object | undefined;
  await runInDurableObject(stub, (object) => {
    const guard = object as unknown as AccountGuard;
    instance = guard;
    admitCalls.set(guard, 0);
    if (counting) return;
    counting = true;
    const prototype = Object.getPrototypeOf(guard) as AccountGuard;
    const admit = prototype.admit;
    prototype.admit = function (this: AccountGuard, request) {
      if (admitCalls.has(this)) admitCalls.set(this, admitCalls.get(this)! + 1);
      return admit.call(this, request);
    };
  });
  return () => admitCalls.get(instance!)!;
}

/** `total` requests in waves of `wave` concurrent ones: the arrival rate that makes a key hot. */
async function waves(total: number, wave: number, send: () => Promise<Response>): Promise<Response[]> {
  const responses: Response[] = [];
  for (let sent = 0; sent < total; sent += wave) responses.push(...(await burst(Math.min(wave, total - sent), send)));
  return responses;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Admissions a guard counts now in one window subject (its exact, in-memory log; storage is only an upper bound). */
function countedIn(guardName: string, subject: string): Promise<number> {
  const stub = env.ACCOUNT_GUARD.get(env.ACCOUNT_GUARD.idFromName(guardName));
  return runInDurableObject(stub, (object) => {
    const guard = object as unknown as { windows: SlidingLog; clock: () => number };
    return guard.windows.inspect(subject, Number.MAX_SAFE_INTEGER, 60_000, guard.clock()).used; // the windows these tests count are 60 s
  });
}

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

describe("guard leases: happy path", () => {
  it("a hot key is admitted with far fewer guard calls than requests, and each response counts down its window", async () => {
    const { key, account } = await createKey("zappway");
    const admits = await countAdmits("zappway", account);
    const responses = await waves(400, 50, () => call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings: roomy }));
    expect(responses.map((r) => r.status).filter((s) => s !== 200)).toEqual([]);
    expect(admits()).toBeLessThan(400 / 4);
    // Every admission is counted: no response claims more room than 400 requests left.
    const remaining = responses.map((r) => Number(r.headers.get("RateLimit")!.match(/r=(\d+)/)![1]));
    expect(Math.min(...remaining)).toBeGreaterThanOrEqual(100_000 - 400 - 64);
    expect(Math.max(...remaining)).toBe(100_000 - 1);
  });

  it("a hot client address on a public route is leased too, and every admission is still counted", async () => {
    const address = `198.18.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250) + 1}`;
    const admits = await countAdmitsIn(`ip|zakgt|${address}`);
    const settings = limitOverrides({ zakgt: { windows: { auth_refresh_ip: { limit: 100_000 } } } });
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
    const remaining = responses.map((r) => Number(r.headers.get("RateLimit")!.match(/r=(\d+)/)![1]));
    expect(Math.min(...remaining)).toBeGreaterThanOrEqual(100_000 - 200 - 64);
  });

  it("a key calling less often than once per lease life asks the guard for every request", async () => {
    const { key, account } = await createKey("zappway");
    const admits = await countAdmits("zappway", account);
    for (let i = 1; i <= 4; i++) {
      const response = await call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings: roomy });
      expect(response.headers.get("RateLimit")).toMatch(new RegExp(`^"plan_rate";r=${100_000 - i};t=\\d+$`));
      await sleep(260);
    }
    expect(admits()).toBe(4);
  });

  it("a sequential client's headers count down one by one, leases or not", async () => {
    const { key } = await createKey("zappway");
    for (let i = 1; i <= 12; i++) {
      const response = await call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings: roomy });
      expect(response.headers.get("RateLimit")).toMatch(new RegExp(`^"plan_rate";r=${100_000 - i};t=\\d+$`));
    }
  });

  it("GUARD_LEASE_MS=0 turns leases off: one guard call per request", async () => {
    const { key, account } = await createKey("zappway");
    const admits = await countAdmits("zappway", account);
    const off = { ...roomy, GUARD_LEASE_MS: "0" };
    const responses = await waves(100, 50, () => call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings: off }));
    expect(responses.map((r) => r.status)).toEqual(Array(100).fill(200));
    expect(admits()).toBe(100);
  });
});

describe("guard leases: exact windows", () => {
  it("a burst far over the limit admits at most the limit, and unspent lease tokens come back", async () => {
    const limit = 64;
    const tight = limitOverrides({ zappway: { windows: { plan_rate: { limit } } } });
    const { key } = await createKey("zappway");
    const send = () => call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings: tight });
    const first = await waves(200, 40, send);
    const admittedInBurst = first.filter((r) => r.status === 200).length;
    expect(admittedInBurst).toBeLessThanOrEqual(limit);
    for (const refused of first.filter((r) => r.status === 429)) {
      const retryAfter = Number(refused.headers.get("Retry-After"));
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(60);
    }
    // Once leases have expired, what they did not spend is handed back with the next
    // call: the window ends up holding exactly the limit, one request at a time.
    await sleep(300);
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
    const { key, account } = await createKey("zappway");
    const responses = await burst(50, () => call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings: roomy }));
    expect(responses.every((r) => r.status === 200)).toBe(true);
    // No later call from this isolate carries the refund: the lease's own end does.
    expect(await countedIn(`zappway:${account}`, `plan_rate:${account}`)).toBe(50);
  });

  it("a rotated key's leases refund to the new key, which carries the old one's window", async () => {
    const { key, account } = await createKey("zsky");
    const headers = keyHeaders("zsky", key);
    const jobId = await submitJob(headers);
    // Polls with leases out, and the rotation while they are: it waits for them to end.
    const polls = burst(50, () => call(`/zsky/v1/jobs/${jobId}`, { headers, settings: zskyRoomy }));
    await sleep(5);
    const rotated = await json(await call("/zsky/v1/keys/rotate", { method: "POST", headers, settings: zskyRoomy }));
    const admitted = (await polls).filter((r) => r.status === 200).length;
    // Every admitted poll, and the generate call and the rotation itself: no idle lease token left.
    expect(await countedIn(`zsky:${account}`, `poll:${rotated.key_id}`)).toBe(admitted);
    expect(await countedIn(`zsky:${account}`, `burst:${rotated.key_id}`)).toBe(2);
  });

  it("small limits are never leased: each request is decided by the guard", async () => {
    const { key, account } = await createKey("zsky");
    const admits = await countAdmits("zsky", account);
    // Polls of a job that is not the account's are counted, then answered 404.
    const small = limitOverrides({ zsky: { windows: { poll: { limit: 20 } } } });
    const responses = await burst(25, () => call("/zsky/v1/jobs/job_elsewhere", { headers: keyHeaders("zsky", key), settings: small }));
    expect(responses.filter((r) => r.status === 404)).toHaveLength(20);
    expect(responses.filter((r) => r.status === 429).map((r) => r.headers.get("Retry-After"))).toEqual(Array(5).fill("60"));
    expect(admits()).toBe(25);
  });
});

describe("guard leases: revocation stays instant", () => {
  it("admin revoke of a hot, leased key: zero admitted after it returns", async () => {
    const { id, key, account } = await createKey("zappway");
    const admits = await countAdmits("zappway", account);
    const send = () => call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings: roomy });
    // Hot first, so the race starts with leases out.
    await waves(100, 50, send);
    expect(admits()).toBeLessThan(25);
    const results = await race(send, () => admin(`/keys/${id}/revoke`, { method: "POST" }));
    expect(results.filter((r) => r.startedAfterRevoke && r.status !== 401)).toEqual([]);
    expect(results.some((r) => !r.startedAfterRevoke && r.status === 200)).toBe(true);
  });

  it("the very next request after a revoke is refused, though the isolate holds unspent tokens", async () => {
    const { id, key } = await createKey("zappway");
    const send = () => call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings: roomy });
    expect((await waves(100, 50, send)).every((r) => r.status === 200)).toBe(true);
    expect((await admin(`/keys/${id}/revoke`, { method: "POST" })).status).toBe(200);
    expect((await waves(50, 50, send)).map((r) => r.status)).toEqual(Array(50).fill(401));
  });

  it("no lease outlives its key: a hot key is refused from the moment it expires", async () => {
    const expiresAt = Date.now() + 1_500;
    const { key } = await createKey("zappway", { expires_at: new Date(expiresAt).toISOString() });
    const send = () => call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings: roomy });
    let admitted = 0;
    while (Date.now() < expiresAt - 50) admitted += (await burst(25, send)).filter((r) => r.status === 200).length;
    expect(admitted).toBeGreaterThan(0);
    await sleep(expiresAt - Date.now() + 5);
    expect((await waves(50, 50, send)).map((r) => r.status)).toEqual(Array(50).fill(401));
  });

  it("a guard restarted while leases were out still waits for them before a revoke returns", async () => {
    const { id, key, account } = await createKey("zappway");
    const send = () => call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings: roomy });
    await waves(100, 50, send);
    const stub = env.ACCOUNT_GUARD.get(env.ACCOUNT_GUARD.idFromName(`zappway:${account}`));
    await expect(runInDurableObject(stub, (_guard, state) => state.abort("restart"))).rejects.toThrow("restart");
    expect((await admin(`/keys/${id}/revoke`, { method: "POST" })).status).toBe(200);
    expect((await waves(50, 50, send)).map((r) => r.status)).toEqual(Array(50).fill(401));
  });

  it("a revoke whose wait a guard restart cuts short is finished by its retry", async () => {
    const { id, key, account } = await createKey("zappway");
    const send = () => call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings: roomy });
    const stub = env.ACCOUNT_GUARD.get(env.ACCOUNT_GUARD.idFromName(`zappway:${account}`));
    // A lease granted just now: the revoke below has up to GUARD_LEASE_MS to wait.
    const hot = burst(50, send);
    await sleep(5);
    const revoking = admin(`/keys/${id}/revoke`, { method: "POST" });
    await sleep(60);
    await expect(runInDurableObject(stub, (_guard, state) => state.abort("deploy"))).rejects.toThrow("deploy");
    const revoked = await revoking;
    await hot;
    expect(revoked.status).toBe(200);
    expect((await json(revoked)).status).toBe("revoked");
    expect((await waves(50, 50, send)).map((r) => r.status)).toEqual(Array(50).fill(401));
  });

  it("the very next request after logout is refused", async () => {
    const token = await (await newUser()).login();
    const send = () => call("/zakgt/api/v1/users/me", { headers: bearer(token), settings: roomy });
    expect((await waves(100, 50, send)).every((r) => r.status === 200)).toBe(true);
    const logout = await call("/zakgt/api/v1/auth/logout", { method: "POST", headers: bearer(token), settings: roomy });
    expect(logout.status).toBe(200);
    expect((await waves(50, 50, send)).map((r) => r.status)).toEqual(Array(50).fill(401));
  });

  it("logout of a hot, leased session", async () => {
    const token = await (await newUser()).login();
    const results = await race(
      () => call("/zakgt/api/v1/users/me", { headers: bearer(token), settings: roomy }),
      () => call("/zakgt/api/v1/auth/logout", { method: "POST", headers: bearer(token), settings: roomy }),
    );
    expect(results.filter((r) => r.startedAfterRevoke && r.status !== 401)).toEqual([]);
    expect(results.some((r) => !r.startedAfterRevoke && r.status === 200)).toBe(true);
  });

  it("a plan change applies to every request after it returns, even with leases out", async () => {
    const { id, key } = await createKey("zappway");
    const send = () => call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings: roomy });
    await waves(100, 50, send);
    const changed = await admin(`/keys/${id}`, { method: "PATCH", json: { limit_override: { windows: { plan_rate: { limit: 1 } } } } });
    expect(changed.status).toBe(200);
    // 100 already counted in the window, and a limit of 1: nothing more may pass.
    expect((await waves(50, 50, send)).map((r) => r.status)).toEqual(Array(50).fill(429));
  });

  it("a purged job is 404 for every poll that starts after the purge returns", async () => {
    const { key } = await createKey("zsky");
    const headers = keyHeaders("zsky", key);
    const jobId = await submitJob(headers);
    const results = await race(
      () => call(`/zsky/v1/jobs/${jobId}`, { headers, settings: zskyRoomy }),
      () => call(`/zsky/v1/jobs/${jobId}`, { method: "DELETE", headers, settings: zskyRoomy }),
    );
    expect(results.filter((r) => r.startedAfterRevoke && r.status !== 404)).toEqual([]);
    expect(results.some((r) => !r.startedAfterRevoke && r.status === 200)).toBe(true);
  });
});
