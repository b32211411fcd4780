import { env, runInDurableObject } from "cloudflare:test";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { ADMIN_TOKEN, call, json, mintToken, sims, someIp } from "../helpers";

/**
 * Guessing the admin credential through the Worker: per client address, past its limit
 * every admin credential is refused before it is compared (the right one too), and a
 * global budget of failures stops guessing spread over many addresses without ever
 * refusing an address that did not fail. Time is moved with a fake Date, which the
 * isolate's remembered refusals and the admin guard's clock both read.
 */
const keys = (token: string, address: string) =>
  call("/admin/v1/keys?limit=1", { headers: { Authorization: `Bearer ${token}`, "CF-Connecting-IP": address } });
const wrong = (address: string, i = 0) => keys(`wrong-admin-token-${i}-0123456789`, address);

const access = { ACCESS_TEAM_DOMAIN: "zgate-sec.cloudflareaccess.com", ACCESS_AUD: "aud-tag-123", ACCESS_JWKS_URL: sims.jwksUrl };
const accessJwt = () => mintToken({ iss: "https://zgate-sec.cloudflareaccess.com", aud: "aud-tag-123", email: "sec@zakgt.test" });

/** The console's sign-in from `address`: the status of the posted form, and whether a session came of it. */
async function consoleSignIn(token: string, address: string): Promise<{ status: number; signedIn: boolean }> {
  const headers = { "CF-Connecting-IP": address };
  const form = await call("/admin/sign-in", { headers, redirect: "manual" });
  const cookie = form.headers.get("set-cookie")!.split(";")[0]!;
  const csrf = /name="csrf" value="([0-9a-f]{64})"/.exec(await form.text())![1]!;
  const posted = await call("/admin/sign-in", {
    method: "POST",
    headers: { ...headers, Cookie: cookie, "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ csrf, token }),
    redirect: "manual",
  });
  const session = posted.headers.get("set-cookie")?.split(";")[0];
  const page = await call("/admin/", { headers: { ...headers, Cookie: session ?? cookie }, redirect: "manual" });
  return { status: posted.status, signedIn: page.status === 200 };
}

const budgetTrips = async () =>
  (await json(await keysAudit())).entries as { actor: string; detail: Record<string, unknown>; request_id: string }[];
const keysAudit = () => call("/admin/v1/audit?action=admin.auth_budget_tripped", { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } });

afterEach(() => vi.useRealTimers());

// The budget's test trips it on a Date some 20 minutes ahead, so back on the real clock the
// admin guard stays tripped for that long: every address with a new failure refused. The
// files run after this one in the same runtime share that guard (isolate: false in
// test/node/workers-project.ts), and abuse.test's per-address limit saw 429 where it counts
// its 401s. Clear what this file's failures left, as that much time would.
afterAll(async () => {
  const guard = env.ACCOUNT_GUARD.get(env.ACCOUNT_GUARD.idFromName("admin"));
  await runInDurableObject(guard, (_guard, state) => {
    for (const [key] of state.storage.kv.list({ prefix: "admin_failures:" })) state.storage.kv.delete(key);
    state.storage.kv.delete("admin_budget_tripped_until");
  });
  // The object keeps its failures in memory too: a restart reads them from the rows.
  await expect(runInDurableObject(guard, (_guard, state) => state.abort("cleared"))).rejects.toThrow("cleared");
});

describe("admin credentials from one address past its limit", () => {
  it("10 wrong tokens, then the right one is refused before it is compared: API 429 with Retry-After, console 429 and no session", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const address = someIp();
    const statuses = [];
    for (let i = 0; i < 10; i++) statuses.push((await wrong(address, i)).status);
    expect(statuses).toEqual(Array(10).fill(401));

    const refused = await keys(ADMIN_TOKEN, address);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("Retry-After"))).toBeGreaterThan(290);
    expect(await json(refused)).toEqual({
      error: { code: "RATE_LIMITED", message: "Too many failed authentication attempts, retry later" },
    });
    expect(await consoleSignIn(ADMIN_TOKEN, address)).toEqual({ status: 429, signedIn: false });
    // Another address is not held up by this one.
    expect((await keys(ADMIN_TOKEN, someIp())).status).toBe(200);

    // Still refused a second before the window passes, then let in.
    vi.setSystemTime(Date.now() + 299_000);
    expect((await keys(ADMIN_TOKEN, address)).status).toBe(429);
    vi.setSystemTime(Date.now() + 2_000);
    expect((await keys(ADMIN_TOKEN, address)).status).toBe(200);
    expect(await consoleSignIn(ADMIN_TOKEN, address)).toEqual({ status: 303, signedIn: true });
  });

  it("failures at the console's sign-in count the same: past them the right token signs in nowhere", async () => {
    const address = someIp();
    for (let i = 0; i < 10; i++) expect((await consoleSignIn(`wrong-admin-token-${i}-0123456789`, address)).status).toBe(401);
    expect(await consoleSignIn(ADMIN_TOKEN, address)).toEqual({ status: 429, signedIn: false });
    expect((await keys(ADMIN_TOKEN, address)).status).toBe(429);
  });

  it("a restart of the admin guard forgets no failure", async () => {
    const address = someIp();
    for (let i = 0; i < 9; i++) expect((await wrong(address, i)).status).toBe(401);
    const guard = env.ACCOUNT_GUARD.get(env.ACCOUNT_GUARD.idFromName("admin"));
    await expect(runInDurableObject(guard, (_guard, state) => state.abort("restart"))).rejects.toThrow("restart");
    expect((await wrong(address, 9)).status).toBe(401);
    expect((await keys(ADMIN_TOKEN, address)).status).toBe(429);
  });

  it("a valid Cloudflare Access JWT is refused too, and bad Access JWTs count toward the limit", async () => {
    const address = someIp();
    const jwtCall = (jwt: string) =>
      call("/admin/v1/keys?limit=1", { headers: { "Cf-Access-Jwt-Assertion": jwt, "CF-Connecting-IP": address }, settings: access });
    const good = await accessJwt();
    expect((await jwtCall(good)).status).toBe(200);
    const forged = `${good.slice(0, -4)}AAAA`;
    for (let i = 0; i < 10; i++) expect((await jwtCall(forged)).status).toBe(401);
    expect((await jwtCall(good)).status).toBe(429);
    expect((await keys(ADMIN_TOKEN, address)).status).toBe(429);
  });
});

describe("the global budget of failed admin credentials (100 per 10 minutes)", () => {
  it("one wrong guess from each of 100 addresses trips it: one audit entry, those addresses refused, an address with no failure let in", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    // Past the budget's window of every failure the tests above made.
    vi.setSystemTime(Date.now() + 700_000);
    const guessers = Array.from({ length: 100 }, (_, i) => `198.51.100.${i + 1}`);
    for (const [i, address] of guessers.entries()) expect((await wrong(address, i)).status, address).toBe(401);

    const trips = await budgetTrips();
    expect(trips).toHaveLength(1);
    expect(trips[0]).toMatchObject({
      actor: "zgate",
      detail: { failures: 100, addresses: 100, window_seconds: 600, last_address: "198.51.100.100" },
    });

    // Every address that failed in the window is refused, the right token too; none had reached its own limit.
    for (const address of [guessers[0]!, guessers[57]!, guessers[99]!]) {
      const refused = await keys(ADMIN_TOKEN, address);
      expect(refused.status, address).toBe(429);
      expect(Number(refused.headers.get("Retry-After"))).toBeGreaterThan(590);
    }
    expect((await consoleSignIn(ADMIN_TOKEN, guessers[1]!)).status).toBe(429);
    // An address that never failed is let in; a new guesser gets its one guess, then is refused.
    const clean = someIp();
    expect((await keys(ADMIN_TOKEN, clean)).status).toBe(200);
    expect((await consoleSignIn(ADMIN_TOKEN, someIp())).signedIn).toBe(true);
    const late = someIp();
    expect((await wrong(late)).status).toBe(401);
    expect((await keys(ADMIN_TOKEN, late)).status).toBe(429);
    // More failures while it is tripped write no more entries.
    for (let i = 0; i < 30; i++) expect((await wrong(`198.51.101.${i + 1}`)).status).toBe(401);
    expect(await budgetTrips()).toHaveLength(1);

    // Once the window has passed, the guessers are let in again.
    vi.setSystemTime(Date.now() + 601_000);
    expect((await keys(ADMIN_TOKEN, guessers[0]!)).status).toBe(200);
    expect((await keys(ADMIN_TOKEN, late)).status).toBe(200);
    expect((await keys(ADMIN_TOKEN, clean)).status).toBe(200);
  });
});
