import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);
const root = new URL("../..", import.meta.url).pathname;

/** bench:ab builds a git ref beside this tree and measures both against the bare Worker (one short round; no time is asserted). */
describe("npm run bench:ab (smoke)", () => {
  it("measures a ref's zgate and floor beside this tree's, every request answered as expected", async () => {
    const dir = mkdtempSync(join(tmpdir(), "zgate-ab-"));
    const out = join(dir, "ab.json");
    try {
      await run("node", [join(root, "bench", "ab.mjs")], {
        cwd: root,
        env: {
          ...process.env,
          BENCH_AB_BASE: "HEAD",
          BENCH_AB_CASES: "zappway_key,floor",
          BENCH_AB_ROUNDS: "1",
          BENCH_CPU_REQUESTS: "100",
          BENCH_CONNECTIONS: "5",
          BENCH_AB_OUT: out,
        },
        timeout: 110_000,
      });
      const result = JSON.parse(readFileSync(out, "utf8"));
      expect(result.base.ref).toBe("HEAD");
      expect(result.cases.map((c: { id: string }) => c.id)).toEqual(["zappway_key", "floor"]);
      for (const c of result.cases) {
        for (const side of ["base", "head", "bare"]) expect(c.cpuMsPerRequest[side]).toBeGreaterThan(0);
        expect(typeof c.headMinusBaseMs.median).toBe("number");
        expect(c.unexpected).toBe(0);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
