import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);
const root = new URL("../..", import.meta.url).pathname;

/** The load benchmark's harness starts and writes a well-formed result (very short runs; no time is asserted). */
describe("npm run bench (smoke)", () => {
  it("writes a results file with every case, ratios and memory", async () => {
    const dir = mkdtempSync(join(tmpdir(), "zgate-bench-"));
    const out = join(dir, "smoke.json");
    try {
      await run("node", [join(root, "bench", "run.mjs")], {
        cwd: root,
        env: { ...process.env, BENCH_SMOKE: "1", BENCH_OUT: out },
        timeout: 110_000,
      });
      const result = JSON.parse(readFileSync(out, "utf8"));
      expect(result.smoke).toBe(true);
      const ids = result.cases.map((c: { id: string }) => c.id);
      expect(ids).toEqual(expect.arrayContaining(["origin", "public", "zsky_key", "zakgt_jwt", "refused_429"]));
      for (const c of result.cases) {
        expect(c.summary.rps).toBeGreaterThan(0);
        expect(typeof c.summary.p50).toBe("number");
      }
      // CPU per request of each side's workerd, through Miniflare's entry worker and past it.
      const keyed = result.cases.find((c: { id: string }) => c.id === "zappway_key");
      for (const route of ["entry", "direct"]) {
        expect(keyed.cpu[route].cpuMsPerRequest).toBeGreaterThan(0);
        expect(typeof keyed.cpu[route].cpuRatio.median).toBe("number");
      }
      // The contract floor beside them: its own CPU per request, every request answered as the origin did.
      expect(result.contractFloor.cpuMsPerRequest).toBeGreaterThan(0);
      expect(result.contractFloor.pairs.every((p: { a: { unexpected: number } }) => p.a.unexpected === 0)).toBe(true);
      expect(result.guard.modes.length).toBeGreaterThan(0);
      expect(Array.isArray(result.targets)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
