// From counted operations to dollars: the counters bench/cost-worker.mjs keeps, turned
// into per-unit counts (a unit is one request, or one ZSky job) and priced at the list
// prices of bench/prices.json.
import { readFileSync } from "node:fs";

export const PRICES_FILE = new URL("./prices.json", import.meta.url).pathname;

/** @typedef {typeof import("./prices.json")} Prices */
/** @typedef {import("./cost-worker.mjs").Counters} Counters */
/** @typedef {{ [name: string]: number | CounterTree }} CounterTree */
/** @typedef {ReturnType<typeof perUnit>} Counts */

/** @returns {Prices} */
export function loadPrices() {
  return JSON.parse(readFileSync(PRICES_FILE, "utf8"));
}

/**
 * `after - before` for every number in a counters tree (a method missing before counts from 0).
 * @template {CounterTree} T
 * @param {T} after
 * @param {CounterTree} [before]
 * @returns {T}
 */
export function counterDelta(after, before = {}) {
  /** @type {CounterTree} */
  const out = {};
  for (const [key, value] of Object.entries(after)) {
    const was = before[key];
    out[key] =
      typeof value === "number"
        ? value - (typeof was === "number" ? was : 0)
        : counterDelta(value, typeof was === "object" ? was : undefined);
  }
  return /** @type {T} */ (out);
}

/**
 * What one object's alarms counted when the bench ran them ahead of time (cost-worker.mjs
 * drainAlarms): when its first alarm was set and is due (ms), and the counters' difference.
 * @typedef {{ kind: string, armedAt: number, dueAt: number, alarms: number, counters: Counters }} Drained
 */

/**
 * Tables of rows that requests write, one per usage batch, job or window: the alarms that
 * delete them do so for every such row, so those deletions grow with the traffic served.
 */
const PER_REQUEST_ROWS = /^DELETE FROM (key_usage_batches|owned_jobs|windows)\b/;
/**
 * In steady traffic an object runs its alarm at most this often apart, whatever it has to
 * do: usage logs compact by the hour (COMPACT_AFTER_MS) and do their retention in the same
 * alarm, address indexes forget by the hour, guards retire jobs by the hour (RETIRE_EVERY_MS).
 */
const LONGEST_ALARM_PERIOD_MS = 3_600_000;

/**
 * The part of the drained alarms' counts a stretch is charged: their work is run once per
 * alarm period (from the alarm's setting to its coming, at most an hour), and a stretch
 * of steady traffic `seconds` long is that share of a period's traffic. Its deletions of
 * rows requests wrote (PER_REQUEST_ROWS) are all its own: charged in full. A stretch of
 * one-off subjects (`seconds` undefined: each object sees it once) is charged everything.
 * The setting of the alarm that started an object's chain, a row written in the stretch,
 * is charged like the chain.
 * @param {Drained[]} drained
 * @param {number} [seconds]
 * @returns {{ raw: CounterTree, charged: CounterTree }}
 */
export function drainedCharge(drained, seconds) {
  /** @type {CounterTree} */
  let raw = {};
  /** @type {CounterTree} */
  let charged = {};
  for (const d of drained) {
    raw = addTrees(raw, d.counters);
    const period = d.armedAt > 0 ? Math.min(LONGEST_ALARM_PERIOD_MS, d.dueAt - d.armedAt) : LONGEST_ALARM_PERIOD_MS;
    const share = seconds === undefined ? 1 : Math.min(1, (seconds * 1000) / Math.max(1, period));
    /** @type {CounterTree} */
    const full = {};
    let perRequestRows = 0;
    for (const [sql, e] of Object.entries(d.counters.guard.bySql))
      if (PER_REQUEST_ROWS.test(sql)) {
        full[sql] = e;
        perRequestRows += e.rowsWritten;
      }
    const scaled = scaleBy(d.counters, share);
    // The rows of PER_REQUEST_ROWS back at their full count, in the totals and by statement.
    const g = /** @type {CounterTree} */ (scaled.guard);
    g.sqlRowsWritten = /** @type {number} */ (g.sqlRowsWritten) + perRequestRows * (1 - share);
    g.bySql = { .../** @type {CounterTree} */ (g.bySql), ...full };
    // The setAlarm that started the chain (a row the stretch wrote) recurs with it too.
    if (d.armedAt > 0) g.alarmsSet = /** @type {number} */ (g.alarmsSet) - (1 - share);
    charged = addTrees(charged, scaled);
  }
  return { raw, charged };
}

/**
 * Numbers of two like-shaped trees added (a field one lacks counts as 0).
 * @param {CounterTree} a
 * @param {CounterTree} b
 * @returns {CounterTree}
 */
export function addTrees(a, b) {
  /** @type {CounterTree} */
  const out = { ...a };
  for (const [key, value] of Object.entries(b)) {
    const mine = a[key];
    out[key] =
      typeof value === "number" ? (typeof mine === "number" ? mine : 0) + value : addTrees(typeof mine === "object" ? mine : {}, value);
  }
  return out;
}

/**
 * Every number of a tree times `factor`.
 * @param {CounterTree} tree
 * @param {number} factor
 * @returns {CounterTree}
 */
export function scaleBy(tree, factor) {
  return Object.fromEntries(Object.entries(tree).map(([k, v]) => [k, typeof v === "number" ? v * factor : scaleBy(v, factor)]));
}

/**
 * Per-unit counts of one measured stretch: `delta` is the counters' difference over it,
 * `units` how many requests (or jobs) it served, `workerRequests` how many Worker
 * requests those were, `cpuMs` the workerd CPU time it took.
 * @param {{ delta: Counters, units: number, workerRequests: number, cpuMs: number }} stretch
 */
export function perUnit({ delta, units, workerRequests, cpuMs }) {
  const g = delta.guard;
  const per = (/** @type {number} */ x) => x / units;
  const doRowsWritten = g.sqlRowsWritten + g.kvRowsWritten + g.alarmsSet + g.deleteAllRows;
  const doRowsRead = g.sqlRowsRead + g.kvRowsRead;
  return {
    workerRequests: per(workerRequests),
    cpuMs: per(cpuMs),
    guardCalls: per(g.calls),
    guardAlarms: per(g.alarms),
    guardObjectsStarted: per(g.constructed),
    doRowsRead: per(doRowsRead),
    doRowsWritten: per(doRowsWritten),
    // The parts of doRowsWritten, for reading the figure.
    doSqlRowsWritten: per(g.sqlRowsWritten),
    doKvRowsWritten: per(g.kvRowsWritten),
    doAlarmsSet: per(g.alarmsSet),
    doDeleteAllRows: per(g.deleteAllRows),
    d1Statements: per(delta.d1.statements),
    d1RowsRead: per(delta.d1.rowsRead),
    d1RowsWritten: per(delta.d1.rowsWritten),
    kvReads: per(delta.kv.reads),
    kvWrites: per(delta.kv.writes + delta.kv.deletes + delta.kv.lists),
    r2ClassA: per(delta.r2.classA),
    r2ClassB: per(delta.r2.classB),
    rowsWritten: per(doRowsWritten + delta.d1.rowsWritten),
    rowsRead: per(doRowsRead + delta.d1.rowsRead),
    guardCallsByMethod: Object.fromEntries(Object.entries(g.byMethod).map(([name, n]) => [name, per(n)])),
    guardAlarmsByKind: Object.fromEntries(Object.entries(g.alarmsByKind ?? {}).map(([kind, n]) => [kind, per(n)])),
    // Where the rows go: per statement text, the statements run and rows read and written per unit.
    statements: { guard: perStatement(g.bySql, per), d1: perStatement(delta.d1.bySql, per) },
  };
}

/**
 * @param {Counters["d1"]["bySql"]} bySql
 * @param {(x: number) => number} per
 */
const perStatement = (bySql, per) =>
  Object.fromEntries(
    Object.entries(bySql)
      .filter(([, e]) => e.statements > 0)
      .map(([sql, e]) => [sql, { statements: per(e.statements), rowsRead: per(e.rowsRead), rowsWritten: per(e.rowsWritten) }]),
  );

/**
 * Dollars per million units, by product. KV deletes and lists cost what a write does.
 * @param {Counts} counts
 * @param {Prices} prices
 */
export function dollarsPerMillion(counts, prices) {
  const cf = prices.cloudflare;
  const parts = {
    workers: counts.workerRequests * cf.workers.requests + counts.cpuMs * cf.workers.cpuMs,
    durableObjects:
      (counts.guardCalls + counts.guardAlarms) * cf.durableObjects.requests +
      counts.doRowsWritten * cf.durableObjects.rowsWritten +
      counts.doRowsRead * cf.durableObjects.rowsRead,
    d1: counts.d1RowsWritten * cf.d1.rowsWritten + counts.d1RowsRead * cf.d1.rowsRead,
    kv: counts.kvReads * cf.kv.reads + counts.kvWrites * cf.kv.writes,
    r2: counts.r2ClassA * cf.r2.classA + counts.r2ClassB * cf.r2.classB,
  };
  return { ...parts, total: Object.values(parts).reduce((a, b) => a + b, 0) };
}
