import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { churnRequests, drive, growthOverLast, runtimeMemory, startGateway, type Gateway } from "../../bench/churn.mjs";

/**
 * Churn against `npm start`'s runtime over a socket: every request from a new client
 * address with a made-up key of the right shape, the three products in turn, 80 a second
 * for 40 s. The runtime keeps up (nothing waits unanswered), stays under 450 MB and grows
 * at most 60 MB over the last 15 s (a runtime started cold still warms up then; when
 * every new address started a guard object, it fell thousands of requests behind, passed
 * 600 MB by 40 s and grew 120 MB over those 15 s). docs/limits.md, "Memory"; the 60 s
 * measurement and the full ceiling are `npm run bench:memory`'s (bench/memory.mjs).
 */
const SECONDS = 40;
const RATE = 80;
const TAIL_SECONDS = 15;
const PEAK_MB = 450;
const TAIL_GROWTH_MB = 60;

describe("the runtime under churn", () => {
  let gateway: Gateway;
  beforeAll(async () => {
    gateway = await startGateway();
  });
  afterAll(() => gateway?.stop());

  it(`keeps up with ${RATE} new addresses a second, under ${PEAK_MB} MB, growing at most ${TAIL_GROWTH_MB} MB over the last ${TAIL_SECONDS} s`, async () => {
    const run = await drive({
      base: gateway.base,
      request: await churnRequests(),
      seconds: SECONDS,
      rate: RATE,
      memory: () => runtimeMemory(gateway.pid, gateway.port),
    });
    const readings = run.samples.map((s) => `${s.t.toFixed(0)}s ${s.answered}/${s.sent} ${s.worker.toFixed(0)} MB`).join(", ");
    expect(run.died, readings).toBeUndefined();
    expect(run.statuses, readings).toEqual({ 401: run.sent });
    // At most a second of requests still waiting when sending stops: none piled up.
    expect(run.unansweredAtEnd, readings).toBeLessThan(RATE);
    expect(Math.max(...run.samples.map((s) => s.worker)), readings).toBeLessThanOrEqual(PEAK_MB);
    expect(growthOverLast(run.samples, TAIL_SECONDS).fitted, readings).toBeLessThanOrEqual(TAIL_GROWTH_MB);
  }, 240_000);
});
