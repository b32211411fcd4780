import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const root = new URL("../..", import.meta.url).pathname;

interface Spread {
  median: number | null;
  range: (number | null)[];
}
interface AtDelay {
  p50: Spread;
  added: { p50: Spread; p90: Spread; p99: Spread } | null;
  guardCallsBefore: Spread;
  guardCallsAfter: Spread;
  requests: number;
}
interface ChangeAtDelay {
  returnMs: Spread;
  guardCalls: Spread;
  sentAfter: Spread;
  admittedAfter: number;
}
interface DistanceResult {
  smoke: boolean;
  config: { delays: number[] };
  machine: { loadAverageByRun: { before: number[]; after: number[] }[] };
  roundTripMs: Record<string, Spread>;
  cases: { id: string; byDelay: Record<string, AtDelay> }[];
  changes: { id: string; byDelay: Record<string, ChangeAtDelay> }[];
  exactness: { byDelay: Record<string, { held: boolean; admitted: Spread }> };
}

/**
 * `npm run bench:distance` in smoke mode (one run, D = 0 and 50 ms, a few requests per
 * case at ten times the real rates): the harness works end to end. Latencies and guard
 * calls per request are whatever zgate does today, so only their presence is asserted,
 * and the guarantees that hold at any distance: nothing admitted after a change returned,
 * never more than the limit in a window.
 */
describe("npm run bench:distance (smoke)", () => {
  const dir = mkdtempSync(join(tmpdir(), "zgate-distance-"));
  const out = join(dir, "distance.json");
  let result: DistanceResult;

  beforeAll(async () => {
    await run("node", [join(root, "bench", "distance.mjs")], {
      cwd: root,
      env: { ...process.env, BENCH_DISTANCE_SMOKE: "1", BENCH_OUT: out },
      timeout: 110_000,
    });
    result = JSON.parse(readFileSync(out, "utf8")) as DistanceResult;
  }, 120_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("measures every case at every D: percentiles, what D adds over D = 0, guard calls before and after the answer", () => {
    expect(result.smoke).toBe(true);
    expect(result.config.delays).toEqual([0, 50]);
    expect(result.cases.map((c) => c.id)).toEqual([
      "zappway_free_1rps",
      "zappway_free_05rps",
      "zakgt_key_chat",
      "zakgt_jwt_1rps",
      "public_refresh_1rps",
      "zsky_poll_2s",
      "cold_key",
      "zsky_generate",
      "zsky_poll_completes",
      "zsky_download",
      "hot_key",
      "exactness",
    ]);
    for (const c of result.cases) {
      const [near, far] = [c.byDelay["0"]!, c.byDelay["50"]!];
      expect(near.requests, c.id).toBeGreaterThan(0);
      expect(far.requests, c.id).toBe(near.requests);
      expect(near.added, c.id).toBeNull();
      for (const p of ["p50", "p90", "p99"] as const) expect(typeof far.added?.[p].median, `${c.id} ${p}`).toBe("number");
      // Every case is admitted through the guard, by a call of its own or a lease one brought.
      expect(far.guardCallsBefore.median, c.id).toBeGreaterThan(0);
      expect(far.guardCallsAfter.median, c.id).toBeGreaterThanOrEqual(0);
    }
    expect(result.machine.loadAverageByRun).toHaveLength(1);
    // The wrapper puts D on every guard call: probed through it, a call takes about D.
    expect(result.roundTripMs["0"]!.median).toBeLessThan(50);
    expect(result.roundTripMs["50"]!.median).toBeGreaterThanOrEqual(50);
    expect(result.roundTripMs["50"]!.median).toBeLessThan(200);
  });

  it("a revoke, a rotate and a logout under load admit nothing sent after they return, and the exact limit holds, at every D", () => {
    expect(result.changes.map((c) => c.id)).toEqual(["revoke", "rotate", "logout"]);
    for (const c of result.changes)
      for (const d of ["0", "50"]) {
        const at = c.byDelay[d]!;
        expect(at.sentAfter.median, `${c.id} at ${d}`).toBeGreaterThan(0);
        expect(at.admittedAfter, `${c.id} at ${d}`).toBe(0);
        expect(at.guardCalls.median, `${c.id} at ${d}`).toBeGreaterThanOrEqual(1);
      }
    for (const d of ["0", "50"]) {
      expect(result.exactness.byDelay[d]!.held, `exactness at ${d}`).toBe(true);
      expect(result.exactness.byDelay[d]!.admitted.median, `exactness at ${d}`).toBeGreaterThan(0);
    }
  });
});
