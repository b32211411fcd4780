import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { GenerationLimits } from "../../src/limits/types";
import { useTestClock } from "../clock";
import { call, callLive, createKey, json, keyHeaders, limitOverrides } from "../helpers";

/**
 * ZSky's allowances and jobs in the guard's storage (generation-ledger.ts): a restart
 * while the origin has not answered a generate call loses neither its count, its job
 * slot nor the job the origin accepts.
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

describe("ZSky ledger storage across a restart", () => {
  it("a restart between admission and the origin's answer keeps the count, the job slot and the accepted job", async () => {
    const { id, key, account } = await createKey("zsky");
    const api = zsky(key, 1);
    const clock = useTestClock(NOON);
    const stub = guardOf(`zsky:${account}`);
    const generation: GenerationLimits = {
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
      { jobId: "job-after-restart", resultKey: `zsky/${account}/job-after-restart` },
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
