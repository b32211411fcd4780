#!/usr/bin/env node
// `npm run bench:cost`: what each kind of request costs whoever runs zgate, at Cloudflare's
// list prices (bench/prices.json), beside a bare Worker and managed API gateways.
//
// zgate runs in workerd through Miniflare with every binding it bills against counted
// (bench/cost-worker.mjs: KV operations, D1 rows from each result's meta, R2 operations by
// class, guard RPCs and alarms, the guard's SQLite rows from its cursors). Each case is
// driven at a steady rate from Node; the counters and workerd's CPU time (/proc) are read
// before and after, and the difference is divided by the requests (or jobs) served.
// Deferred work each request causes is inside the difference: the measured stretch ends
// only after a guard lease's life (unspent tokens handed back) and the usage batch has been
// appended; then every alarm the stretch set in the objects it reached is run at the time
// it is set for, and those it sets in turn, down to retention months later (the usage
// rows, jobs and stored results they delete): a drain (cost-worker.mjs). Nothing is left
// pending to fall into a later case, and each run has a zgate and storage of its own, so a
// case is charged for its own requests' work only. An alarm's work recurs once per period
// (from its setting to its coming, at most an hour: cost-model.mjs drainedCharge): a
// steady stretch is charged its share of a period, and in full for the rows it wrote that
// the alarm deletes; one-off subjects (cold keys, new addresses) are charged all of it.
// Window rows are deleted by later requests: the steady cases are measured after a
// warm-up at the same rate, so rows of the warm-up deleted inside the stretch stand for
// the stretch's own, deleted after it.
//
// Environment (defaults take about 16 minutes on 2 cores, 5.4 a run, and 6 more for default_key_1rps):
//   BENCH_COST_RUNS=3            runs of every case (the spread is over runs)
//   BENCH_COST_RATE=200          requests per second of a steady case (one credential or address)
//   BENCH_COST_REQUESTS=1000     measured requests per steady case and run
//   BENCH_COST_WARMUP=1.5        seconds of warm-up at the same rate before each steady case
//   BENCH_COST_COLD=200          cold keys per product and run (one request each)
//   BENCH_COST_ADDRESSES=200     new client addresses per run (one request each)
//   BENCH_COST_JOBS=100          ZSky job cycles per run
//   BENCH_COST_JOB_CLIENTS=10    keys running job cycles side by side (one job at a time each)
//   BENCH_COST_POLL_GAP_MS=300   time between a job's polls (more than a guard lease's life)
//   BENCH_COST_USAGE_FLUSH_MS=10000 zgate's USAGE_FLUSH_MS here (its default; each stretch waits for it)
//   BENCH_COST_DEFAULT_KEY_REQUESTS=300 requests of default_key_1rps per run, 1 a second (its runs go side by side)
//   BENCH_COST_DEFAULT_KEY_ONLY=1  only default_key_1rps and its far twin (about 6 minutes): the results file keeps the other cases as they are
//   BENCH_COST_FAR_MS=150        default_key_1rps_far: every guard call of its isolates waits this long (a guard a region away)
//   BENCH_STORAGE=tmpfs          where local KV/D1/R2/DO data lives: tmpfs or disk
//   BENCH_COST_SMOKE=1           1 run, 150 requests, few keys and jobs, short waits: checks the harness only
//   BENCH_OUT=path               results file (default bench/results/cost.json; cost-smoke.json in smoke mode)
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { COST_CASES, isJobCase, KEPT_PER_NEW_ADDRESS, ROWS_WRITTEN_PER_HOT_REQUEST, TARGETS, overBudget } from "./cost-budget.mjs";
import {
  benchPost,
  JOB_REQUESTS,
  coldCases,
  coldKeys,
  costSettings,
  JOB_CASES,
  DEFAULT_KEY_CASE,
  defaultKeyFarCase,
  jobAccounts,
  jobKeys,
  newAddressCase,
  runJob,
  steadyCases,
  steadyCredentials,
} from "./cost-cases.mjs";
import { defaultKeyRuns } from "./cost-default-key.mjs";
import { PRICES_FILE, addTrees, counterDelta, dollarsPerMillion, drainedCharge, loadPrices, perUnit, scaleBy } from "./cost-model.mjs";
import { runBench, setting as numberSetting, track, whileBuilding } from "./harness.mjs";
import { median, round } from "./load.mjs";
import { startOrigin } from "./origin.mjs";
import { machineInfo, table, writeResults } from "./report.mjs";
import { applyMigrations, buildCost, cpuTimeMs, readCompatibility, root, startBare, startZgate, storageRoot } from "./workers.mjs";

/** @typedef {import("./cost-model.mjs").Counters} Counters */
/** @typedef {import("./cost-model.mjs").Counts} Counts */
/** @typedef {import("./cost-model.mjs").CounterTree} CounterTree */
/** @typedef {import("./cost-model.mjs").Prices} Prices */
/** @typedef {import("./cost-cases.mjs").CostCase} CostCase */
/** @typedef {import("./cost-cases.mjs").JobCase} JobCase */
/** @typedef {import("./workers.mjs").Instance} Instance */
/**
 * What a run of the counted zgate needs: its bundles, compatibility, storage and settings.
 * @typedef {{
 *   built: Awaited<ReturnType<typeof buildCost>>,
 *   compat: import("./workers.mjs").Compatibility,
 *   storage: string,
 *   settings: ReturnType<typeof costSettings>,
 * }} CostEnv
 */
/** @typedef {{ counters: Counters, cpuMs: number }} Snapshot */
/** @typedef {import("./cost-model.mjs").Drained} Drained */
/**
 * What a stretch's drain ran, by kind of object: how many objects had an alarm pending,
 * how many alarms ran, and the longest time from an alarm's setting to its coming (s).
 * @typedef {Record<string, { objects: number, alarms: number, longestPeriodSeconds: number }>} DrainedSummary
 */
/**
 * One measured stretch of a case: how many units it served, their per-unit counts, and
 * what else the case reports (its load's statuses and seconds; the alarms its drain ran;
 * a new-address case, the window rows its addresses left).
 * @typedef {{
 *   units: number,
 *   counts: Counts,
 *   statuses?: Record<string, number>,
 *   seconds?: number,
 *   drained?: DrainedSummary,
 *   addressRowsKept?: number,
 *   storageBytesPerAddress?: number,
 * }} Measured
 */
/** @typedef {{ units: number, statuses: Record<string, number>, seconds: number, cpuMs: number }} BareRun */
/** @typedef {ReturnType<typeof judged>["dollars"]} Dollars */
/**
 * A case of the results file: medians over runs and the spread of each run's own figures,
 * with its target (when it has one) and, for new addresses, what they leave behind.
 * @typedef {{
 *   id: string,
 *   title: string,
 *   unit: "job" | "request",
 *   median: { counts: Counts, dollars: Dollars },
 *   spread: { dollars: number[], rowsWritten: number[], cpuMs: number[] },
 *   runs: (Omit<Measured, "counts"> & { counts: Omit<Counts, "statements"> })[],
 *   target?: { perMillion: number, measured: number, met: boolean },
 *   kept?: { holdingDataShare: number, target: number, met: boolean, localBytesPerAddress: number },
 * }} CostSummary
 */
/** @typedef {{ id: string, title: string, perMillion: number, cpuMs?: number, tier?: string, source: string }} Comparison */
/** @typedef {import("./cost-budget.mjs").Overspend} Overspend */
/**
 * What bench/results/cost.json holds (schema "zgate-bench-cost/1").
 * @typedef {{
 *   schema: "zgate-bench-cost/1",
 *   smoke: boolean,
 *   machine: ReturnType<typeof machineInfo> & { loadAverageBefore: number[], loadAverageAfter: number[] },
 *   config: typeof config,
 *   prices: { file: string, compiled: string },
 *   timing: { totalSeconds: number },
 *   cases: CostSummary[],
 *   comparison: Comparison[],
 *   bare: { runs: BareRun[] },
 *   rowBudget: { rowsWrittenPerHotRequest: number },
 *   outFile: string,
 *   overBudget?: Overspend[],
 * }} CostResults
 */

const smoke = process.env.BENCH_COST_SMOKE === "1";
/** @type {(name: string, fallback: number, smokeValue: number) => number} */
const setting = (name, fallback, smokeValue) => numberSetting(name, fallback, smokeValue, smoke);
const config = {
  runs: Math.round(setting("BENCH_COST_RUNS", 3, 1)),
  rate: setting("BENCH_COST_RATE", 200, 150),
  requests: Math.round(setting("BENCH_COST_REQUESTS", 1000, 150)),
  warmupSeconds: setting("BENCH_COST_WARMUP", 1.5, 0.3),
  coldKeys: Math.round(setting("BENCH_COST_COLD", 200, 10)),
  newAddresses: Math.round(setting("BENCH_COST_ADDRESSES", 200, 10)),
  jobs: Math.round(setting("BENCH_COST_JOBS", 100, 5)),
  jobClients: Math.round(setting("BENCH_COST_JOB_CLIENTS", 10, 5)),
  pollGapMs: setting("BENCH_COST_POLL_GAP_MS", 300, 300),
  // zgate's USAGE_FLUSH_MS, at its default (10 s): each stretch waits for it, so what it gathered is written.
  // A flush writes 2 rows whatever it holds, so a key's flush rows per request are 2 / (rate x
  // interval): in smoke mode 1 s keeps them under a third of the row budget (cost-smoke.test)
  // down to 30 req/s reached on a loaded machine (at 250 ms, 0.20004 failed it in a full npm test).
  usageFlushMs: setting("BENCH_COST_USAGE_FLUSH_MS", 10_000, 1_000),
  // Window length of the raised limits (cost-cases.mjs): a window's rows are deleted
  // within the bench, and a warm-up longer than it reaches the steady state.
  windowSeconds: 1,
  storage: /** @type {"disk" | "tmpfs"} */ (process.env.BENCH_STORAGE === "disk" ? "disk" : "tmpfs"),
  // default_key_1rps: a request a second (5 a second in smoke mode), counted until no Durable Object call came for quietMs.
  defaultKey: {
    requests: Math.round(setting("BENCH_COST_DEFAULT_KEY_REQUESTS", 300, 5)),
    intervalMs: smoke ? 200 : 1_000,
    quietMs: smoke ? 1_000 : 5_000,
    idleMs: smoke ? 500 : 10_000,
    only: process.env.BENCH_COST_DEFAULT_KEY_ONLY === "1",
    // default_key_1rps_far: its guard's round trip (ms).
    farMs: setting("BENCH_COST_FAR_MS", 150, 150),
  },
};
const outFile = resolve(process.env.BENCH_OUT || join(root, "bench", "results", smoke ? "cost-smoke.json" : "cost.json"));

/**
 * Wait after a stretch before reading the counters: longer than a guard lease (250 ms by
 * default; the isolate then hands back the unspent tokens) and the usage flush. An
 * address guard's alarm may delete rows meanwhile (its windows are shorter): the rows it
 * deletes before a stretch stand for those it deletes after.
 */
const SETTLE_MS = config.usageFlushMs + 400;
const MAX_IN_FLIGHT = 64;

const startedAt = performance.now();
const log = (/** @type {string} */ msg) =>
  console.log(`[${((performance.now() - startedAt) / 1000).toFixed(0).padStart(3)}s ${Date.now()}] ${msg}`);
const sleep = (/** @type {number} */ ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------- zgate, counted

/** @type {Instance} */
let zgate;
/** @type {() => Promise<void>} */
let stopZgate;

/** @param {CostEnv} env */
async function startCounted(env) {
  zgate = await startZgate({ scriptPath: env.built.counted, settings: env.settings, compat: env.compat, storage: env.storage });
  stopZgate = track(zgate.stop, { pids: zgate.pids });
  // The isolate starts with its first request: that belongs to no case.
  await counters();
}

/**
 * @param {Drained[]} drained
 * @returns {DrainedSummary}
 */
function drainedSummary(drained) {
  /** @type {DrainedSummary} */
  const out = {};
  for (const d of drained) {
    const kind = (out[d.kind] ??= { objects: 0, alarms: 0, longestPeriodSeconds: 0 });
    kind.objects++;
    kind.alarms += d.alarms;
    if (d.armedAt > 0) kind.longestPeriodSeconds = Math.max(kind.longestPeriodSeconds, round((d.dueAt - d.armedAt) / 1000, 1));
  }
  return out;
}

/**
 * A new workerd over the same storage: no isolate cache, no guard object running.
 * @param {CostEnv} env
 */
async function restart(env) {
  await stopZgate();
  await startCounted(env);
}

/** The counted zgate's counters so far (cost-worker.mjs answers with its Counters). */
async function counters() {
  const response = await fetch(`${zgate.url}/__bench/counters`);
  if (!response.ok) throw new Error(`reading the counters: ${response.status} ${await response.text()}`);
  return /** @type {Counters} */ (await response.json());
}

/** @type {() => Promise<Snapshot>} */
const snapshot = async () => ({ counters: await counters(), cpuMs: cpuTimeMs(zgate) });

/**
 * Every alarm still pending in the objects reached since the last drain, run at the time
 * it is set for, and those it sets in turn until none is left (cost-worker.mjs): what
 * happened since then, down to the rows retention deletes months later, is then counted,
 * and no alarm of it is left to fall into a later stretch.
 * @returns {Promise<Drained[]>}
 */
function drain() {
  return benchPost(zgate.url, "drain");
}

/**
 * Bytes of everything under the guard objects' local storage (their files and the namespace's own).
 * @param {CostEnv} env
 */
function guardStorageBytes(env) {
  /** @type {(dir: string) => number} */
  const walk = (dir) =>
    readdirSync(dir, { withFileTypes: true }).reduce(
      (sum, e) => sum + (e.isDirectory() ? walk(join(dir, e.name)) : statSync(join(dir, e.name)).size),
      0,
    );
  return existsSync(join(env.storage, "zgate", "do")) ? walk(join(env.storage, "zgate", "do")) : 0;
}

// ---------------------------------------------------------------- load

/**
 * `count` requests of case `c` at `rate`/s, at most MAX_IN_FLIGHT at once; throws on any answer but the case's.
 * @param {string} base
 * @param {CostCase} c
 * @param {number} count
 * @param {{ rate?: number }} [options]
 */
async function drive(base, c, count, { rate = config.rate } = {}) {
  const expect = c.expect ?? 200;
  /** @type {Record<string, number>} */
  const statuses = {};
  /** @type {string | undefined} */
  let unexpected;
  /** @type {Set<Promise<void>>} */
  const inFlight = new Set();
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const wait = started + (i * 1000) / rate - performance.now();
    if (wait > 0) await sleep(wait);
    while (inFlight.size >= MAX_IN_FLIGHT) await Promise.race(inFlight);
    const req = c.request(i);
    const sent = fetch(base + req.path, { method: req.method ?? "GET", headers: req.headers, body: req.body })
      .then(
        async (response) => {
          const body = await response.text();
          statuses[response.status] = (statuses[response.status] ?? 0) + 1;
          if (response.status !== expect) unexpected ??= `${response.status} ${body.slice(0, 300)}`;
        },
        (err) => {
          statuses.error = (statuses.error ?? 0) + 1;
          unexpected ??= String(err);
        },
      )
      .finally(() => inFlight.delete(sent));
    inFlight.add(sent);
  }
  await Promise.all(inFlight);
  if (unexpected) throw new Error(`${c.id}: expected ${expect}, got ${unexpected} (statuses ${JSON.stringify(statuses)})`);
  return { statuses, seconds: round((performance.now() - started) / 1000, 2) };
}

/**
 * The stretch's counts, with what its drain ran charged by drainedCharge: `steadySeconds`
 * for traffic that goes on (a share of each alarm period), none for one-off subjects.
 * @param {Snapshot} before
 * @param {Snapshot} after
 * @param {Drained[]} drained
 * @param {Omit<Measured, "counts" | "drained"> & { workerRequests?: number, steadySeconds?: number }} stretch
 * @returns {Measured}
 */
function measured(before, after, drained, { units, workerRequests = units, steadySeconds, ...extra }) {
  const { raw, charged } = drainedCharge(drained, steadySeconds);
  const delta = /** @type {Counters} */ (addTrees(counterDelta(after.counters, before.counters), scaleBy(raw, -1)));
  return {
    units,
    ...extra,
    drained: drainedSummary(drained),
    counts: perUnit({
      delta: /** @type {Counters} */ (addTrees(delta, charged)),
      units,
      workerRequests,
      cpuMs: after.cpuMs - before.cpuMs,
    }),
  };
}

// ---------------------------------------------------------------- cases

/** @param {CostCase} c */
async function steadyRun(c) {
  await drive(zgate.url, c, Math.round(config.rate * config.warmupSeconds));
  await sleep(SETTLE_MS);
  await drain();
  const before = await snapshot();
  const load = await drive(zgate.url, c, config.requests);
  await sleep(SETTLE_MS);
  const drained = await drain();
  return measured(before, await snapshot(), drained, { units: config.requests, ...load, steadySeconds: load.seconds });
}

/**
 * @param {CostCase} c
 * @param {number} count
 */
async function coldRun(c, count) {
  const before = await snapshot();
  const load = await drive(zgate.url, c, count);
  await sleep(SETTLE_MS);
  const drained = await drain();
  return measured(before, await snapshot(), drained, { units: count, ...load });
}

/**
 * How many window rows of `addresses` (of `scope`) their address guards still hold (read uncounted).
 * @param {string} scope
 * @param {string[]} addresses
 */
async function addressRows(scope, addresses) {
  const response = await fetch(`${zgate.url}/__bench/address-rows?scope=${scope}&addresses=${addresses.join(",")}`);
  if (!response.ok) throw new Error(`address rows: ${response.status} ${await response.text()}`);
  return /** @type {{ rows: number }} */ (await response.json()).rows;
}

/**
 * New addresses, then what they leave behind once their windows have passed: each one's
 * window is a row in one of the address guards its product shares, which that guard's
 * alarm deletes (the drain runs those alarms when they are due). Earlier cases' alarms
 * were drained with them, so the address guards' alarms counted here are this case's.
 * @param {CostEnv} env
 * @param {CostCase} c
 */
async function newAddressRun(env, c) {
  const before = await snapshot();
  const bytesBefore = guardStorageBytes(env);
  const load = await drive(zgate.url, c, config.newAddresses);
  const addresses = Array.from({ length: config.newAddresses }, (_, i) => c.request(i).headers?.["CF-Connecting-IP"] ?? "");
  await sleep(SETTLE_MS);
  const drained = await drain();
  return measured(before, await snapshot(), drained, {
    units: config.newAddresses,
    ...load,
    addressRowsKept: await addressRows("zakgt", addresses),
    storageBytesPerAddress: (guardStorageBytes(env) - bytesBefore) / config.newAddresses,
  });
}

/**
 * @param {CostEnv} env
 * @param {JobCase} jobCase
 * @param {number} run
 */
async function jobRun(env, jobCase, run) {
  const keys = await jobKeys(zgate.url, env.settings, jobCase, run, config.jobClients);
  await Promise.all(keys.map((key) => runJob(zgate.url, key, config.pollGapMs))); // warm-up: one job per key
  await sleep(SETTLE_MS);
  await drain(); // the keys' registration and the warm-up's
  const before = await snapshot();
  const started = performance.now();
  let next = 0;
  await Promise.all(
    keys.map(async (key) => {
      while (next < config.jobs) {
        next++;
        await runJob(zgate.url, key, config.pollGapMs);
      }
    }),
  );
  const seconds = round((performance.now() - started) / 1000, 2);
  await sleep(SETTLE_MS);
  const drained = await drain();
  return measured(before, await snapshot(), drained, {
    units: config.jobs,
    workerRequests: config.jobs * JOB_REQUESTS,
    seconds,
    steadySeconds: seconds,
  });
}

/**
 * The bare pass-through Worker: only its Workers request and CPU.
 * @param {Instance} bare
 * @returns {Promise<BareRun>}
 */
async function bareRun(bare) {
  /** @type {CostCase} */
  const c = { id: "bare", title: "bare", request: () => ({ path: "/zappway/api/v1/agents" }) };
  await drive(bare.url, c, Math.round(config.rate * config.warmupSeconds));
  const before = cpuTimeMs(bare);
  const load = await drive(bare.url, c, config.requests);
  return { units: config.requests, ...load, cpuMs: (cpuTimeMs(bare) - before) / config.requests };
}

// ---------------------------------------------------------------- summary

/**
 * Field-by-field medians of like-shaped trees of numbers (a field a run lacks counts as 0).
 * @template {CounterTree} T
 * @param {T[]} trees
 * @returns {T}
 */
function medianTree(trees) {
  return /** @type {T} */ (medianOfTrees(trees));
}

/**
 * @param {(CounterTree | undefined)[]} trees
 * @returns {CounterTree}
 */
function medianOfTrees(trees) {
  const keys = [...new Set(trees.flatMap((t) => Object.keys(t ?? {})))];
  return Object.fromEntries(
    keys.map((k) => {
      const values = trees.map((t) => t?.[k]);
      const nested = values.some((v) => typeof v === "object");
      return [
        k,
        nested
          ? medianOfTrees(values.map((v) => (typeof v === "object" ? v : {})))
          : median(values.map((v) => (typeof v === "number" ? v : 0))),
      ];
    }),
  );
}

/**
 * What a case's target is judged on: $/M, and for the job cycle without the result's own storage (its R2 write).
 * @param {string} id
 * @param {Counts} counts
 * @param {Prices} prices
 */
function judged(id, counts, prices) {
  /** @type {ReturnType<typeof dollarsPerMillion> & { exclResultStorage?: number }} */
  const dollars = dollarsPerMillion(counts, prices);
  // A job stores one result (one class A write); other writes (usage segments) are the job's cost.
  if (isJobCase(id)) dollars.exclResultStorage = dollars.total - Math.min(1, counts.r2ClassA) * prices.cloudflare.r2.classA;
  return { dollars, value: dollars.exclResultStorage ?? dollars.total };
}

/**
 * Medians over runs; dollars from the median counts; the spread of each run's own figures.
 * @param {string} id
 * @param {string} title
 * @param {Measured[]} runs
 * @param {Prices} prices
 * @returns {CostSummary}
 */
function summarize(id, title, runs, prices) {
  const counts = medianTree(runs.map((r) => r.counts));
  const { dollars, value } = judged(id, counts, prices);
  const range = (/** @type {number[]} */ xs) => [Math.min(...xs), Math.max(...xs)];
  /** @type {CostSummary} */
  const summary = {
    id,
    title,
    unit: isJobCase(id) ? "job" : "request",
    median: { counts, dollars },
    spread: {
      dollars: range(runs.map((r) => judged(id, r.counts, prices).value)),
      rowsWritten: range(runs.map((r) => r.counts.rowsWritten)),
      cpuMs: range(runs.map((r) => r.counts.cpuMs)),
    },
    // Each run's figures; the per-statement breakdown only as the median above.
    runs: runs.map(({ counts: { statements: _, ...counts }, ...run }) => ({ ...run, counts })),
  };
  const target = TARGETS[id];
  if (target !== undefined) summary.target = { perMillion: target, measured: value, met: value <= target };
  if (id === "public_new_address") {
    const share = median(runs.map((r) => (r.addressRowsKept ?? NaN) / r.units));
    const bytes = median(runs.map((r) => r.storageBytesPerAddress ?? NaN));
    summary.kept = {
      // Share of the new addresses whose window row is still stored once their windows have passed.
      holdingDataShare: share,
      target: KEPT_PER_NEW_ADDRESS,
      met: share <= KEPT_PER_NEW_ADDRESS,
      // Growth of the local guard storage on disk per address (the shared address guards' files).
      localBytesPerAddress: bytes,
    };
  }
  return summary;
}

/**
 * The bare Worker measured here, and the managed gateways' list prices.
 * @param {BareRun[]} bareRuns
 * @param {Prices} prices
 * @returns {Comparison[]}
 */
function comparison(bareRuns, prices) {
  const w = prices.cloudflare.workers;
  const cpuMs = median(bareRuns.map((r) => r.cpuMs));
  return [
    {
      id: "bare_worker",
      title: "bare Worker (pass-through, measured here)",
      perMillion: w.requests + cpuMs * w.cpuMs,
      cpuMs,
      source: w.source,
    },
    ...prices.managedGateways.map((g) => ({ id: g.id, title: g.title, perMillion: g.perMillionRequests, tier: g.tier, source: g.source })),
  ];
}

// ---------------------------------------------------------------- report

/** @type {(x: number | null | undefined, digits?: number) => string} */
const n = (x, digits = 2) => (x === null || x === undefined || Number.isNaN(x) ? "-" : x.toFixed(digits));
const usd = (/** @type {number | undefined} */ x) => `$${n(x)}`;

/**
 * @param {CostResults} results
 * @returns {string[][]}
 */
function rowsOf(results) {
  return results.cases.map((c) => {
    const k = c.median.counts;
    const d = c.median.dollars;
    const value = c.unit === "job" ? d.exclResultStorage : d.total;
    let target = c.target ? `<= ${usd(c.target.perMillion)} ${c.target.met ? "met" : "MISSED"}` : "";
    if (c.kept)
      target = `${(c.kept.holdingDataShare * 100).toFixed(0)}% of addresses keep data (target none) ${c.kept.met ? "met" : "MISSED"}`;
    return [
      `${c.title}${c.unit === "job" ? " [per job]" : ""}`,
      `${n(k.rowsWritten)} (${n(k.doRowsWritten)} + ${n(k.d1RowsWritten)})`,
      `${n(k.doRowsRead)} + ${n(k.d1RowsRead)}`,
      `${n(k.kvReads)} / ${n(k.kvWrites)}`,
      `${n(k.r2ClassA)} / ${n(k.r2ClassB)}`,
      n(k.guardCalls + k.guardAlarms, 3),
      n(k.cpuMs),
      usd(value),
      `${usd(c.spread.dollars[0])}-${usd(c.spread.dollars[1])}`,
      target,
    ];
  });
}

const HEADERS = [
  "case",
  "rows written (guard + D1)",
  "rows read (guard + D1)",
  "KV r / w",
  "R2 A / B",
  "DO calls",
  "CPU ms",
  "$/M",
  "runs",
  "target",
];

/** @param {CostResults} results */
function printReport(results) {
  const { config: cfg, machine } = results;
  const out = [
    "",
    `zgate cost bench — ${machine.cpuModel}, ${machine.cores} cores, workerd ${machine.workerd}, prices of ${results.prices.compiled}${results.smoke ? "  [SMOKE: figures are not meaningful]" : ""}`,
  ];
  out.push(
    `${cfg.runs} run(s); steady cases: ${cfg.requests} requests at ${cfg.rate}/s after ${cfg.warmupSeconds} s warm-up; ${cfg.coldKeys} cold keys, ${cfg.newAddresses} new addresses, ${cfg.jobs} jobs per run`,
  );
  out.push("");
  const rows = rowsOf(results);
  for (const g of results.comparison)
    rows.push([g.title, "", "", "", "", "", g.cpuMs === undefined ? "" : n(g.cpuMs), usd(g.perMillion), "", g.tier ?? ""]);
  out.push(table(HEADERS, rows));
  out.push("");
  out.push(
    "Per request (per job for the ZSky job: generate, 3 polls, download; its $/M excludes the result's R2 write). Medians over runs;",
  );
  out.push("runs: the lowest and highest run's $/M. Guard calls include alarm invocations. CPU: the whole workerd process (zgate, the");
  out.push("guard, and Miniflare's local KV/D1/R2 simulators), so an upper bound on the Worker's billed CPU.");
  const over = results.overBudget ?? [];
  out.push(
    `Row budget of hot keyed requests (${n(ROWS_WRITTEN_PER_HOT_REQUEST)} rows written): ` +
      (over.length ? `over in ${over.map((o) => `${o.id} (${n(o.rowsWritten)})`).join(", ")}` : "within"),
  );
  const hot = results.cases.find((c) => c.id === "zappway_key_hot");
  if (hot) {
    out.push("");
    out.push(`Where a hot keyed request's rows are written (${hot.title}, rows per request by statement):`);
    const written = /** @type {const} */ (["guard", "d1"]).flatMap((store) =>
      Object.entries(hot.median.counts.statements[store]).map(
        ([sql, e]) => /** @type {[string, string, number]} */ ([store, sql, e.rowsWritten]),
      ),
    );
    for (const [store, sql, rows] of written.filter((w) => w[2] >= 0.01).sort((a, b) => b[2] - a[2]))
      out.push(`  ${n(rows).padStart(5)}  ${store.padEnd(5)}  ${sql}`);
  }
  out.push("");
  out.push("Markdown (docs/benchmarks.md):");
  out.push(markdown(results));
  out.push("");
  out.push(`Took ${results.timing.totalSeconds} s. Results: ${results.outFile}`);
  console.log(out.join("\n"));
}

/** @param {CostResults} results */
function markdown(results) {
  const line = (/** @type {string[]} */ cells) => `| ${cells.join(" | ")} |`;
  const lines = [line(HEADERS.filter((h) => h !== "runs")), line(HEADERS.filter((h) => h !== "runs").map(() => "---"))];
  for (const row of rowsOf(results))
    lines.push(line([...row.slice(0, 8), row[9] ?? ""].map((cell, i) => (i === 7 ? `${cell} (${row[8]})` : cell))));
  for (const g of results.comparison)
    lines.push(line([g.title, "", "", "", "", "", g.cpuMs === undefined ? "" : n(g.cpuMs), usd(g.perMillion), g.tier ?? ""]));
  return lines.join("\n");
}

/**
 * default_key_1rps measured alone (BENCH_COST_DEFAULT_KEY_ONLY): the results file as it
 * was, with this case put in (or replaced) and the machine, settings and time it was
 * measured with beside it; every other case, and the file's own context, untouched.
 * @template {{ smoke: boolean, machine: object, config: object, timing: object, cases: { id: string }[] }} R
 * @param {string} file
 * @param {R} results
 * @returns {R}
 */
function withOtherCasesOf(file, results) {
  if (!existsSync(file)) return results;
  const earlier = JSON.parse(readFileSync(file, "utf8"));
  const measuredApart = { machine: results.machine, config: results.config, timing: results.timing };
  const fresh = results.cases.map((c) => ({ ...c, measuredApart }));
  const ids = new Set(fresh.map((c) => c.id));
  const cases = [...earlier.cases.filter((/** @type {{ id: string }} */ c) => !ids.has(c.id)), ...fresh];
  cases.sort((a, b) => COST_CASES.indexOf(a.id) - COST_CASES.indexOf(b.id));
  return { ...earlier, smoke: earlier.smoke || results.smoke, cases };
}

// ---------------------------------------------------------------- main

async function main() {
  const loadBefore = loadavg();
  const work = mkdtempSync(join(tmpdir(), "zgate-cost-"));
  track(() => rmSync(work, { recursive: true, force: true }), { dir: work });
  const storage = storageRoot(config.storage);
  track(() => rmSync(storage, { recursive: true, force: true }), { dir: storage });
  log(`${smoke ? "SMOKE " : ""}config ${JSON.stringify(config)}`);

  const built = await whileBuilding(buildCost(work));
  const compat = readCompatibility();
  const origin = await startOrigin();
  track(origin.stop, { pids: [origin.pid] });
  const bare = await startBare({ scriptPath: built.bare, originUrl: origin.url, compat, storage });
  track(bare.stop, { pids: bare.pids });
  const settings = costSettings(origin.url, config.windowSeconds, config.usageFlushMs);
  // The smoke's 10 new addresses would mostly land in 10 of 256 address guards: 4 show that they share them.
  const shared = { built, compat, settings: smoke ? { ...settings, ADDRESS_GUARD_SHARDS: "4" } : settings };
  log(`origin ${origin.url}, bare ${bare.url}`);

  /** @type {Record<string, { title: string, runs: Measured[] }>} */
  const byCase = {};
  /** @type {(c: { id: string, title: string }, result: Measured) => void} */
  const record = (c, result) => {
    (byCase[c.id] ??= { title: c.title, runs: [] }).runs.push(result);
  };
  /** @type {BareRun[]} */
  const bareRuns = [];
  for (let run = 0; run < (config.defaultKey.only ? 0 : config.runs); run++) {
    bareRuns.push(await bareRun(bare));
    // Each run on a zgate of its own, over storage of its own: nothing an earlier run
    // made (objects, their alarms) is in this one's counts.
    const env = { ...shared, storage: storageRoot(config.storage) };
    const dropStorage = track(() => rmSync(env.storage, { recursive: true, force: true }), { dir: env.storage });
    await startCounted(env);
    await applyMigrations(zgate.mf);
    const credentials = await steadyCredentials(zgate.url, env.settings);
    for (const c of steadyCases(credentials)) {
      const result = await steadyRun(c);
      record(c, result);
      log(
        `run ${run + 1}/${config.runs} ${c.id}: ${n(result.counts.rowsWritten)} rows written, ${n(result.counts.guardCalls + result.counts.guardAlarms, 3)} DO calls per request`,
      );
    }
    const fresh = newAddressCase(run);
    record(fresh, await newAddressRun(env, fresh));
    for (const jobCase of JOB_CASES) record(jobCase, await jobRun(env, jobCase, run));
    log(`run ${run + 1}/${config.runs}: new addresses and jobs done`);
    const keys = await coldKeys(zgate.url, env.settings, run, config.coldKeys);
    await drain(); // the keys' registration
    await restart(env);
    for (const c of coldCases(keys)) record(c, await coldRun(c, config.coldKeys));
    log(`run ${run + 1}/${config.runs}: cold keys done`);
    await stopZgate();
    await dropStorage();
  }
  // After the others (its workerds would share the machine with them), every run, near and far, at once.
  const defaultKey = { ...config.defaultKey, scriptPath: built.counted, originUrl: origin.url, storage: config.storage, log };
  const farCase = defaultKeyFarCase(config.defaultKey.farMs);
  const runsOf = (/** @type {import("./cost-cases.mjs").DefaultKeyCase} */ c) =>
    defaultKeyRuns(c, config.runs, { ...defaultKey, usageFlushMs: config.usageFlushMs });
  const [near, far] = await Promise.all([runsOf(DEFAULT_KEY_CASE), runsOf(farCase)]);
  for (const result of near) record(DEFAULT_KEY_CASE, result);
  for (const result of far) record(farCase, result);

  const prices = loadPrices();
  const cases = COST_CASES.flatMap((id) => {
    const measuredCase = byCase[id];
    return measuredCase ? [summarize(id, measuredCase.title, measuredCase.runs, prices)] : [];
  });
  /** @type {CostResults} */
  const results = {
    schema: "zgate-bench-cost/1",
    smoke,
    machine: {
      ...machineInfo(root),
      loadAverageBefore: loadBefore.map((x) => round(x, 2)),
      loadAverageAfter: loadavg().map((x) => round(x, 2)),
    },
    config,
    prices: { file: PRICES_FILE.slice(root.length), compiled: prices.compiled },
    timing: { totalSeconds: round((performance.now() - startedAt) / 1000, 1) },
    cases,
    comparison: comparison(bareRuns, prices),
    bare: { runs: bareRuns },
    rowBudget: { rowsWrittenPerHotRequest: ROWS_WRITTEN_PER_HOT_REQUEST },
    outFile: outFile.startsWith(root) ? relative(root, outFile) : outFile,
  };
  results.overBudget = overBudget(results);
  const written = config.defaultKey.only ? withOtherCasesOf(outFile, results) : results;
  writeResults(outFile, written);
  printReport({ ...written, timing: results.timing, outFile: results.outFile });
}

await runBench("bench:cost", main);
