import { existsSync } from "node:fs";
import { join } from "node:path";
import { BaseSequencer, type TestSpecification } from "vitest/node";

/**
 * The files that take longest from start to end, longest first: most of their time is
 * waiting (a minute-long ZSky job, a deploy's steps against the fake Cloudflare API, a
 * benchmark harness's settles, seconds of traffic on the test clock), which overlaps with
 * other files' work only if they start early. vitest orders by the durations of the last
 * run when it has them, and otherwise (a fresh clone: CI) by file size, which started
 * cost-smoke (94 s) and shares (40 s) among the last of their projects, so the run ended
 * with them alone on a machine otherwise idle. Every file of 15 s or more, by its wall time
 * in a fresh-clone `.ci/run` (7 December, late evening: bench-smoke, deploy and openapi,
 * left to vitest's order, were the last three node files to end).
 */
const SLOW_FIRST = [
  // node
  "test/node/quick-start.test.ts", // 122 s
  "test/node/cost-smoke.test.ts", // 101 s
  "test/node/security-console.test.ts", // 51 s
  "test/node/scale-smoke.test.ts", // 47 s
  "test/node/deploy-sequence.test.ts", // 43 s
  "test/node/distance-smoke.test.ts", // 36 s
  "test/node/bench-smoke.test.ts", // 33 s
  "test/node/deploy.test.ts", // 30 s
  "test/node/revoke-kill.test.ts", // 27 s
  "test/node/usage-loss.test.ts", // 21 s
  "test/node/openapi.test.ts", // 19 s
  "test/node/check.test.ts", // 15 s
  // workers
  "test/limits/shares.test.ts", // 47 s
  "test/limits/zsky-allowances.test.ts", // 39 s
  "test/limits/renewals.test.ts", // 32 s
  "test/results/zsky-results.test.ts", // 28 s
  "test/guard/window-storage.test.ts", // 28 s
  "test/limits/leases.test.ts", // 27 s
  "test/keys/usage-batches.test.ts", // 25 s
  "test/limits/subjects.test.ts", // 25 s
  "test/abuse.test.ts", // 21 s
  "test/limits/windows.test.ts", // 19 s
  "test/results/result-pull.test.ts", // 19 s
  "test/keys/roll.test.ts", // 18 s
  "test/keys/investigation.test.ts", // 17 s
];

const root = new URL("../..", import.meta.url).pathname;
for (const file of SLOW_FIRST) if (!existsSync(join(root, file))) throw new Error(`slow-first-sequencer.ts names ${file}, which is gone`);

/** vitest's own order, with SLOW_FIRST's files moved to the front in its order. */
export class SlowFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (spec: TestSpecification) => {
      const at = SLOW_FIRST.findIndex((file) => spec.moduleId === join(root, file));
      return at < 0 ? SLOW_FIRST.length : at;
    };
    const sorted = await super.sort(files);
    return sorted
      .map((spec, index) => ({ spec, index, rank: rank(spec) }))
      .sort((a, b) => a.rank - b.rank || a.index - b.index)
      .map(({ spec }) => spec);
  }
}
