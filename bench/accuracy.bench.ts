import { afterAll, beforeAll, describe, expect, inject, it, vi } from "vitest";
import { call, createKey, keyHeaders } from "../test/helpers";

/**
 * How exact each sliding-window backend is under adversarial arrivals: the most
 * requests admitted in any window of length W, divided by the limit N. Time is a
 * virtual clock (Date is faked in this isolate, which the Worker, its guard and the
 * Upstash client all share), so every admission has an exact timestamp and no run
 * waits for real windows to pass.
 */
const N = 10;
const W = 10_000;
// A multiple of W (like Upstash's fixed windows) near real time: the origin simulators
// refuse identity signatures more than 5 minutes off their own clock.
const BASE = Math.floor(Date.now() / W) * W + 2 * W;

const upstash = inject("upstash");
const BACKENDS: Record<string, Record<string, string> | null> = {
  "durable-object": {},
  upstash: upstash ? { LIMITER_BACKEND: "upstash", UPSTASH_REDIS_REST_URL: upstash.url, UPSTASH_REDIS_REST_TOKEN: upstash.token } : null,
};

/** Pattern: a list of (virtual time, concurrent requests). */
type Pattern = [number, number][];

function seeded(seed: number) {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
}

const PATTERNS: Record<string, Pattern> = {
  // A burst at the very end of one window, then at the very start of the next.
  "boundary bursts": Array.from({ length: 5 }, (_, k): [number, number][] => [
    [k * W + W - 100, 3 * N],
    [(k + 1) * W + 50, 3 * N],
  ]).flat(),
  // Three times the allowed rate, evenly spread, for five windows.
  "steady 3x over-rate": Array.from({ length: 15 * N }, (_, i): [number, number] => [Math.floor((i * W) / (3 * N)), 1]),
  // Many clients at once at random moments.
  "concurrent clients": (() => {
    const random = seeded(42);
    return Array.from({ length: 25 }, (): [number, number] => [Math.floor(random() * 5 * W), 40]).sort((a, b) => a[0] - b[0]);
  })(),
};

/** The most admissions in any interval (t - W, t]. */
function maxInWindow(times: number[]): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  let start = 0;
  for (let end = 0; end < sorted.length; end++) {
    while (sorted[start]! <= sorted[end]! - W) start++;
    best = Math.max(best, end - start + 1);
  }
  return best;
}

describe("limiter accuracy", () => {
  beforeAll(() => vi.useFakeTimers({ toFake: ["Date"] }));
  afterAll(() => vi.useRealTimers());

  it("measures every backend on every pattern", async () => {
    const rows = [];
    for (const [backend, settings] of Object.entries(BACKENDS)) {
      if (!settings) {
        console.warn(`skipping ${backend}: redis-server is not installed`);
        continue;
      }
      for (const [pattern, arrivals] of Object.entries(PATTERNS)) {
        vi.setSystemTime(BASE - W); // before the pattern starts: a fresh key in a fresh window
        const { key } = await createKey("zappway", { limit_override: { windows: { plan_rate: { limit: N, window_seconds: W / 1000 } } } });
        const admitted: number[] = [];
        let offered = 0;
        for (const [at, count] of arrivals) {
          vi.setSystemTime(BASE + at);
          const responses = await Promise.all(
            Array.from({ length: count }, () => call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings })),
          );
          offered += count;
          for (const r of responses) if (r.status === 200) admitted.push(at);
        }
        const max = maxInWindow(admitted);
        rows.push({ backend, pattern, offered, admitted: admitted.length, maxInWindow: max, ratio: max / N });
      }
    }
    console.log(
      `ACCURACY_RESULT ${JSON.stringify({ limit: N, windowSeconds: W / 1000, measuredAt: new Date(Date.now()).toISOString(), rows })}`,
    );
    // The guard's promise: never more than N in any window, whatever the pattern.
    for (const row of rows.filter((r) => r.backend === "durable-object")) expect(row.ratio).toBe(1);
  });
});
