import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { call, callLive, createKey, json, keyHeaders, limitOverrides, setGuardClock } from "../helpers";

/**
 * ZSky's allowances and jobs in the guard's storage (generation-ledger.ts): an object
 * written by the previous schema (version 2: key/day and account/month counter rows,
 * `jobs` plus `purged_jobs`) keeps its counts and its jobs after the upgrade to version 3.
 */
const NOON = Date.UTC(2026, 10, 18, 12, 0, 0);
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
    poll: (jobId: string) => call(`/zsky/v1/jobs/${jobId}`, { headers, settings }),
    usage: () => call("/zsky/v1/usage", { headers, settings }),
  };
}

describe("ZSky ledger storage upgrade", () => {
  it("a guard at schema version 2 keeps its daily and monthly counts, its jobs and its purges", async () => {
    const { id, key, account } = await createKey("zsky");
    const api = zsky(key);
    await setGuardClock("zsky", account, NOON);
    const live = (await json(await api.generate())).job_id as string;
    const purged = (await json(await api.generate())).job_id as string;
    const stub = guardOf(`zsky:${account}`);
    // Version 2's storage for the same history: today's two for the key, the month's
    // three for the account (one from another key), both jobs in `jobs`, one purged.
    await runInDurableObject(stub, (_guard, state) => {
      const { sql } = state.storage;
      const jobs = sql.exec<{ job_id: string; created_at: number }>("SELECT job_id, created_at FROM owned_jobs").toArray();
      sql.exec("DROP TABLE gen_usage; DROP TABLE owned_jobs; DELETE FROM gen_counts; DELETE FROM jobs; DELETE FROM purged_jobs");
      sql.exec("INSERT INTO gen_counts (scope, period, kind, used, overage) VALUES (?, '2026-11-18', 'image', 2, 0)", `key:${id}`);
      sql.exec("INSERT INTO gen_counts (scope, period, kind, used, overage) VALUES (?, '2026-11-17', 'image', 1, 0)", `key:${id}`);
      sql.exec("INSERT INTO gen_counts (scope, period, kind, used, overage) VALUES ('account', '2026-11', 'image', 3, 0)");
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
    await setGuardClock("zsky", account, NOON);

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
    await setGuardClock("zsky", account, NOON);
    const stub = guardOf(`zsky:${account}`);
    const generation = {
      monthlyPerAccount: { image: 6, video: 1 },
      overagePriceCents: { image: 1, video: 1 },
      suspension: { windowMinutes: 30, minAttempts: 10, rejectedShare: 0.5, hours: 24 },
    };
    type Ledger = { reserve: (...a: unknown[]) => string; jobRetiresAt: (j: string, now: number) => number | null };
    const ledgerOf = (guard: unknown) => (guard as { ledger: Ledger }).ledger;
    // Admitted as the edge does it, then the object restarts before the origin answers.
    const reservation = await runInDurableObject(stub, (guard) => ledgerOf(guard).reserve(id, "image", generation, NOON));
    await restart(stub);
    await setGuardClock("zsky", account, NOON + 1000);
    expect(await json(await api.usage())).toMatchObject({ images_used: 1 });
    // The unanswered call still holds the key's one slot.
    const refused = await api.generate();
    expect(refused.status).toBe(429);
    expect(await json(refused)).toEqual({ error: "Concurrent job limit reached (1 per API key)" });
    const owned = await runInDurableObject(guardOf(`zsky:${account}`), async (guard) => {
      await (guard as unknown as { settleGeneration: (...a: unknown[]) => Promise<void> }).settleGeneration(
        reservation,
        "accepted",
        { jobId: "job-after-restart", store: true, resultKey: `zsky/${account}/job-after-restart` },
        generation,
      );
      return ledgerOf(guard).jobRetiresAt("job-after-restart", NOON + 1000) !== null;
    });
    expect(owned).toBe(true);
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
