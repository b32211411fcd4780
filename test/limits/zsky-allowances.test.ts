import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { useTestClock } from "../clock";
import { admin, burst, call, callLive, createKey, json, keyHeaders, limitOverrides } from "../helpers";

// Dates on the test clock (test/clock.ts) are next year's, ahead of the real clock: a
// guard's alarm set for a moment the real clock has passed would fire by itself.
const YEAR = new Date().getUTCFullYear() + 1;
// A day in the middle of a month, 12:00 UTC.
const NOON = Date.UTC(YEAR, 10, 18, 12, 0, 0);
const roomy = { zsky: { windows: { burst: { limit: 10_000 } } } };

function zsky(key: string, overrides: unknown = roomy, more: Record<string, unknown> = {}) {
  const settings = { ...limitOverrides(overrides), ...more };
  const headers = { ...keyHeaders("zsky", key), "Content-Type": "application/json" };
  return {
    generate: (
      kind: "images" | "videos",
      prompt = "a lighthouse",
      extra: Record<string, string> = {},
      extraSettings: Record<string, unknown> = {},
    ) =>
      call(`/zsky/v1/${kind}/generate`, {
        method: "POST",
        headers: { ...headers, ...extra },
        body: JSON.stringify({ prompt }),
        settings: { ...settings, ...extraSettings },
      }),
    poll: (jobId: string) => call(`/zsky/v1/jobs/${jobId}`, { headers, settings }),
    usage: () => call("/zsky/v1/usage", { headers, settings }),
  };
}

/**
 * Polls until the job reaches a terminal state (the simulator finishes jobs after the
 * prompt's render-ms), for up to 20 s: a count of polls was a budget that shrank with
 * each call's speed (100 polls, 50 ms apart, are about the 5 s render of the test below).
 * A poll refused (not 200) ends it at once: a refusal does not turn into the job's end.
 */
async function waitForEnd(api: ReturnType<typeof zsky>, jobId: string): Promise<Record<string, unknown>> {
  for (const deadline = Date.now() + 20_000; Date.now() < deadline;) {
    const polled = await api.poll(jobId);
    if (polled.status !== 200) throw new Error(`the poll was answered ${polled.status}`);
    const body = await json(polled);
    if (["completed", "failed", "blocked"].includes(body.status)) return body;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("job never finished");
}

describe("ZSky burst: 20 requests per minute per key, submissions and account calls", () => {
  it("exactly 20 of 30, in ZSky's envelope, keys of one account independent", async () => {
    const a = await createKey("zsky");
    const b = await createKey("zsky", { account: a.account });
    useTestClock(NOON);
    const responses = await burst(30, () => call("/zsky/v1/usage", { headers: keyHeaders("zsky", a.key) }));
    expect(responses.filter((r) => r.status === 200)).toHaveLength(20);
    const refused = responses.filter((r) => r.status === 429);
    expect(refused).toHaveLength(10);
    expect(await json(refused[0]!)).toEqual({ error: "Rate limit exceeded" });
    expect(refused[0]!.headers.get("Retry-After")).toBe("60");
    expect(refused[0]!.headers.get("RateLimit-Policy")).toBe('"burst";q=20;w=60');
    expect((await call("/zsky/v1/usage", { headers: keyHeaders("zsky", b.key) })).status).toBe(200);
    // Submissions count in the same window.
    const submit = await call("/zsky/v1/images/generate", {
      method: "POST",
      headers: { ...keyHeaders("zsky", a.key), "Content-Type": "application/json" },
      body: '{"prompt":"a"}',
    });
    expect(submit.status).toBe(429);
  });
});

describe("ZSky polls: their own window, 300 per minute per key", () => {
  it("the reference client's 2-second polling through a minute-long job: never refused, with the burst used up", async () => {
    const { key, account } = await createKey("zsky");
    const api = zsky(key, {});
    useTestClock(NOON);
    const jobId = (await json(await api.generate("videos", "a lighthouse render-ms:600000"))).job_id as string;
    for (let i = 0; i < 19; i++) expect((await api.usage()).status).toBe(200);
    expect((await api.usage()).status).toBe(429);
    // A minute of polls every 2 s is 30: all answered, counted in `poll` only.
    const polls = [];
    for (let i = 0; i < 30; i++) polls.push(await api.poll(jobId));
    expect(polls.map((r) => r.status)).toEqual(Array(30).fill(200));
    expect(await json(polls[29]!)).toMatchObject({ job_id: jobId, status: "queued" });
    expect(polls[29]!.headers.get("RateLimit-Policy")).toBe('"poll";q=300;w=60');
    expect(polls[29]!.headers.get("RateLimit")).toBe('"poll";r=270;t=60');
  });

  it("exactly 300 of 310, and polls never use up the burst", async () => {
    const { key, account } = await createKey("zsky");
    useTestClock(NOON);
    const headers = keyHeaders("zsky", key);
    const responses = await burst(310, () => call("/zsky/v1/jobs/nope", { headers }));
    expect(responses.filter((r) => r.status === 404)).toHaveLength(300);
    const refused = responses.filter((r) => r.status === 429);
    expect(refused).toHaveLength(10);
    expect(await json(refused[0]!)).toEqual({ error: "Rate limit exceeded" });
    expect(refused[0]!.headers.get("Retry-After")).toBe("60");
    expect(refused[0]!.headers.get("RateLimit-Policy")).toBe('"poll";q=300;w=60');
    expect((await call("/zsky/v1/usage", { headers })).headers.get("RateLimit")).toBe('"burst";r=19;t=60');
  });
});

describe("ZSky concurrency: 3 running jobs per key", () => {
  it("a fourth submit waits; every terminal path releases the slot exactly once", async () => {
    const { key, account } = await createKey("zsky");
    const api = zsky(key);
    useTestClock(NOON);
    const jobs = [];
    // The origin renders for real time: long enough that none has ended when the fourth is
    // submitted, however loaded the machine (at 1.5 s a full npm test once saw the first end
    // first, and the fourth's re-check with the origin rightly freed its slot).
    for (const prompt of ["a cat", "forbidden thing", "will-fail please"]) {
      const r = await api.generate("images", `${prompt} render-ms:5000`);
      expect(r.status).toBe(200);
      jobs.push((await json(r)).job_id as string);
    }
    const fourth = await api.generate("images");
    expect(fourth.status).toBe(429);
    expect(await json(fourth)).toEqual({ error: "Concurrent job limit reached (3 per API key)" });
    // The first image should end 10 s (an image's typical time) after it was submitted.
    expect(fourth.headers.get("Retry-After")).toBe("10");

    // completed, blocked, failed: each frees one slot, and polling again frees nothing more.
    const ends = [];
    for (const id of jobs) ends.push((await waitForEnd(api, id)).status);
    expect(ends).toEqual(["completed", "blocked", "failed"]);
    for (const id of jobs) await api.poll(id);
    const next = await burst(4, () => api.generate("images"));
    expect(next.map((r) => r.status).sort()).toEqual([200, 200, 200, 429]);
  });

  it("jobs that ended at the origin free their slots without being polled (3 submits, the 4th after they finish)", async () => {
    const { key } = await createKey("zsky");
    const api = zsky(key);
    const jobs = [];
    // Jobs the simulator finishes at once.
    for (let i = 0; i < 3; i++) jobs.push((await json(await api.generate("images", `cup ${i} render-ms:0`))).job_id as string);
    const fourth = await api.generate("images");
    expect(fourth.status).toBe(200);
    // The rechecked jobs are still the caller's to poll, once each to completion.
    for (const id of jobs) expect(await json(await api.poll(id))).toMatchObject({ job_id: id, status: "completed" });
    expect(await json(await api.usage())).toMatchObject({ images_used: 4 });
  });

  it("a restart forgets which jobs ended (memory only): the full pool is re-checked with the origin, and the submit goes through", async () => {
    const { key, account } = await createKey("zsky");
    const api = zsky(key);
    const jobs = [];
    for (let i = 0; i < 3; i++) jobs.push((await json(await api.generate("images", `mug ${i}`))).job_id as string);
    for (const id of jobs) expect((await waitForEnd(api, id)).status).toBe("completed");
    const stub = env.ACCOUNT_GUARD.get(env.ACCOUNT_GUARD.idFromName(`zsky:${account}`));
    await expect(runInDurableObject(stub, (_guard, state) => state.abort("restart"))).rejects.toThrow("restart");
    // The three look running to the restarted guard; the origin says they ended.
    const fourth = await api.generate("images");
    expect(fourth.status).toBe(200);
    expect(await json(await api.usage())).toMatchObject({ images_used: 4 });
  });

  it("jobs still running: 429 with Retry-After when the first should end (60 s for a video), then a short retry once it is overdue", async () => {
    const { key, account } = await createKey("zsky");
    const api = zsky(key);
    const clock = useTestClock(NOON);
    for (let i = 0; i < 3; i++) expect((await api.generate("videos", `sea ${i} render-ms:600000`)).status).toBe(200);
    const fourth = await api.generate("images");
    expect(fourth.status).toBe(429);
    expect(fourth.headers.get("Retry-After")).toBe("60");
    await clock.advanceTo(NOON + 45_000);
    expect((await api.generate("images")).headers.get("Retry-After")).toBe("15");
    // Past a video's typical minute, and the origin says it still runs: retry shortly.
    await clock.advanceTo(NOON + 90_000);
    const overdue = await api.generate("images");
    expect(overdue.status).toBe(429);
    expect(overdue.headers.get("Retry-After")).toBe("5");
  });

  it("an origin slow to answer the re-check: the refusal comes back within its 2 s budget", async () => {
    const { key } = await createKey("zsky");
    const api = zsky(key);
    for (let i = 0; i < 3; i++) expect((await api.generate("images", `slow ${i} status-delay-ms:10000`)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    const fourth = await api.generate("images");
    expect(fourth.status).toBe(429);
    expect(await json(fourth)).toEqual({ error: "Concurrent job limit reached (3 per API key)" });
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it("an origin refusal or failure takes no slot and no allowance", async () => {
    const { key, account } = await createKey("zsky");
    const api = zsky(key);
    useTestClock(NOON);
    for (let i = 0; i < 4; i++) expect((await api.generate("videos", "x", { "X-Sim-Fail": "400" })).status).toBe(400);
    for (let i = 0; i < 2; i++) expect((await api.generate("videos", "x", { "X-Sim-Fail": "503" })).status).toBe(503);
    // Still three free slots, and nothing counted.
    expect((await burst(3, () => api.generate("videos"))).map((r) => r.status)).toEqual([200, 200, 200]);
    expect(await json(await api.usage())).toMatchObject({ videos_used: 3, images_used: 0 });
  });
});

describe("ZSky timeouts: a timed-out submit holds its slot until zgate knows whether the origin made the job", () => {
  const oneSlot = { zsky: { windows: { burst: { limit: 10_000 } }, generation: { concurrentJobsPerKey: 1 } } };
  /** A generate the origin answers after 1 s, past a 500 ms ORIGIN_TIMEOUT_MS; returns as soon as the caller has its answer. */
  const slowGenerate = (key: string, prompt: string, extra: Record<string, string> = {}) =>
    callLive("/zsky/v1/images/generate", {
      method: "POST",
      headers: { ...keyHeaders("zsky", key), "Content-Type": "application/json", "X-Sim-Delay-Ms": "1000", ...extra },
      body: JSON.stringify({ prompt }),
      settings: { ...limitOverrides(oneSlot), ORIGIN_TIMEOUT_MS: "500" },
    });
  /** Calls `attempt` every 100 ms until `done` says so (at most 8 s): what the origin does takes real time. */
  async function until<T>(attempt: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
    for (let deadline = Date.now() + 8000; ; await new Promise((r) => setTimeout(r, 100))) {
      const value = await attempt();
      if (done(value) || Date.now() > deadline) return value;
    }
  }

  it("the origin made the job: 504 at the timeout, then the job counts and holds the slot until the origin says it ended", async () => {
    const { key } = await createKey("zsky");
    const api = zsky(key, oneSlot);
    const started = Date.now();
    // The origin answers 3 s in: the 504 comes well before (under a full npm test's load
    // the 500 ms timeout's answer once took 1,032 ms, past an origin answering at 1 s).
    const timedOut = await slowGenerate(key, "a lighthouse render-ms:1500", { "X-Sim-Delay-Ms": "3000" });
    expect(timedOut.status).toBe(504);
    expect(await json(timedOut)).toEqual({ error: "Upstream service timed out" });
    expect(Date.now() - started).toBeLessThan(3000);
    // Until the origin answers, zgate cannot know whether a job runs: the slot is held.
    const meanwhile = await api.generate("images");
    expect(meanwhile.status).toBe(429);
    expect(await json(meanwhile)).toEqual({ error: "Concurrent job limit reached (1 per API key)" });

    // The origin's late answer says it made the job: it counts, and holds the slot while it runs there.
    const counted = await until(
      () => api.usage().then(json),
      (usage) => usage.images_used === 1,
    );
    expect(counted).toMatchObject({ images_used: 1 });
    expect((await api.generate("images")).status).toBe(429);
    // Once it has ended at the origin, the full pool's re-check frees its slot.
    const next = await until(
      () => api.generate("images"),
      (r) => r.status !== 429,
    );
    expect(next.status).toBe(200);
    expect(Date.now() - started).toBeGreaterThan(2000);
    expect(await json(await api.usage())).toMatchObject({ images_used: 2 });
  });

  it("the origin made no job: 504 at the timeout, the slot held until the origin's answer says so, then given back with the allowance", async () => {
    const { key } = await createKey("zsky");
    const api = zsky(key, oneSlot);
    const timedOut = await slowGenerate(key, "a lighthouse", { "X-Sim-Fail": "503" });
    expect(timedOut.status).toBe(504);
    const meanwhile = await api.generate("images");
    expect(meanwhile.status).toBe(429);
    expect(await json(meanwhile)).toEqual({ error: "Concurrent job limit reached (1 per API key)" });
    // The origin answers 503 (no job): the slot is free again and nothing was counted but the next job.
    const next = await until(
      () => api.generate("images"),
      (r) => r.status !== 429,
    );
    expect(next.status).toBe(200);
    expect(await json(await api.usage())).toMatchObject({ images_used: 1 });
  });
});

describe("ZSky daily soft caps per key (UTC day)", () => {
  it("refuses past the cap until 00:00 UTC, then admits; liftable per key", async () => {
    const { id, key, account } = await createKey("zsky");
    const api = zsky(key, {
      zsky: { windows: { burst: { limit: 10_000 } }, generation: { dailyPerKey: { image: 2 }, concurrentJobsPerKey: 100 } },
    });
    const clock = useTestClock(Date.UTC(YEAR, 10, 18, 23, 59, 30));
    expect((await api.generate("images")).status).toBe(200);
    expect((await api.generate("images", "blocked-at-submit")).status).toBe(451); // blocked ones count
    const capped = await api.generate("images");
    expect(capped.status).toBe(429);
    expect(await json(capped)).toEqual({ error: "Daily image cap reached (2 per UTC day)" });
    expect(capped.headers.get("Retry-After")).toBe("30");
    // Videos have their own cap.
    expect((await api.generate("videos")).status).toBe(200);

    await clock.advanceTo(Date.UTC(YEAR, 10, 19, 0, 0, 0));
    expect((await api.generate("images")).status).toBe(200);
    expect((await api.generate("images")).status).toBe(200);
    expect((await api.generate("images")).status).toBe(429);

    await admin(`/keys/${id}`, { method: "PATCH", json: { limit_override: { daily_per_key: { image: 5 } } } });
    expect((await api.generate("images")).status).toBe(200);
  });
});

describe("ZSky monthly allowance per account (UTC calendar month, no rollover)", () => {
  const small = {
    zsky: { windows: { burst: { limit: 10_000 } }, generation: { monthlyPerAccount: { image: 3, video: 1 }, concurrentJobsPerKey: 100 } },
  };

  it("hard stop with 429 until the 1st at 00:00 UTC; two keys share the account's allowance", async () => {
    const a = await createKey("zsky");
    const b = await createKey("zsky", { account: a.account });
    const clock = useTestClock(Date.UTC(YEAR, 10, 30, 23, 0, 0));
    expect((await zsky(a.key, small).generate("images")).status).toBe(200);
    expect((await zsky(b.key, small).generate("images")).status).toBe(200);
    expect((await zsky(a.key, small).generate("images", "blocked-at-submit")).status).toBe(451);
    const stop = await zsky(b.key, small).generate("images");
    expect(stop.status).toBe(429);
    expect(await json(stop)).toEqual({ error: "Monthly image allowance reached" });
    expect(stop.headers.get("Retry-After")).toBe("3600");
    expect(await json(await zsky(a.key, small).usage())).toEqual({
      videos_used: 0,
      videos_overage: 0,
      images_used: 3,
      images_overage: 0,
      overage_charged_cents: 0,
      base_videos_allowance: 1,
      base_images_allowance: 3,
      month_start: `${YEAR}-11-01`,
    });

    await clock.advanceTo(Date.UTC(YEAR, 11, 1, 0, 0, 0));
    expect((await zsky(b.key, small).generate("images")).status).toBe(200);
    expect(await json(await zsky(b.key, small).usage())).toMatchObject({ images_used: 1, month_start: `${YEAR}-12-01` });
  });

  it("with overage opted in: counted and priced up to the budget, whose unused part rolls over", async () => {
    const { key, account } = await createKey("zsky");
    const api = zsky(key, small);
    const clock = useTestClock(Date.UTC(YEAR, 9, 10));
    const opt = await admin(`/accounts/zsky/${account}/overage`, { method: "PUT", json: { enabled: true, monthly_cap_cents: 110 } });
    expect(opt.status).toBe(200);
    expect((await api.generate("videos")).status).toBe(200); // base
    expect((await api.generate("videos")).status).toBe(200); // overage 50
    expect((await api.generate("videos")).status).toBe(200); // overage 100
    const over = await api.generate("videos");
    expect(over.status).toBe(429); // 150 > 110
    expect(await json(await api.usage())).toMatchObject({ videos_used: 3, videos_overage: 2, overage_charged_cents: 100 });
    for (let i = 0; i < 2; i++) expect((await api.generate("images")).status).toBe(200);
    expect((await api.generate("images")).status).toBe(200); // base image 3
    expect((await api.generate("images")).status).toBe(200); // overage 5 -> 105
    expect((await api.generate("images")).status).toBe(200); // overage 5 -> 110
    expect((await api.generate("images")).status).toBe(429);

    // Next month: the base resets; the budget is the cap again (nothing was left to roll over).
    await clock.advanceTo(Date.UTC(YEAR, 10, 3));
    expect((await api.generate("videos")).status).toBe(200);
    expect(await json(await api.usage())).toMatchObject({ videos_used: 1, videos_overage: 0, overage_charged_cents: 0 });
    expect((await api.generate("videos")).status).toBe(200); // 50 of 110
    // The month after: 60 unspent rolls over, so 170 is available: three videos (150), not four.
    await clock.advanceTo(Date.UTC(YEAR, 11, 3));
    expect((await api.generate("videos")).status).toBe(200); // base
    const overage = [];
    for (let i = 0; i < 4; i++) overage.push((await api.generate("videos")).status);
    expect(overage).toEqual([200, 200, 200, 429]);

    await admin(`/accounts/zsky/${account}/overage`, { method: "PUT", json: { enabled: false, monthly_cap_cents: 0 } });
    expect((await api.generate("videos")).status).toBe(429);
    expect((await admin(`/accounts/zsky/${account}/overage`, { method: "PUT", json: { enabled: "yes" } })).status).toBe(400);
  });
});

describe("ZSky safety suspension", () => {
  /** `blocked` of `total` attempts, blocked ones at submit (451). */
  async function attempts(api: ReturnType<typeof zsky>, total: number, blocked: number) {
    for (let i = 0; i < total; i++) {
      const r = await api.generate("images", i < blocked ? "blocked-at-submit" : "fine");
      expect([200, 451]).toContain(r.status);
    }
  }
  const many = { zsky: { windows: { burst: { limit: 10_000 } }, generation: { concurrentJobsPerKey: 100 } } };

  it("9 attempts all blocked: not suspended", async () => {
    const { key, account } = await createKey("zsky");
    useTestClock(NOON);
    const api = zsky(key, many);
    await attempts(api, 9, 9);
    expect((await api.usage()).status).toBe(200);
  });

  it("10 attempts with 5 blocked: not suspended", async () => {
    const { key, account } = await createKey("zsky");
    useTestClock(NOON);
    const api = zsky(key, many);
    await attempts(api, 10, 5);
    expect((await api.usage()).status).toBe(200);
  });

  it("10 attempts with 6 blocked: 403 on every call for 24 hours, then lifted", async () => {
    const { key, account } = await createKey("zsky");
    const clock = useTestClock(NOON);
    const api = zsky(key, many);
    await attempts(api, 10, 6);
    const suspended = await api.usage();
    expect(suspended.status).toBe(403);
    expect(await json(suspended)).toEqual({ error: "API key suspended" });
    expect(suspended.headers.get("Retry-After")).toBe("86400");
    expect((await api.generate("images")).status).toBe(403);
    expect((await api.poll("anything")).status).toBe(403);

    await clock.advanceTo(NOON + 24 * 3_600_000 - 1000);
    expect((await api.usage()).headers.get("Retry-After")).toBe("1");
    await clock.advanceTo(NOON + 24 * 3_600_000);
    expect((await api.usage()).status).toBe(200);
  });

  it("jobs that end `blocked` count as rejections; attempts older than 30 minutes do not", async () => {
    const { key } = await createKey("zsky");
    // Polls unleased: the suspension a poll brings about would wait for their leases, on a clock that stands still.
    const api = zsky(key, many, { GUARD_LEASE_MS: "0" });
    const clock = useTestClock(NOON);
    await attempts(api, 4, 4); // at 12:00, soon outside the window
    await clock.advanceTo(NOON + 31 * 60_000);
    const ids = [];
    for (let i = 0; i < 6; i++) ids.push((await json(await api.generate("images", "forbidden"))).job_id);
    await attempts(api, 4, 0);
    for (const id of ids.slice(0, 5)) await waitForEnd(api, id);
    expect((await api.usage()).status).toBe(200); // 5 of 10 in the window
    await waitForEnd(api, ids[5]).catch(() => undefined);
    expect((await api.usage()).status).toBe(403); // 6 of 10
  });

  it("an admin can lift a suspension", async () => {
    const { id, key, account } = await createKey("zsky");
    useTestClock(NOON);
    const api = zsky(key, many);
    await attempts(api, 10, 10);
    expect((await api.usage()).status).toBe(403);
    const lifted = await admin(`/keys/${id}/lift-suspension`, { method: "POST" });
    expect(await json(lifted)).toEqual({ id, was_suspended: true });
    expect((await api.usage()).status).toBe(200);
    const audit = await json(await admin(`/audit?target=${id}&action=key.lift_suspension`));
    expect(audit.entries).toHaveLength(1);
  });
});
