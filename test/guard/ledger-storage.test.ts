import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { GenerationLimits } from "../../src/limits/types";
import { useTestClock } from "../clock";
import { call, callLive, createKey, json, keyHeaders, limitOverrides } from "../helpers";

/**
 * ZSky's allowances and jobs in the guard's storage (generation-ledger.ts): an object
 * written by the previous schema (version 2: key/day and account/month counter rows,
 * `jobs` plus `purged_jobs`) keeps its counts and its jobs after the upgrade to version 3.
 */
// On the test clock (test/clock.ts), next year: ahead of the real clock.
const NOON = Date.UTC(new Date().getUTCFullYear() + 1, 10, 18, 12, 0, 0);
const TODAY = new Date(NOON).toISOString().slice(0, 10);
const YESTERDAY = new Date(NOON - 86_400_000).toISOString().slice(0, 10);
const MONTH = TODAY.slice(0, 7);
const guardOf = (name: string) => env.ACCOUNT_GUARD.get(env.ACCOUNT_GUARD.idFromName(name));
const restart = (stub: DurableObjectStub) =>
  expect(runInDurableObject(stub, (_guard, state) => state.abort("restart"))).rejects.toThrow("restart");

function zsky(key: string, concurrentJobsPerKey = 100) {
  const settings = limitOverrides({
    zsky: {
      windows: { burst: { limit: 10_000 } },
      generation: { dailyPerKey: { image: 4 }, monthlyPerAccount: { image: 6 }, concurrentJobsPerKey },
    },
  });
  const headers = { ...keyHeaders("zsky", key), "Content-Type": "application/json" };
  return {
    settings,
    generate: () => call("/zsky/v1/images/generate", { method: "POST", headers, body: '{"prompt":"a lighthouse"}', settings }),
    poll: (jobId: string, extra: Record<string, string> = {}) =>
      call(`/zsky/v1/jobs/${jobId}`, { headers: { ...headers, ...extra }, settings }),
    usage: () => call("/zsky/v1/usage", { headers, settings }),
  };
}

describe("ZSky ledger storage upgrade", () => {
  it("a guard at schema version 2 keeps its daily and monthly counts, its jobs and its purges", async () => {
    const { id, key, account } = await createKey("zsky");
    const api = zsky(key);
    useTestClock(NOON);
    const live = (await json(await api.generate())).job_id as string;
    const purged = (await json(await api.generate())).job_id as string;
    const stub = guardOf(`zsky:${account}`);
    // Version 2's storage for the same history: today's two for the key, the month's
    // three for the account (one from another key), both jobs in `jobs`, one purged.
    await runInDurableObject(stub, (_guard, state) => {
      const { sql } = state.storage;
      const jobs = sql.exec<{ job_id: string; created_at: number }>("SELECT job_id, created_at FROM owned_jobs").toArray();
      sql.exec("DROP TABLE gen_usage; DROP TABLE owned_jobs; DELETE FROM gen_counts; DELETE FROM jobs; DELETE FROM purged_jobs");
      sql.exec("INSERT INTO gen_counts (scope, period, kind, used, overage) VALUES (?, ?, 'image', 2, 0)", `key:${id}`, TODAY);
      sql.exec("INSERT INTO gen_counts (scope, period, kind, used, overage) VALUES (?, ?, 'image', 1, 0)", `key:${id}`, YESTERDAY);
      sql.exec("INSERT INTO gen_counts (scope, period, kind, used, overage) VALUES ('account', ?, 'image', 3, 0)", MONTH);
      for (const job of jobs)
        sql.exec("INSERT INTO jobs (job_id, key_id, kind, created_at) VALUES (?, ?, 'image', ?)", job.job_id, id, job.created_at);
      sql.exec("INSERT INTO purged_jobs (job_id) VALUES (?)", purged);
      sql.exec("CREATE INDEX safety_by_key ON safety_events (key_id, at)");
      sql.exec("UPDATE schema_version SET version = 2");
    });
    // Version 2 kept the jobs' store modes in D1 (guard schema step 4 moved new ones into the guard).
    for (const job of [live, purged])
      await env.DB.prepare("INSERT INTO zsky_jobs (job_id, account_id, key_id, kind, store, created_at) VALUES (?, ?, ?, 'image', 1, ?)")
        .bind(job, account, id, NOON)
        .run();
    await restart(stub);

    expect((await api.poll(live)).status).toBe(200);
    expect((await api.poll(purged)).status).toBe(404);
    expect(await json(await api.usage())).toMatchObject({ images_used: 3 });
    // Daily cap 4: two counted today, two more.
    expect((await api.generate()).status).toBe(200);
    expect((await api.generate()).status).toBe(200);
    const capped = await api.generate();
    expect(capped.status).toBe(429);
    expect(await json(capped)).toEqual({ error: "Daily image cap reached (4 per UTC day)" });
    expect(await json(await api.usage())).toMatchObject({ images_used: 5 });
  });

  it("a restart between admission and the origin's answer keeps the count, the job slot and the accepted job", async () => {
    const { id, key, account } = await createKey("zsky");
    const api = zsky(key, 1);
    const clock = useTestClock(NOON);
    const stub = guardOf(`zsky:${account}`);
    const generation: GenerationLimits = {
      routes: { "images.generate": "image", "videos.generate": "video" },
      concurrentJobsPerKey: 1,
      dailyPerKey: { image: 4, video: 50 },
      monthlyPerAccount: { image: 6, video: 1 },
      overagePriceCents: { image: 1, video: 1 },
      suspension: { windowMinutes: 30, minAttempts: 10, rejectedShare: 0.5, hours: 24 },
      typicalJobSeconds: { image: 10, video: 60 },
      concurrencyRetryAfterSeconds: 5,
    };
    // Admitted as the edge asks for a submission, then the object restarts before the origin answers.
    const admitted = await stub.admit({
      product: "zsky",
      route: { scope: "images", sessionOnly: false },
      credential: { via: "key", product: "zsky", keyId: id },
      accountId: account,
      limits: { windows: [], generation, generates: "image" },
    });
    const reservation = admitted.allow ? admitted.reservationId! : "";
    expect(reservation).not.toBe("");
    await restart(stub);
    await clock.advance(1000);
    expect(await json(await api.usage())).toMatchObject({ images_used: 1 });
    // The unanswered call still holds the key's one slot.
    const refused = await api.generate();
    expect(refused.status).toBe(429);
    expect(await json(refused)).toEqual({ error: "Concurrent job limit reached (1 per API key)" });
    await guardOf(`zsky:${account}`).settleGeneration(
      reservation,
      "accepted",
      { jobId: "job-after-restart", store: true, resultKey: `zsky/${account}/job-after-restart` },
      generation,
    );
    // The account's job now: a poll reaches the origin, whose echo hook answers it (a job not the account's is the gateway's 404).
    expect((await api.poll("job-after-restart", { "X-Sim-Echo": "1" })).status).toBe(200);
    // Settling a lost reservation neither gives its count back nor counts it twice.
    expect(await json(await api.usage())).toMatchObject({ images_used: 1 });
  });

  it("a guard restarted (evicted) while the origin thinks: the origin's refusal still gives back the count and the slot", async () => {
    const { key, account } = await createKey("zsky");
    const api = zsky(key, 1);
    const slow = callLive("/zsky/v1/images/generate", {
      method: "POST",
      headers: { ...keyHeaders("zsky", key), "Content-Type": "application/json", "X-Sim-Delay-Ms": "1000", "X-Sim-Fail": "503" },
      body: '{"prompt":"a lighthouse"}',
      settings: api.settings,
    });
    // Admitted at once; the origin answers a second later, to a guard that lost its memory meanwhile.
    await new Promise((r) => setTimeout(r, 300));
    await restart(guardOf(`zsky:${account}`));
    expect((await slow).status).toBe(503);
    expect(await json(await api.usage())).toMatchObject({ images_used: 0 });
    expect((await api.generate()).status).toBe(200);
    expect(await json(await api.usage())).toMatchObject({ images_used: 1 });
  });
});
