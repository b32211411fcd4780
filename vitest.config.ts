import { availableParallelism } from "node:os";
import { defineConfig } from "vitest/config";
import { SlowFirstSequencer } from "./test/node/slow-first-sequencer.ts";
import { workersProject } from "./test/node/workers-project.ts";

/**
 * Tries of a failed test after its first. CI runs the suite on a shared 2-core machine that
 * it keeps busy: there a test with a time budget (a limiter's Redis budget, a lease life, a
 * grace period, a process killed mid-call) failed now and then, a different one each run,
 * and passed alone; one such failure kept a whole submission from landing. A real defect
 * fails both tries. What passed only on its second is listed at the end of the run.
 */
const RETRY = 1;

// Two projects:
// - `workers`: the suite proper, inside workerd (see test/node/workers-project.ts).
// - `node`: what only Node can check: `npm start` end to end, `wrangler deploy --dry-run`,
//   the OpenAPI document, the Upstash REST test server.
export default defineConfig({
  test: {
    testTimeout: 20_000,
    // vitest's default is one fewer than the cores: one file at a time on 2 cores. Files
    // wait a good part of their time (the origin simulators, a gateway booting, a job), so
    // twice as many as cores keep the cores busy. `npm test` runs each project in a vitest
    // of its own (scripts/test.mjs), the node project with more workers; run together here
    // (`npx vitest run`, `npm test -- <files>`), both share these.
    maxWorkers: 2 * availableParallelism(),
    // The gateway's access log is asserted where it matters (test/logging.test.ts);
    // elsewhere its lines would bury the test output.
    onConsoleLog: (log) => !log.startsWith('{"msg":"request"'),
    // A test that fails is tried once more (RETRY, both projects), and the run ends by naming
    // every test that passed only then, with its first failure (test/node/retried-reporter.ts).
    reporters: ["default", "./test/node/retried-reporter.ts"],
    // The files that wait longest start first, in both projects (test/node/slow-first-sequencer.ts).
    sequence: { sequencer: SlowFirstSequencer },
    projects: [
      workersProject("workers", ["test/**/*.test.ts"], { exclude: ["test/node/**"], retry: RETRY }),
      {
        test: {
          name: "node",
          include: ["test/node/**/*.test.ts"],
          environment: "node",
          globalSetup: ["./test/node/gateway-setup.ts"],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          retry: RETRY,
          // A worker process runs its files one after another rather than a process each:
          // a fresh one (vitest, the file's imports) cost some 1.6 s of CPU a file, and npm
          // test's length is its CPU (it keeps both cores busy throughout). The files keep
          // no state between them but the shared dev gateway's, which is meant to be shared.
          isolate: false,
          // scripts/ are plain Node modules: Node loads them (and the Worker modules they
          // bundle with esbuild, scripts/import-ts.mjs) as `npm run` does, untransformed.
          server: { deps: { external: [/\/scripts\//] } },
        },
      },
    ],
  },
});
