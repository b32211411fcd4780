import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  COST_CASES,
  HOT_KEYED,
  isJobCase,
  ROW_BUDGET_ENFORCED,
  ROWS_WRITTEN_PER_HOT_REQUEST,
  overBudget,
} from "../../bench/cost-budget.mjs";

const run = promisify(execFile);
const root = new URL("../..", import.meta.url).pathname;

/** Per-unit counts (two nested breakdowns among them, skipped where numbers are checked). */
type Counts = Record<string, number> & {
  rowsWritten: number;
  /** Per statement text: statements run, rows read and written per unit (bench/cost-model.mjs perUnit). */
  statements: { guard: Record<string, { statements: number; rowsWritten: number }> };
};
interface CostCase {
  id: string;
  unit: string;
  median: { counts: Counts; dollars: { total: number } };
}
interface CostResult {
  smoke: boolean;
  cases: CostCase[];
  comparison: { id: string; perMillion: number }[];
}

/**
 * `npm run bench:cost` in smoke mode (a few hundred requests): its counting works end to
 * end. Its figures are those of whatever zgate does today, so only the harness is
 * asserted here; the row budget is its own test below.
 */
describe("npm run bench:cost (smoke)", () => {
  const dir = mkdtempSync(join(tmpdir(), "zgate-cost-"));
  const out = join(dir, "cost.json");
  let result: CostResult;
  const byId = (id: string) => result.cases.find((c) => c.id === id)!.median.counts;

  beforeAll(async () => {
    await run("node", [join(root, "bench", "cost.mjs")], {
      cwd: root,
      env: { ...process.env, BENCH_COST_SMOKE: "1", BENCH_OUT: out },
      // About 60 s alone, mostly waits; a loaded machine (a full npm test beside other work) has doubled it.
      timeout: 200_000,
    });
    result = JSON.parse(readFileSync(out, "utf8")) as CostResult;
  }, 210_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("writes every case's counts per request and its price beside the bare Worker and managed gateways", () => {
    expect(result.smoke).toBe(true);
    expect(result.cases.map((c) => c.id)).toEqual(COST_CASES);
    for (const c of result.cases) {
      const { counts, dollars } = c.median;
      for (const [name, value] of Object.entries(counts))
        if (typeof value === "number") expect(value, `${c.id} ${name}`).toBeGreaterThanOrEqual(0);
      expect(counts.workerRequests).toBe(isJobCase(c.id) ? 5 : 1);
      expect(counts.cpuMs, c.id).toBeGreaterThan(0);
      // At least the Workers request itself.
      expect(dollars.total, c.id).toBeGreaterThan(0.3);
    }
    expect(result.comparison.map((g) => g.id)).toEqual(["bare_worker", "aws_http_api", "aws_rest_api", "google_api_gateway"]);
  });

  it("counts each binding where the request must touch it", () => {
    // A key no isolate has seen is looked up in KV, and its account's guard starts.
    for (const id of ["zappway_key_cold", "zakgt_key_cold"]) {
      expect(byId(id).kvReads, id).toBeCloseTo(1);
      expect(byId(id).guardObjectsStarted, id).toBeCloseTo(1);
      expect(byId(id).doRowsRead, id).toBeGreaterThan(0);
    }
    // A key at its plan's limits on two isolates is counted, guard calls and renewals included, until they stop.
    expect(byId("default_key_1rps").guardCalls).toBeGreaterThan(0);
    // Its window rows are in its account's guard, which never sweeps them: a row rewritten
    // is one row written, no index entry beside it (which doubled the case's window rows).
    const windowWrites = Object.entries(byId("default_key_1rps").statements.guard).filter(([sql]) => sql.startsWith("INSERT INTO windows"));
    expect(windowWrites.length).toBe(1);
    const [, written] = windowWrites[0]!;
    expect(written.statements).toBeGreaterThan(0);
    expect(written.rowsWritten / written.statements).toBe(1);
    // A hot credential's requests share guard calls (leases).
    for (const id of HOT_KEYED) expect(byId(id).guardCalls, id).toBeGreaterThan(0);
    for (const id of HOT_KEYED) expect(byId(id).guardCalls, id).toBeLessThan(1);
    // A new address starts no guard object of its own: its window is a row in one of the
    // address guards its product shares (4 in the smoke run), whose alarm deletes it with the others'.
    expect(byId("public_new_address").guardObjectsStarted).toBeLessThan(1);
    expect(byId("public_new_address").guardAlarms).toBeGreaterThan(0);
    // A job is recorded by its account's guard (none in D1), stores its result in R2 and
    // serves it from there, and is retired by the guard's alarm.
    for (const id of ["zsky_job", "zsky_job_high_limit"]) {
      const job = byId(id);
      expect(job.doSqlRowsWritten, id).toBeGreaterThan(0);
      expect(job.r2ClassA, id).toBeGreaterThanOrEqual(1);
      expect(job.r2ClassB, id).toBeGreaterThanOrEqual(1);
      expect(job.guardAlarms, id).toBeGreaterThan(0);
    }
  });

  it("charges a case only its own objects' alarms: none of an earlier case's falls into a later one", () => {
    // An unknown key reaches no object, so no alarm is its own, whatever earlier cases left pending.
    expect(byId("unknown_key").guardCalls).toBe(0);
    expect(byId("unknown_key").guardAlarms).toBe(0);
    // A hot key's usage log compacts within the hour whatever it holds: a stretch of a few seconds is a sliver of that alarm.
    for (const id of HOT_KEYED) expect(byId(id).guardAlarms, id).toBeLessThan(0.001);
  });

  it.runIf(ROW_BUDGET_ENFORCED)(`hot keyed requests write at most ${ROWS_WRITTEN_PER_HOT_REQUEST} rows each (guard and D1)`, () => {
    expect(overBudget(result)).toEqual([]);
  });
});
