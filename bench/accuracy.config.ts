import { mkdirSync, writeFileSync } from "node:fs";
import { defineConfig } from "vitest/config";
import { workersProject } from "../test/node/workers-project.ts";

// `npm run bench:accuracy`: bench/accuracy.bench.ts runs inside workerd (it needs the real
// guard and a virtual clock); it hands its results to Node as one console line, which
// this config prints as a table and writes to bench/results/accuracy.json.
const MARK = "ACCURACY_RESULT ";

export default defineConfig({
  test: {
    onConsoleLog(log) {
      if (!log.startsWith(MARK)) return !log.startsWith('{"msg":"request"');
      const result = JSON.parse(log.slice(MARK.length));
      mkdirSync("bench/results", { recursive: true });
      writeFileSync("bench/results/accuracy.json", `${JSON.stringify(result, null, 2)}\n`);
      const rows = result.rows.map((r: Record<string, unknown>) => ({
        backend: r.backend,
        pattern: r.pattern,
        offered: r.offered,
        admitted: r.admitted,
        "max in any W": r.maxInWindow,
        "max / N": (r.ratio as number).toFixed(2),
      }));
      console.log(`\nLimiter accuracy (N=${result.limit} per W=${result.windowSeconds}s, virtual clock)`);
      console.table(rows);
      console.log("written to bench/results/accuracy.json");
      return false;
    },
    projects: [workersProject("accuracy", ["bench/accuracy.bench.ts"], { testTimeout: 300_000 })],
  },
});
