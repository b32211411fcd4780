import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { call, callLive, createKey, json, keyHeaders, limitOverrides, setGuardClock } from "../helpers";

/**
 * ZSky's allowances and jobs in the guard's storage (generation-ledger.ts): a restart
 * while the origin has not answered a generate call loses neither its count, its job
 * slot nor the job the origin accepts.
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

describe("ZSky ledger storage across a restart", () => {
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
        { jobId: "job-after-restart", resultKey: `zsky/${account}/job-after-restart` },
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
