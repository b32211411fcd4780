import { describe, expect, it } from "vitest";
import { afterDrain, useTestClock, type TestClock } from "../clock";
import { admin, call, countingGuards, createKey, keyHeaders, limitOverrides } from "../helpers";

/**
 * Shares (src/admit/lease-book.ts, guard-protocol.ts Vouched): a busy account whose
 * traffic in an isolate is spread over many keys and routes, each too slow for a lease of
 * its own, spends one lease of its windows per isolate, renewed with one guard call per
 * share life, and while those windows are full its members are refused in the isolate.
 * Issue 25's account (50 keys x 2 routes at 100 req/s per isolate), scaled down: KEYS keys
 * on two routes, each isolate going through them in turn at RATE requests a second.
 */

const KEYS = 5;
const RATE = 20;
// The test origin has no datastores: its 404 comes after admission, like the agents' 200.
const ROUTES = ["/zappway/api/v1/agents", "/zappway/api/v1/datastores"];
const admitted = (s: { status: number }) => s.status === 200 || s.status === 404;

/** An account of KEYS keys, its own limit `limit` per `windowSeconds`. */
async function busyAccount(limit: number, windowSeconds: number) {
  const first = await createKey("zappway");
  const rest = await Promise.all(Array.from({ length: KEYS - 1 }, () => createKey("zappway", { account: first.account })));
  const plan = await admin(`/accounts/zappway/${first.account}/plan`, {
    method: "PUT",
    json: { plan: null, limit_override: { windows: { plan_rate: { limit, window_seconds: windowSeconds } } } },
  });
  expect(plan.status).toBe(200);
  return { account: first.account, keys: [first, ...rest] };
}

/** `isolates` isolates (settings objects: each its own lease book) of one deployment, every guard call named in `calls`. */
function isolatesOf(count: number, calls: string[], inTransit?: () => Promise<void>) {
  const guards = countingGuards(calls, inTransit);
  return Array.from({ length: count }, () => ({ ACCOUNT_GUARD: guards }));
}

interface Sent {
  at: number;
  key: number;
  status: number;
}

/**
 * Sends `seconds` of traffic: each isolate RATE requests a second, going through every key
 * and route in turn (offset per isolate), on the test clock.
 */
async function drive(clock: TestClock, keys: { key: string }[], isolates: Record<string, unknown>[], seconds: number, sent: Sent[] = []) {
  const start = clock.now();
  const perIsolate = RATE * seconds;
  for (let j = 0; j < perIsolate; j++) {
    for (let i = 0; i < isolates.length; i++) {
      const combo = (j + i * 7) % (keys.length * ROUTES.length);
      const key = combo % keys.length;
      const at = clock.now();
      const response = await call(ROUTES[Math.floor(combo / keys.length)]!, {
        headers: keyHeaders("zappway", keys[key]!.key),
        settings: isolates[i],
      });
      sent.push({ at, key, status: response.status });
    }
    await clock.advanceTo(Math.max(clock.now(), start + ((j + 1) * 1000) / RATE));
  }
  return sent;
}

/** The most admissions within any `windowMs` (each admitted at the time its request was sent: the clock stands still meanwhile). */
function mostInOneWindow(sent: Sent[], windowMs: number): number {
  const times = sent.filter(admitted).map((s) => s.at);
  let most = 0;
  for (let a = 0, b = 0; b < times.length; b++) {
    while (times[b]! - times[a]! >= windowMs) a++;
    most = Math.max(most, b - a + 1);
  }
  return most;
}

const count = (calls: string[], method: string) => calls.filter((m) => m === method).length;

describe("an isolate's share of a busy account's windows", () => {
  it(`${KEYS} keys on 2 routes at ${RATE} req/s per isolate, each key and route at 2 req/s: after the first second, one renewal per share life and no guard call on a request's path`, async () => {
    const clock = useTestClock();
    const calls: string[] = [];
    const isolates = isolatesOf(2, calls);
    const { keys } = await busyAccount(100_000, 60);
    await drive(clock, keys, isolates, 1);
    calls.length = 0;
    const sent = await drive(clock, keys, isolates, 3);
    expect(sent.every(admitted)).toBe(true);
    // Near the guard a subject at 2 req/s is slower than a lease life: without shares every request asks.
    expect(count(calls, "admit")).toBe(0);
    expect(count(calls, "renewLeases")).toBe(0);
    // About one renewal a share life (1 s) per isolate: it is asked a little before the lease ends.
    const perIsolatePerSecond = count(calls, "renewShares") / 2 / 3;
    expect(perIsolatePerSecond).toBeGreaterThanOrEqual(1);
    expect(perIsolatePerSecond).toBeLessThanOrEqual(1.5);
  }, 120_000);

  it("at 125% of its limit no window admits more than the limit, the refusals are the isolates' own, and each isolate renews at most twice a share life", async () => {
    const clock = useTestClock();
    const calls: string[] = [];
    const isolates = isolatesOf(2, calls);
    const windowSeconds = 4;
    // Two isolates at RATE each offer 2 x RATE x 4 = 320 a window: 125% of 256.
    const limit = (2 * RATE * windowSeconds) / 1.25;
    const { keys } = await busyAccount(limit, windowSeconds);
    const sent = await drive(clock, keys, isolates, 1);
    calls.length = 0;
    await drive(clock, keys, isolates, 7, sent);
    // Exact, and used: past the first window, some window holds nearly all of the limit.
    expect(mostInOneWindow(sent, windowSeconds * 1000)).toBeLessThanOrEqual(limit);
    const late = sent.filter((s) => s.at >= sent[0]!.at + windowSeconds * 1000);
    expect(mostInOneWindow(late, windowSeconds * 1000)).toBeGreaterThanOrEqual(0.8 * limit);
    expect(late.filter((s) => s.status === 429).length).toBeGreaterThan(0.1 * late.length);
    // Refused in the isolates, not one guard call each: a few asks, and at most two renewals a second per isolate.
    expect(count(calls, "admit")).toBeLessThan(0.05 * (sent.length - 2 * RATE));
    expect(count(calls, "renewShares") / 2 / 7).toBeLessThanOrEqual(2);
  }, 120_000);

  it("a revoke of one member waits for the share (within the revoke budget): that key is refused from its very next request, the others go on spending the share", async () => {
    const clock = useTestClock();
    const calls: string[] = [];
    const isolates = isolatesOf(2, calls);
    const { keys } = await busyAccount(100_000, 60);
    await drive(clock, keys, isolates, 2);
    const revokedAt = clock.now();
    const sleeping = clock.nextSleep();
    const revoking = admin(`/keys/${keys[0]!.id}/revoke`, { method: "POST" });
    // It waits for the share's vouching of that key, at most a share life; traffic goes on meanwhile.
    expect((await sleeping) - revokedAt).toBeLessThanOrEqual(1_000);
    await drive(clock, keys, isolates, 1.5);
    expect((await revoking).status).toBe(200);
    calls.length = 0;
    const sent = await drive(clock, keys, isolates, 2);
    expect(sent.filter((s) => s.key === 0).map((s) => s.status)).toEqual(Array(sent.filter((s) => s.key === 0).length).fill(401));
    expect(sent.filter((s) => s.key !== 0).every(admitted)).toBe(true);
    // Its key's own requests ask the guard (and are refused); the others' come from the share.
    expect(count(calls, "admit")).toBe(sent.filter((s) => s.key === 0).length);
  }, 120_000);

  it("a limit raised while the share's windows are full applies to the very next request: the change waits for the members' vouching", async () => {
    const clock = useTestClock();
    const calls: string[] = [];
    const isolates = isolatesOf(2, calls);
    const { account, keys } = await busyAccount(60, 30);
    const sent = await drive(clock, keys, isolates, 2);
    expect(sent.filter(admitted).length).toBe(60);
    // Refused in the isolates by now: the windows are full.
    calls.length = 0;
    const refused = await drive(clock, keys, isolates, 0.5);
    expect(refused.every((s) => s.status === 429)).toBe(true);
    expect(count(calls, "admit")).toBe(0);
    const raise = () =>
      admin(`/accounts/zappway/${account}/plan`, {
        method: "PUT",
        json: { plan: null, limit_override: { windows: { plan_rate: { limit: 100_000, window_seconds: 30 } } } },
      });
    expect((await afterDrain(clock, raise)).status).toBe(200);
    for (let i = 0; i < 2; i++) {
      const response = await call(ROUTES[0]!, { headers: keyHeaders("zappway", keys[i]!.key), settings: isolates[i] });
      expect(admitted(response)).toBe(true);
    }
  }, 120_000);
});
