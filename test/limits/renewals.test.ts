import { describe, expect, it } from "vitest";
import { afterDrain, useTestClock, type TestClock } from "../clock";
import { REVOKE_BUDGET_MS } from "../../src/admit/lease-book";
import { admin, aroundGuards, call, callLive, countingGuards, createKey, json, keyHeaders, limitOverrides, someIp } from "../helpers";
import { fetchUrl, finishedImage, zskyClient } from "../results/zsky-client";

/**
 * Leases renewed ahead of need (src/admit/lease-book.ts), far from the guard: every guard
 * call's answer reaches the isolate RTT_MS after the guard gave it, on the test clock
 * (countingGuards' inTransit), so the isolate measures its guard as far and renews its
 * leases in the background, between requests too. Two isolates are two settings objects:
 * each is parsed apart, and so has a lease book of its own.
 */

const RTT_MS = 150;
const roomy = limitOverrides({ zappway: { windows: { plan_rate: { limit: 100_000 } } } });

/** `count` isolates (two unless told) of one deployment whose guard is RTT_MS away; `calls` names every guard call they make, in order. */
function farIsolates(clock: TestClock, settings: Record<string, unknown> = {}, count = 2) {
  const calls: string[] = [];
  const guards = countingGuards(calls, () => clock.advance(RTT_MS));
  return { calls, isolates: Array.from({ length: count }, () => ({ ...settings, ACCOUNT_GUARD: guards })) };
}

const count = (calls: string[], method: string) => calls.filter((m) => m === method).length;

describe("leases renewed ahead of need, far from the guard", () => {
  it("a ZappWay Free key at 1 req/s over two isolates, at its plan's limit: after each isolate's first request and the first isolate's second, no request waits for the guard", async () => {
    const clock = useTestClock();
    const { calls, isolates } = farIsolates(clock);
    const { key } = await createKey("zappway");
    const start = clock.now();
    const statuses: number[] = [];
    const onPath: number[] = [];
    for (let i = 0; i < 30; i++) {
      const before = count(calls, "admit");
      const response = await call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings: isolates[i % 2] });
      statuses.push(response.status);
      onPath.push(count(calls, "admit") - before);
      await clock.advanceTo(start + (i + 1) * 1000);
    }
    expect(statuses).toEqual(Array(30).fill(200));
    // Each isolate's first request asks the guard (no lease), and so does the first
    // isolate's second (the key's first request told the guard nothing of its pace). The
    // second isolate's first answer carried the guard's hint of the key's gap there (two
    // isolates, a request a second: 2 s), so its second request finds a renewal timed to it.
    expect(onPath.slice(0, 4)).toEqual([1, 1, 1, 0]);
    expect(onPath.slice(4)).toEqual(Array(26).fill(0));
    // What it costs: the renewals in the background, a few per request, one per lease each.
    const renewals = count(calls, "renewLeases");
    expect(renewals).toBeGreaterThan(0);
    expect(renewals / 30).toBeLessThan(4);
  });

  it.each([
    ["1 req/s", 1000],
    ["0.5 req/s", 2000],
  ])(
    "a ZappWay Free key at %s over two isolates costs about one guard call a request, renewals and hand-backs included, and none waits after each isolate's first but the first isolate's second",
    async (_rate, intervalMs) => {
      const clock = useTestClock();
      const { calls, isolates } = farIsolates(clock);
      const { key } = await createKey("zappway");
      const start = clock.now();
      const requests = 30;
      const onPath: number[] = [];
      for (let i = 0; i < requests; i++) {
        const before = count(calls, "admit");
        expect((await call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings: isolates[i % 2] })).status).toBe(200);
        onPath.push(count(calls, "admit") - before);
        await clock.advanceTo(start + (i + 1) * intervalMs);
      }
      expect(onPath.slice(0, 4)).toEqual([1, 1, 1, 0]);
      expect(onPath.slice(4)).toEqual(Array(requests - 4).fill(0));
      // Until the renewals stop: each isolate's idle horizon (twice its gap, at most 5 s) and a lease life.
      await clock.advance(10_000);
      // One renewal timed to each request (not one per lease life while the key is idle
      // between its requests: 3 to 7 calls a request), a few more for requests this test's
      // round trips made late, the first three asks, and the hand-backs at the end.
      expect(calls.length / requests).toBeLessThan(1.6);
    },
  );

  it("an isolate new to a warm key is told its pace by the guard: its second request is served from a renewal, without waiting", async () => {
    const clock = useTestClock();
    const { calls, isolates } = farIsolates(clock, {}, 3);
    const { key } = await createKey("zappway");
    const start = clock.now();
    let sent = 0;
    /** The key's next request, at 1 req/s, through isolate `i`; how many guard calls it waited for. */
    const send = async (i: number) => {
      await clock.advanceTo(Math.max(clock.now(), start + sent++ * 1000));
      const before = count(calls, "admit");
      expect((await call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings: isolates[i] })).status).toBe(200);
      return count(calls, "admit") - before;
    };
    // Warm in two isolates, alternating.
    for (let i = 0; i < 10; i++) await send(i % 2);
    // A third isolate takes every third request: its first asks the guard, its second (3 s
    // later) finds a renewal the guard's hint timed (the key's gap across isolates times the
    // three isolates it came through).
    const third: number[] = [];
    for (let i = 0; i < 12; i++) {
      const waited = await send(i % 3);
      if (i % 3 === 2) third.push(waited);
    }
    expect(third).toEqual([1, 0, 0, 0]);
  });

  it("a slow key whose every request lands in an isolate new to it is hinted no pace once the guard has heard it from five: no renewal is asked for it", async () => {
    const clock = useTestClock();
    const requests = 30;
    const { calls, isolates } = farIsolates(clock, {}, requests);
    const { key } = await createKey("zappway");
    const start = clock.now();
    let settled = 0;
    for (let i = 0; i < requests; i++) {
      await clock.advanceTo(Math.max(clock.now(), start + i * 1000));
      // By then the renewals the first few isolates were hinted into (the guard had heard
      // the key from fewer than five, which two isolates alternating would look like) are over.
      if (i === 12) settled = calls.length;
      const before = count(calls, "admit");
      expect((await call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings: isolates[i] })).status).toBe(200);
      expect(count(calls, "admit") - before).toBe(1);
    }
    await clock.advance(10_000);
    // From five isolates on, the hint would be six of its gaps or more, longer than an
    // isolate keeps a lease alive (5 s): none is given, one call a request, nothing beside it.
    expect(calls.slice(settled).filter((m) => m !== "admit")).toEqual([]);
  });

  it("a subject that stops calling is renewed no more: its lease is handed back, and the guard hears nothing after", async () => {
    const clock = useTestClock();
    const { calls, isolates } = farIsolates(clock);
    const { key } = await createKey("zappway");
    const send = () => call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings: isolates[0] });
    for (let i = 0; i < 4; i++) {
      expect((await send()).status).toBe(200);
      await clock.advance(1000);
    }
    // Twice its usual gap, a lease life and a few round trips later, nothing is left to keep alive.
    await clock.advance(2 * 1000 + 1000 + 4 * RTT_MS);
    expect(calls).toContain("refundLeases");
    const made = calls.length;
    await clock.advance(10_000);
    expect(calls.length).toBe(made);
    // Every token renewed and not spent came back: the window holds the 4 requests, and this one.
    const probe = await call("/zappway/api/v1/datastores", { headers: keyHeaders("zappway", key), settings: isolates[1] });
    expect(probe.headers.get("RateLimit")).toMatch(/^"plan_rate";r=55;/);
  });

  it("one renewal call renews every lease an isolate holds on one guard: 6 keys on 2 routes of one account", async () => {
    const clock = useTestClock();
    const { calls, isolates } = farIsolates(clock, roomy);
    const keys = await keysOfOneAccount(6);
    const routes = ["/zappway/api/v1/agents", "/zappway/api/v1/datastores"];
    const start = clock.now();
    // Every subject (key and route) at 2 req/s for 4 s, all in one isolate.
    for (let tick = 0; tick < 8; tick++) {
      for (const key of keys)
        for (const route of routes)
          expect((await call(route, { headers: keyHeaders("zappway", key), settings: isolates[0] })).status).not.toBe(429);
      // Guard calls on the way moved the clock too (a round trip each).
      await clock.advanceTo(Math.max(clock.now(), start + (tick + 1) * 500));
    }
    const seconds = (clock.now() - start) / 1000;
    // Renewed one subject at a time, 12 subjects would need about 12 calls per lease life.
    // Together: a few calls a second for the whole account.
    expect(count(calls, "renewLeases") / seconds).toBeLessThan(4);
    // And the subjects were admitted from those leases: most requests asked nothing. (Not
    // all after their first two: a far subject's lease is renewed for when its next request
    // is expected, and here every guard call moves the clock a round trip, so a subject's
    // gaps swing between 0.15 and 2.4 s, and one that comes much earlier waits.)
    expect(count(calls, "admit")).toBeLessThan((keys.length * routes.length * 8) / 2);
  });

  it("slow subjects of one account whose requests are spread in time still share renewal calls: 6 keys on 2 routes, each every 2 s", async () => {
    const clock = useTestClock();
    const { calls, isolates } = farIsolates(clock, roomy);
    const keys = await keysOfOneAccount(6);
    const subjects = keys.flatMap((key) => ["/zappway/api/v1/agents", "/zappway/api/v1/datastores"].map((route) => ({ key, route })));
    const gapMs = 2000;
    const start = clock.now();
    // One subject every gap / 12: each subject every 2 s, no two at once.
    for (let slot = 0; slot < 6 * subjects.length; slot++) {
      await clock.advanceTo(Math.max(clock.now(), start + (slot * gapMs) / subjects.length));
      const { key, route } = subjects[slot % subjects.length]!;
      expect((await call(route, { headers: keyHeaders("zappway", key), settings: isolates[0] })).status).not.toBe(429);
    }
    const seconds = (clock.now() - start) / 1000;
    // Each timed to its own next request, the 12 subjects made 3.7 calls a second here;
    // batched, a call renews the subjects expected in the next half lease life (1.4).
    expect(count(calls, "renewLeases") / seconds).toBeLessThan(2.5);
    expect(count(calls, "admit")).toBeLessThan(subjects.length * 3);
  });

  it("a revoke waits for the renewed leases, within the revoke budget, and nothing is admitted after it returns", async () => {
    const clock = useTestClock();
    const { isolates } = farIsolates(clock);
    const { id, send } = await warmKeyAcross(clock, isolates);
    const revokedAt = clock.now();
    expect((await afterDrain(clock, () => admin(`/keys/${id}/revoke`, { method: "POST" }))).status).toBe(200);
    // The longest lease a far guard's isolate asks for: the revoke's budget less its own round trips.
    expect(clock.now() - revokedAt).toBeLessThanOrEqual(REVOKE_BUDGET_MS);
    for (let i = 0; i < 4; i++) expect((await send(i)).status).toBe(401);
  });

  it("a revoked key that keeps calling is never renewed: one guard call per refused request, no renewal beside it", async () => {
    const clock = useTestClock();
    const { calls, isolates } = farIsolates(clock);
    const { id, send } = await warmKeyAcross(clock, isolates);
    await afterDrain(clock, () => admin(`/keys/${id}/revoke`, { method: "POST" }));
    // Each isolate's next request may still find a renewal of before the revoke refused.
    for (let i = 0; i < 2; i++) {
      expect((await send(i)).status).toBe(401);
      await clock.advance(1000);
    }
    const before = calls.length;
    for (let i = 0; i < 10; i++) {
      expect((await send(i)).status).toBe(401);
      await clock.advance(1000);
    }
    expect(calls.slice(before).filter((m) => m !== "admit")).toEqual([]);
  });
});

/** Guard stubs whose `method` calls are held until `release` resolves (as if slow to arrive); other calls go at once. */
const holding = (method: string, release: Promise<void>, landed?: () => void) =>
  aroundGuards((_name, called, call) => (called === method ? release.then(call).finally(landed) : call()));

/**
 * Guard stubs that note each call as it is asked and as it is answered (`<method> asked`,
 * `<method> answered`); `admit` answers are held `admitMs` of real time, as if far away.
 */
const tracing = (events: string[], admitMs: number) =>
  aroundGuards(async (_name, method, call) => {
    events.push(`${method} asked`);
    const answer = await call();
    if (method === "admit") await new Promise((resolve) => setTimeout(resolve, admitMs));
    events.push(`${method} answered`);
    return answer;
  });

/** A new ZappWay key called once a second, 8 times, through two isolates in turn; `send(i)` calls it through isolate i mod 2. */
async function warmKeyAcross(clock: TestClock, isolates: ReturnType<typeof farIsolates>["isolates"]) {
  const { id, key } = await createKey("zappway");
  const send = (i: number) => call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings: isolates[i % 2] });
  const start = clock.now();
  for (let i = 0; i < 8; i++) {
    expect((await send(i)).status).toBe(200);
    await clock.advanceTo(start + (i + 1) * 1000);
  }
  return { id, send };
}

/** `n` ZappWay keys of one new account. */
async function keysOfOneAccount(n: number): Promise<string[]> {
  const first = await createKey("zappway");
  const others = await Promise.all(Array.from({ length: n - 1 }, async () => (await createKey("zappway", { account: first.account })).key));
  return [first.key, ...others];
}

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

describe("ZSky: one guard round trip on the answer's path", () => {
  const zsky = limitOverrides({ zsky: { windows: { burst: { limit: 100_000 }, poll: { limit: 100_000 } } } });

  it("a generate call is answered before its settlement reaches the guard, and a poll that gets there first waits for it", async () => {
    const settlement = gate();
    const settings = { ...zsky, ACCOUNT_GUARD: holding("settleGeneration", settlement.opened) };
    const { key } = await createKey("zsky");
    const headers = { ...keyHeaders("zsky", key), "Content-Type": "application/json" };
    const submitted = await callLive("/zsky/v1/images/generate", {
      method: "POST",
      headers,
      body: JSON.stringify({ prompt: "render-ms:0 a harbour" }),
      settings,
    });
    expect(submitted.status).toBe(200);
    const jobId = (await json(submitted)).job_id as string;
    // The settlement is still held: the job is not the account's yet when the poll reaches
    // the guard (real I/O, which no test clock orders: a moment for the poll to get there).
    const polling = call(`/zsky/v1/jobs/${jobId}`, { headers, settings });
    await new Promise((resolve) => setTimeout(resolve, 20));
    settlement.open();
    const polled = await polling;
    expect(polled.status).toBe(200);
    expect((await json(polled)).status).toBe("completed");
  });

  it("the poll that completes a job is answered before the guard frees its slot, which it then does", async () => {
    const ending = gate();
    const finished = gate();
    const settings = {
      ...limitOverrides({
        zsky: { windows: { burst: { limit: 100_000 }, poll: { limit: 100_000 } }, generation: { concurrentJobsPerKey: 1 } },
      }),
      ACCOUNT_GUARD: holding("finishJob", ending.opened, finished.open),
    };
    const { key } = await createKey("zsky");
    const headers = { ...keyHeaders("zsky", key), "Content-Type": "application/json" };
    const generate = () =>
      call("/zsky/v1/images/generate", { method: "POST", headers, body: JSON.stringify({ prompt: "render-ms:0 a quay" }), settings });
    const jobId = (await json(await generate())).job_id as string;
    const polled = await callLive(`/zsky/v1/jobs/${jobId}`, { headers, settings });
    expect(polled.status).toBe(200);
    const done = await json(polled);
    expect(done.status).toBe("completed");
    expect(done.result_url).toMatch(new RegExp(`/zsky/v1/results/${jobId}\\?`));
    // Once it lands the one slot is free. (A submit sent while it was still on its way, which
    // a loaded machine lets overtake it, was refused 429 in a full run: wait for it to land.)
    ending.open();
    await finished.opened;
    expect((await generate()).status).toBe(200);
  });

  it("a result download asks whether its link was refused while its admission is on its way; one its address's standing refusal answers asks no guard at all", async () => {
    const { key } = await createKey("zsky");
    const url = (await json((await finishedImage(zskyClient(key, zsky), "a tide table")).response)).result_url as string;
    const events: string[] = [];
    const tight = limitOverrides({ zsky: { windows: { burst: { limit: 100_000 }, download_ip: { limit: 1 } } } });
    const settings = { ...tight, ACCOUNT_GUARD: tracing(events, 50) };
    const from = { "CF-Connecting-IP": someIp() };
    expect((await fetchUrl(url, { settings, headers: from })).status).toBe(200);
    // The first download from an address: admission asks its address's guard (no lease yet).
    expect(events).toContain("resultLinksRefusedSince asked");
    expect(events.indexOf("resultLinksRefusedSince asked")).toBeLessThan(events.indexOf("admit answered"));
    expect((await fetchUrl(url, { settings, headers: from })).status).toBe(429);
    const before = events.length;
    expect((await fetchUrl(url, { settings, headers: from })).status).toBe(429);
    expect(events.slice(before)).toEqual([]);
  });
});
