#!/usr/bin/env node
// @ts-check
// `npm run bench:scale`: what one busy account and many accounts cost each object and store,
// per request and per second, measured with several isolates at once (issue 25 item 4).
//
// zgate runs unchanged as BENCH_SCALE_ISOLATES Worker instances ("isolates") of one workerd
// (bench/workers.mjs startZgateIsolates, as bench:distance runs it), sharing one KV
// namespace, D1 database and R2 bucket and bound to one namespace of each Durable Object
// class, whose objects run in a Worker of their own. The wrapper (bench/scale-worker.mjs)
// counts every call each object receives, per object and per second (RPC, fetch, alarms),
// and every KV, D1, R2 and Durable Object storage operation.
//
// Rates and times are on zgate's clock (src/util/clock.ts: every limit, lease and wait
// reads it), which the wrapper runs BENCH_SCALE_SLOWDOWN times slower than real time, the
// same in every Worker; requests go that many times fewer per real second. One workerd
// serves every isolate and object on one thread: on 2 shared cores it could not serve 400
// req/s without queueing for seconds (p50 3.2 s at load 7), which bunches arrivals and
// changes what leases see; at half the rate real it answers in a few ms. What is not on
// zgate's clock runs in real time: CPU, a round trip, USAGE_FLUSH_MS (set to the flush
// asked for times the slowdown, at most its 20 s).
//
// The cases, each on accounts of its own, each followed by a settle (a usage flush and a
// little more) before its counts are read:
// - hot account at 80% and at 125% of its limit: BENCH_SCALE_ISOLATES isolates each offered
//   BENCH_SCALE_ISOLATE_RPS requests/s by one ZappWay account of BENCH_SCALE_KEYS keys over 2
//   routes (GET agents, GET conversations), each isolate cycling through every key and
//   route; the account's own limit (`plan_rate`, counted per account) set so the offered
//   load is that share of it: issue 25's 1,500,000 a minute at 20,000 req/s, scaled to
//   these isolates (and to a BENCH_SCALE_WINDOW_S window, 10 s by default, so 125% fills
//   it within the case: a minute's window would take 48 s). Two thirds into the case one
//   of the keys is revoked (admin API, through the first isolate): its time to return, and
//   the admissions of that key's requests sent after it returned;
// - many accounts flushing usage at once: BENCH_SCALE_ACCOUNTS accounts of one key each
//   (limits far above the load), the same total load, every isolate serving every account,
//   so each isolate's flush sends an append to every account's usage log at the same moment.
//
// Exactness is judged from the responses (client-figures.mjs judgeWindow): the most
// admissions that certainly fell within one window, against the limit.
//
// Environment (defaults: 1 run of about 3.5 minutes):
//   BENCH_SCALE_RUNS=1           runs (figures over runs: median and range)
//   BENCH_SCALE_ISOLATES=4       simulated isolates
//   BENCH_SCALE_ISOLATE_RPS=100  requests per second offered to each isolate
//   BENCH_SCALE_KEYS=50          keys of the hot account
//   BENCH_SCALE_SECONDS=20       length of each case
//   BENCH_SCALE_WINDOW_S=10      the hot account's window
//   BENCH_SCALE_ACCOUNTS=200     accounts of the usage case
//   BENCH_SCALE_FLUSH_MS=10000   USAGE_FLUSH_MS on zgate's clock (production's default)
//   BENCH_SCALE_DELAY_MS=0       guard round trip added to every guard call (bench:distance's wrapper), on zgate's clock
//   BENCH_SCALE_SLOWDOWN=2       zgate's clock runs this many times slower than real time (scale-worker.mjs), and
//                                the harness sends this many times fewer requests per real second
//   BENCH_STORAGE=tmpfs          where local KV/D1/R2/DO data lives: tmpfs or disk
//   BENCH_SCALE_SMOKE=1          2 isolates at 20 req/s, 3 s cases, 3 keys, 6 accounts, a 0.3 s flush: checks the harness only
//   BENCH_OUT=path               results file (default bench/results/scale.json; scale-smoke.json in smoke mode)
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { createKeys, issueKey } from "./cases.mjs";
import { judgeWindow, spread, statusCounts } from "./client-figures.mjs";
import { defaultLimitSettings } from "./cost-cases.mjs";
import { runBench, setting as numberSetting, track, whileBuilding } from "./harness.mjs";
import { median, percentile, round } from "./load.mjs";
import { startOrigin } from "./origin.mjs";
import { machineInfo, table, writeResults } from "./report.mjs";
import { applyMigrations, buildScale, readCompatibility, root, startZgateIsolates, storageRoot } from "./workers.mjs";

/** @typedef {import("./client-figures.mjs").Spread} Spread */
/** @typedef {import("./scale-worker.mjs").ObjectCounts} ObjectCounts */
/** @typedef {typeof import("./cost-worker.mjs").counters} Counters */
/** @typedef {{ counters: Counters, objects: Record<string, ObjectCounts>, usageCalls: { appends: number, rows: number, calls: number } }} WorkerCounts */
/**
 * One request as the client saw it (ms since the epoch): its isolate, the key it used, status.
 * @typedef {{ isolate: number, key: number, sentAt: number, answeredAt: number, status: number, error?: string }} Sent
 */

const smoke = process.env.BENCH_SCALE_SMOKE === "1";
/** @type {(name: string, fallback: number, smokeValue: number) => number} */
const setting = (name, fallback, smokeValue) => numberSetting(name, fallback, smokeValue, smoke);
const config = {
  runs: Math.round(setting("BENCH_SCALE_RUNS", 1, 1)),
  isolates: Math.round(setting("BENCH_SCALE_ISOLATES", 4, 2)),
  isolateRps: setting("BENCH_SCALE_ISOLATE_RPS", 100, 20),
  keys: Math.round(setting("BENCH_SCALE_KEYS", 50, 3)),
  caseSeconds: setting("BENCH_SCALE_SECONDS", 20, 3),
  /** zgate's clock runs this many times slower than real time; the harness sends this many times fewer requests per real second. */
  slowdown: setting("BENCH_SCALE_SLOWDOWN", 2, 2),
  windowSeconds: Math.round(setting("BENCH_SCALE_WINDOW_S", 10, 2)),
  accounts: Math.round(setting("BENCH_SCALE_ACCOUNTS", 200, 6)),
  flushMs: Math.round(setting("BENCH_SCALE_FLUSH_MS", 10_000, 300)),
  delayMs: delaySetting(),
  /** Offered load as a share of the hot account's limit. */
  loads: [0.8, 1.25],
  /**
   * Where in a hot case the revoke is sent (share of its length). It waits for the key's
   * leases and its share's vouching (up to a second on zgate's clock): a smoke case sends
   * it early enough for its key to call again after it returns.
   */
  revokeAt: smoke ? 1 / 3 : 2 / 3,
  /** Seconds at a case's start left out of its per-second figures (isolates meeting the account). */
  rampSeconds: smoke ? 0 : 2,
  storage: /** @type {"disk" | "tmpfs"} */ (process.env.BENCH_STORAGE === "disk" ? "disk" : "tmpfs"),
};
/** BENCH_SCALE_DELAY_MS: whole ms, 0 (the default) or more. */
function delaySetting() {
  const raw = process.env.BENCH_SCALE_DELAY_MS || "0";
  const ms = Number(raw);
  if (!Number.isInteger(ms) || ms < 0) throw new Error(`BENCH_SCALE_DELAY_MS must be whole ms, got "${raw}"`);
  return ms;
}
/** USAGE_FLUSH_MS: config.flushMs on zgate's clock, in real ms (settings allow at most 20 s). */
const flushRealMs = Math.min(20_000, config.flushMs * config.slowdown);
/**
 * After a case (real ms): its last usage flush (USAGE_FLUSH_MS after its last calls), its lease refunds (a share's lease
 * lives up to a second on zgate's clock: its refund must not land in the next case), and a margin.
 */
const settleMs = flushRealMs + Math.max(smoke ? 500 : 2_000, 1_000 * config.slowdown + 500);
/** zgate's clock starts at this real time and runs config.slowdown times slower (scale-worker.mjs). */
const clockT0 = Date.now();
/** A real time (ms since the epoch) on zgate's clock. @param {number} real */
const zgateTime = (real) => clockT0 + (real - clockT0) / config.slowdown;
/** What the model multiplies out to (issue 25): 200 isolates at 100 req/s, at most 500 guard calls/s on any one object. */
const TARGET = { isolates: 200, isolateRps: 100, callsPerObject: 500, revokeReturnMs: 1_500 };
const ROUTES = ["/zappway/api/v1/agents", "/zappway/api/v1/conversations"];
const outFile = resolve(process.env.BENCH_OUT || join(root, "bench", "results", smoke ? "scale-smoke.json" : "scale.json"));

const startedAt = performance.now();
/** @param {string} msg */
const log = (msg) => console.log(`[${((performance.now() - startedAt) / 1000).toFixed(0).padStart(4)}s] ${msg}`);
/** @param {number} ms */
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const loadNow = () => loadavg().map((x) => round(x, 2));

// ---------------------------------------------------------------- sending

/**
 * Sends one request and times it to the end of its body, on zgate's clock (the one the
 * isolates count seconds, windows and leases on).
 * @param {string} url
 * @param {{ method?: string, headers: Record<string, string> }} init
 */
async function timed(url, init) {
  const sentAt = zgateTime(Date.now());
  try {
    const response = await fetch(url, init);
    await response.arrayBuffer();
    return { sentAt, answeredAt: zgateTime(Date.now()), status: response.status };
  } catch (err) {
    return { sentAt, answeredAt: zgateTime(Date.now()), status: 0, error: String(err instanceof Error ? (err.cause ?? err.message) : err) };
  }
}

/**
 * Offers `config.isolateRps` requests/s to each isolate for `config.caseSeconds`, on zgate's
 * clock: request n goes at n / (isolates x rate) s to isolate n mod isolates, whatever the
 * answers before it took. `request(n, isolate, j)` names its key (by index), path and headers (j: the
 * isolate's own count). `during` runs alongside, given the real time sending started.
 * The span returned is on zgate's clock.
 * @param {string[]} urls
 * @param {string} tag
 * @param {(n: number, isolate: number, j: number) => { key: number, path: string, headers: Record<string, string> }} request
 * @param {(startedAt: number) => Promise<unknown>} [during]
 */
async function offer(urls, tag, request, during) {
  const perSecond = (urls.length * config.isolateRps) / config.slowdown;
  const count = Math.round(urls.length * config.isolateRps * config.caseSeconds);
  const started = Date.now();
  const side = during?.(started);
  /** @type {Promise<Sent>[]} */
  const pending = [];
  let lateMs = 0;
  for (let n = 0; n < count; n++) {
    const due = started + (n * 1000) / perSecond;
    const wait = due - Date.now();
    if (wait > 1) await sleep(wait);
    else lateMs = Math.max(lateMs, -wait);
    const isolate = n % urls.length;
    const { key, path, headers } = request(n, isolate, Math.floor(n / urls.length));
    pending.push(timed(`${urls[isolate]}${path}`, { headers: { ...headers, "X-Bench-Case": tag } }).then((r) => ({ isolate, key, ...r })));
  }
  // The case's span is its sending: answers still on their way come after it.
  const ended = Date.now();
  const sent = await Promise.all(pending);
  await side;
  /** @type {Record<string, number>} */
  const errors = {};
  for (const r of sent) if (r.error) errors[r.error] = (errors[r.error] ?? 0) + 1;
  return { started: zgateTime(started), ended: zgateTime(ended), sent, lateMs, errors };
}

// ---------------------------------------------------------------- counts

/**
 * Every Worker's counts (each isolate, and the host of the objects).
 * @param {string[]} urls
 * @returns {Promise<WorkerCounts[]>}
 */
async function readCounts(urls) {
  return Promise.all(
    urls.map(async (url) => {
      const response = await fetch(`${url}/__bench/scale`);
      if (!response.ok) throw new Error(`reading the counts: ${response.status} ${await response.text()}`);
      return /** @type {Promise<WorkerCounts>} */ (response.json());
    }),
  );
}

/**
 * Numbers of `after` less `before`, summed over Workers, leaf by leaf (nested objects alike).
 * @param {unknown[]} before
 * @param {unknown[]} after
 * @returns {any}
 */
function difference(before, after) {
  /** @param {any} into @param {any} value @param {number} sign */
  const add = (into, value, sign) => {
    for (const [k, v] of Object.entries(value ?? {})) {
      if (typeof v === "number") into[k] = (into[k] ?? 0) + sign * v;
      else if (v && typeof v === "object") add((into[k] ??= {}), v, sign);
    }
    return into;
  };
  const out = {};
  for (const w of after) add(out, w, 1);
  for (const w of before) add(out, w, -1);
  return out;
}

/**
 * The objects every Worker counted, merged: calls by method and by second, and busy ms per
 * second (each Worker's own calls under way; summed over Workers, at most 1,000 a second).
 * @param {WorkerCounts[]} counts
 */
function mergedObjects(counts) {
  /** @type {Record<string, ObjectCounts>} */
  const merged = {};
  for (const { objects } of counts)
    for (const [key, o] of Object.entries(objects)) {
      const into = (merged[key] ??= { binding: o.binding, name: null, byMethod: {}, bySecond: {}, busyMsBySecond: {} });
      into.name ??= o.name;
      for (const part of /** @type {const} */ (["byMethod", "bySecond", "busyMsBySecond"]))
        for (const [k, n] of Object.entries(o[part])) into[part][k] = (into[part][k] ?? 0) + n;
    }
  const realMsPerSecond = 1000 * config.slowdown;
  for (const o of Object.values(merged))
    for (const s of Object.keys(o.busyMsBySecond)) o.busyMsBySecond[s] = Math.min(realMsPerSecond, o.busyMsBySecond[s] ?? 0);
  return merged;
}

/**
 * One object's calls over whole seconds [from, to): each second's count, their mean,
 * median, 90th percentile and highest (seconds on zgate's clock), calls by method, the
 * share of the (real) time a call was under way, and that time per call (real ms).
 * @param {ObjectCounts} o
 * @param {number} from unix second
 * @param {number} to unix second
 */
function perSecond(o, from, to) {
  const counts = [];
  let busyMs = 0;
  for (let s = from; s < to; s++) {
    counts.push(o.bySecond[s] ?? 0);
    busyMs += o.busyMsBySecond[s] ?? 0;
  }
  const sorted = Float64Array.from(counts).sort();
  const total = counts.reduce((a, b) => a + b, 0);
  const seconds = Math.max(1, to - from);
  return {
    seconds,
    mean: round(total / seconds, 1),
    median: round(median(counts), 1),
    p90: round(percentile(sorted, 90), 1),
    max: Math.max(0, ...counts),
    busyShare: round(busyMs / (seconds * 1000 * config.slowdown), 3),
    activeMsPerCall: total > 0 ? round(busyMs / total, 2) : null,
    byMethod: o.byMethod,
  };
}

/**
 * Every object of a binding over a case's whole seconds, busiest first.
 * @param {Record<string, ObjectCounts>} objects
 * @param {string} binding
 * @param {{ started: number, ended: number }} span
 */
function objectsOf(objects, binding, span) {
  const from = Math.floor(span.started / 1000) + 1 + config.rampSeconds;
  const to = Math.floor(span.ended / 1000);
  return Object.entries(objects)
    .filter(([, o]) => o.binding === binding)
    .map(([key, o]) => ({ key, name: o.name, calls: Object.values(o.byMethod).reduce((a, b) => a + b, 0), ...perSecond(o, from, to) }))
    .filter((o) => o.calls > 0)
    .sort((a, b) => b.mean - a.mean || b.calls - a.calls);
}

/**
 * What every store did for a case, per request: Durable Object requests by binding, their
 * storage rows, KV, D1 and R2 operations (bench:cost's counters, over every Worker).
 * @param {any} d the counters' difference over the case (difference())
 * @param {Record<string, number>} requestsByBinding the objects' calls by binding
 * @param {number} requests
 */
function perRequest(d, requestsByBinding, requests) {
  const per = (/** @type {number} */ x) => round((x ?? 0) / requests, 4);
  const c = d.counters;
  /** DO storage rows written, split by which objects' tables they touch. */
  const rows = { guard: 0, usage: 0 };
  for (const [sql, s] of Object.entries(c.guard.bySql ?? {}))
    rows[/key_usage_batches|last_use|segments|\bseen\b/.test(sql) ? "usage" : "guard"] += /** @type {{ rowsWritten: number }} */ (
      s
    ).rowsWritten;
  return {
    guardCalls: per(requestsByBinding.ACCOUNT_GUARD ?? 0),
    usageLogCalls: per(requestsByBinding.USAGE_LOG ?? 0),
    addressIndexCalls: per(requestsByBinding.USAGE_ADDRESSES ?? 0),
    doRowsWrittenGuard: per(rows.guard + (c.guard.kvRowsWritten ?? 0) + (c.guard.alarmsSet ?? 0)),
    doRowsWrittenUsage: per(rows.usage),
    doRowsRead: per((c.guard.sqlRowsRead ?? 0) + (c.guard.kvRowsRead ?? 0)),
    kvReads: per(c.kv.reads),
    kvWrites: per(c.kv.writes + c.kv.deletes),
    d1Statements: per(c.d1.statements),
    d1RowsWritten: per(c.d1.rowsWritten),
    r2ClassA: per(c.r2.classA),
    r2ClassB: per(c.r2.classB),
  };
}

/**
 * Calls each binding's objects received over a case (every second of it, and its settle).
 * @param {Record<string, ObjectCounts>} objects
 */
function callsByBinding(objects) {
  /** @type {Record<string, number>} */
  const out = {};
  for (const o of Object.values(objects)) out[o.binding] = (out[o.binding] ?? 0) + Object.values(o.byMethod).reduce((a, b) => a + b, 0);
  return out;
}

/**
 * The SQLite bytes an object holds (its storage bill), asked of the host.
 * @param {Bench} b
 * @param {string} binding
 * @param {string} name
 * @returns {Promise<number>}
 */
async function sizeOf(b, binding, name) {
  const response = await fetch(`${b.hostUrl}/__bench/size?binding=${binding}&name=${encodeURIComponent(name)}`);
  const body = await response.json();
  if (typeof body.bytes !== "number") throw new Error(`the size of ${binding} ${name}: ${JSON.stringify(body)}`);
  return body.bytes;
}

// ---------------------------------------------------------------- cases

/**
 * @typedef {{
 *   urls: string[],
 *   hostUrl: string,
 *   entry: string,
 *   settings: ReturnType<typeof defaultLimitSettings>,
 * }} Bench
 */

/** @param {Bench} b */
const allWorkers = (b) => [...b.urls, b.hostUrl];

/**
 * Sets an account's own window limit (admin PUT /accounts/{product}/{account}/plan).
 * @param {Bench} b
 * @param {string} account
 * @param {number} limit
 * @param {number} windowSeconds
 */
async function setAccountLimit(b, account, limit, windowSeconds) {
  const response = await fetch(`${b.entry}/admin/v1/accounts/zappway/${account}/plan`, {
    method: "PUT",
    headers: { Authorization: `Bearer ${b.settings.ADMIN_TOKEN}`, "Content-Type": "application/json" },
    body: JSON.stringify({ plan: null, limit_override: { windows: { plan_rate: { limit, window_seconds: windowSeconds } } } }),
  });
  if (response.status !== 200) throw new Error(`setting ${account}'s limit: ${response.status} ${await response.text()}`);
}

/**
 * The guard calls the isolates made for requests tagged `tag` (bench:distance's count, by
 * X-Bench-Case): before each request's answer, and after it (waitUntil work).
 * @param {Bench} b
 * @param {string} tag
 */
async function taggedGuardCalls(b, tag) {
  const sum = { before: 0, after: 0 };
  for (const url of b.urls) {
    const response = await fetch(`${url}/__bench/calls`);
    if (!response.ok) throw new Error(`reading the tagged guard calls: ${response.status}`);
    /** @type {Record<string, import("./distance-worker.mjs").CaseCalls>} */
    const calls = await response.json();
    sum.before += calls[tag]?.before ?? 0;
    sum.after += calls[tag]?.after ?? 0;
  }
  return sum;
}

/**
 * Counts over a case sent with the tag `tag`: read before it, read after its settle; the
 * objects it reached and what each store did.
 * @param {Bench} b
 * @param {string} tag
 * @param {(tag: string) => Promise<{ started: number, ended: number, sent: Sent[], lateMs: number, errors: Record<string, number> }>} run
 */
async function counted(b, tag, run) {
  const before = await readCounts(allWorkers(b));
  const loadBefore = loadNow();
  const span = await run(tag);
  const loadAfter = loadNow();
  await sleep(settleMs);
  const after = await readCounts(allWorkers(b));
  const d = difference(before, after);
  const objects = mergedObjects(after);
  // Only what this case added: the objects' counts less those before it.
  const earlier = mergedObjects(before);
  for (const [key, o] of Object.entries(objects)) {
    const was = earlier[key];
    if (!was) continue;
    for (const part of /** @type {const} */ (["byMethod", "bySecond", "busyMsBySecond"]))
      for (const k of Object.keys(o[part])) o[part][k] = (o[part][k] ?? 0) - (was[part][k] ?? 0);
  }
  const seconds = (span.ended - span.started) / 1000;
  const requests = span.sent.length;
  const byBinding = callsByBinding(objects);
  return {
    span,
    objects,
    load: {
      offeredRps: b.urls.length * config.isolateRps,
      // On zgate's clock, and in real time (what this machine served).
      sentRps: round(requests / seconds, 1),
      realSentRps: round(requests / seconds / config.slowdown, 1),
      latestSendMs: round(span.lateMs, 1),
      loadAverage: { before: loadBefore, after: loadAfter },
    },
    requests,
    statuses: statusCounts(span.sent),
    errors: span.errors,
    latencyMs: latency(span.sent),
    perRequest: perRequest(d, byBinding, requests),
    callsByBinding: byBinding,
    taggedGuardCalls: await taggedGuardCalls(b, tag),
    usageCalls: d.usageCalls,
  };
}

/** Real ms from sending to the end of the answer (what this machine served). @param {Sent[]} sent */
function latency(sent) {
  const sorted = Float64Array.from(sent.map((r) => (r.answeredAt - r.sentAt) * config.slowdown)).sort();
  return { p50: round(percentile(sorted, 50), 1), p90: round(percentile(sorted, 90), 1), p99: round(percentile(sorted, 99), 1) };
}

/**
 * The hot account at `load` of its limit, with a revoke of one of its keys two thirds in.
 * @param {Bench} b
 * @param {number} run
 * @param {number} load
 */
async function hotAccount(b, run, load) {
  const id = `hot${Math.round(load * 100)}`;
  const account = `scale_r${run}_${id}`;
  const offeredPerWindow = b.urls.length * config.isolateRps * config.windowSeconds;
  const limit = Math.round(offeredPerWindow / load);
  await setAccountLimit(b, account, limit, config.windowSeconds);
  const body = { product: "zappway", account };
  const revoked = await issueKey(b.entry, b.settings, body);
  const keys = [
    revoked.key,
    ...(await createKeys(
      b.entry,
      b.settings,
      Array.from({ length: config.keys - 1 }, () => body),
    )),
  ];
  log(`run ${run + 1}: ${id}: ${config.keys} keys, limit ${limit} per ${config.windowSeconds} s (offered ${offeredPerWindow}), sending`);
  /** @type {{ answer?: { sentAt: number, answeredAt: number, status: number } }} */
  const revoking = {};
  const combos = config.keys * ROUTES.length;
  const result = await counted(b, `r${run}:${id}`, (tag) =>
    offer(
      b.urls,
      tag,
      (_, isolate, j) => {
        // Each isolate goes through every key and route in turn (offset per isolate), from one client address per key.
        const combo = (j + isolate * 7) % combos;
        const key = combo % config.keys;
        return {
          key,
          path: /** @type {string} */ (ROUTES[Math.floor(combo / config.keys)]),
          headers: { Authorization: `Bearer ${keys[key]}`, "CF-Connecting-IP": `10.${run % 256}.${isolate}.${key}` },
        };
      },
      async (started) => {
        await sleep(started + config.caseSeconds * config.slowdown * config.revokeAt * 1000 - Date.now());
        revoking.answer = await timed(`${b.urls[0]}/admin/v1/keys/${revoked.id}/revoke`, {
          method: "POST",
          headers: { Authorization: `Bearer ${b.settings.ADMIN_TOKEN}`, "CF-Connecting-IP": "10.255.0.1" },
        });
      },
    ),
  );
  const revoke = revoking.answer;
  if (!revoke) throw new Error("the revoke was not sent");
  const returned = revoke.answeredAt;
  let afterRevoke = result.span.sent.filter((r) => r.key === 0 && r.sentAt >= returned);
  // On a loaded machine the revoke can return after the case's last call with its key: the
  // key is then tried once on each isolate (after the case's counts were read, so they are
  // not in them, and with time for their usage records to flush before the next case's
  // counts start), and "nothing admitted after the revoke" is never judged on nothing.
  if (afterRevoke.length === 0) {
    const probes = b.urls.map((url, isolate) =>
      timed(`${url}${ROUTES[0]}`, {
        headers: { Authorization: `Bearer ${keys[0]}`, "CF-Connecting-IP": `10.${run % 256}.${isolate}.0` },
      }).then((r) => ({ isolate, key: 0, ...r })),
    );
    afterRevoke = await Promise.all(probes);
    await sleep(settleMs);
  }
  const guards = objectsOf(result.objects, "ACCOUNT_GUARD", result.span);
  const guard = guards.find((o) => o.name === `zappway:${account}`) ?? guards[0];
  const usage = objectsOf(result.objects, "USAGE_LOG", result.span).find((o) => o.name === `zappway:${account}`);
  const { span: _, objects: __, ...rest } = result;
  return {
    id,
    share: load,
    limit,
    windowSeconds: config.windowSeconds,
    ...rest,
    hotGuard: guard ?? null,
    hotUsageLog: usage ?? null,
    bytes: { guard: await sizeOf(b, "ACCOUNT_GUARD", `zappway:${account}`), usageLog: await sizeOf(b, "USAGE_LOG", `zappway:${account}`) },
    exactness: judgeWindow(result.span.sent, limit, config.windowSeconds * 1000),
    revoke: {
      status: revoke.status,
      // Real ms (this machine's work in full, and zgate's waits slowed down), and on zgate's clock.
      returnMs: round((revoke.answeredAt - revoke.sentAt) * config.slowdown, 0),
      returnZgateMs: round(revoke.answeredAt - revoke.sentAt, 0),
      sentAfter: afterRevoke.length,
      admittedAfter: afterRevoke.filter((r) => r.status === 200).length,
      statusesAfter: statusCounts(afterRevoke),
    },
  };
}

/**
 * Many accounts of one key each, every isolate serving every account: each isolate's
 * flush appends to every account's usage log at once.
 * @param {Bench} b
 * @param {number} run
 */
async function manyAccounts(b, run) {
  const accounts = Array.from({ length: config.accounts }, (_, a) => `scale_r${run}_acct${a}`);
  const keys = await createKeys(
    b.entry,
    b.settings,
    accounts.map((account) => ({
      product: "zappway",
      account,
      limit_override: { windows: { plan_rate: { limit: 1_000_000, window_seconds: 60 } } },
    })),
  );
  log(`run ${run + 1}: ${config.accounts} accounts made, sending`);
  const result = await counted(b, `r${run}:accounts`, (tag) =>
    offer(b.urls, tag, (_, isolate, j) => {
      // Each isolate goes through every account in turn.
      const a = (j + isolate * 7) % config.accounts;
      // Two client addresses per account.
      return {
        key: a,
        path: /** @type {string} */ (ROUTES[j % ROUTES.length]),
        headers: {
          Authorization: `Bearer ${keys[a]}`,
          "CF-Connecting-IP": `10.${200 + (run % 50)}.${Math.floor(a / 128)}.${(a % 128) * 2 + (Math.floor(j / config.accounts) % 2)}`,
        },
      };
    }),
  );
  const logs = objectsOf(result.objects, "USAGE_LOG", result.span);
  const indexes = objectsOf(result.objects, "USAGE_ADDRESSES", result.span);
  const guards = objectsOf(result.objects, "ACCOUNT_GUARD", result.span);
  const { span: _, objects: __, ...rest } = result;
  /** @param {ReturnType<typeof objectsOf>} xs */
  const busiest = (xs) => (xs[0] ? { name: xs[0].name, mean: xs[0].mean, max: Math.max(...xs.map((x) => x.max)) } : null);
  return {
    id: "accounts",
    accounts: config.accounts,
    ...rest,
    usageLogs: {
      objects: logs.length,
      busiest: busiest(logs),
      meanPerObject: round(logs.reduce((t, o) => t + o.mean, 0) / Math.max(1, logs.length), 2),
    },
    addressIndexes: {
      objects: indexes.length,
      busiest: busiest(indexes),
      perObject: indexes.map((o) => ({ name: o.name, mean: o.mean, max: o.max })),
    },
    guards: { objects: guards.length, busiest: busiest(guards) },
    bytes: {
      usageLog: await sizeOf(b, "USAGE_LOG", `zappway:${accounts[0]}`),
      guard: await sizeOf(b, "ACCOUNT_GUARD", `zappway:${accounts[0]}`),
      addressIndexes: (await Promise.all(indexes.map((o) => (o.name ? sizeOf(b, "USAGE_ADDRESSES", o.name) : 0)))).reduce(
        (a, x) => a + x,
        0,
      ),
    },
    // What every isolate's flush sent at once: the most appends any second saw, over all usage logs.
    appendsPeakSecond: peakSecond(result.objects, "USAGE_LOG"),
  };
}

/**
 * The most calls one second saw across every object of a binding.
 * @param {Record<string, ObjectCounts>} objects
 * @param {string} binding
 */
function peakSecond(objects, binding) {
  /** @type {Record<string, number>} */
  const bySecond = {};
  for (const o of Object.values(objects))
    if (o.binding === binding) for (const [s, n] of Object.entries(o.bySecond)) bySecond[s] = (bySecond[s] ?? 0) + n;
  return Math.max(0, ...Object.values(bySecond));
}

// ---------------------------------------------------------------- summary

/** @typedef {Awaited<ReturnType<typeof hotAccount>>} HotCase */
/** @typedef {Awaited<ReturnType<typeof manyAccounts>>} AccountsCase */

/**
 * The hot account's figures at one load over runs, multiplied out to TARGET.isolates: its
 * guard's calls per second grow with the isolates that send it calls (each isolate's calls
 * for the account are its own: its leases, its refusals, its flushes).
 * @param {HotCase[]} at
 */
function summarizeHot(at) {
  const isolates = config.isolates;
  const perIsolate = at.map((c) => (c.hotGuard ? c.hotGuard.mean / isolates : null));
  const atTarget = perIsolate.map((x) => (x === null ? null : x * TARGET.isolates));
  const usagePerIsolate = at.map((c) => (c.hotUsageLog ? c.hotUsageLog.mean / isolates : null));
  return {
    share: at[0]?.share ?? null,
    guardCallsPerSecond: spread(at.map((c) => c.hotGuard?.mean ?? null)),
    guardCallsPerSecondMax: spread(at.map((c) => c.hotGuard?.max ?? null)),
    guardBusyShare: spread(
      at.map((c) => c.hotGuard?.busyShare ?? null),
      3,
    ),
    // Real ms a call to it was under way (queueing in this machine's one workerd thread included): an upper bound on its active time.
    guardActiveMsPerCall: spread(
      at.map((c) => c.hotGuard?.activeMsPerCall ?? null),
      2,
    ),
    guardCallsPerRequest: spread(
      at.map((c) => c.perRequest.guardCalls),
      3,
    ),
    guardCallsPerIsolatePerSecond: spread(perIsolate),
    atTargetIsolates: spread(atTarget, 0),
    withinTarget: atTarget.every((x) => x !== null && x <= TARGET.callsPerObject),
    usageAppendsPerIsolatePerSecond: spread(usagePerIsolate, 3),
    exactnessHeld: at.every((c) => c.exactness.held),
    mostInOneWindow: Math.max(...at.map((c) => c.exactness.mostInOneWindow)),
    // Over the revokes that returned 200 (one that failed revoked nothing: what its key sent after it is no breach).
    revokeReturnMs: spread(at.map((c) => (c.revoke.status === 200 ? c.revoke.returnMs : null))),
    admittedAfterRevoke: Math.max(0, ...at.filter((c) => c.revoke.status === 200).map((c) => c.revoke.admittedAfter)),
    revokesFailed: at.filter((c) => c.revoke.status !== 200).map((c) => c.revoke.status),
  };
}

// ---------------------------------------------------------------- report

/** @param {number | null | undefined} x @param {number} [digits] */
const n = (x, digits = 0) => (x === null || x === undefined ? "-" : x.toFixed(digits));
/** A figure over runs: the median, and the runs' range where they differ. @param {Spread} s @param {number} [digits] */
const ranged = (s, digits = 0) =>
  s.range[0] === s.range[1] ? n(s.median, digits) : `${n(s.median, digits)} [${n(s.range[0], digits)}-${n(s.range[1], digits)}]`;
/** @param {Record<string, number>} statuses */
const statusText = (statuses) =>
  Object.entries(statuses)
    .map(([s, k]) => `${k} x ${s === "0" ? "no answer" : s}`)
    .join(", ");
/** @param {string[]} cells */
const line = (cells) => `| ${cells.join(" | ")} |`;
/** @param {string[]} head @param {string[][]} rows */
const markdownTable = (head, rows) => [line(head), line(head.map(() => "---")), ...rows.map(line)].join("\n");

/** @typedef {ReturnType<typeof results>} ScaleResults */

/** @param {ScaleResults} r */
function hotRows(r) {
  return r.summary.hot.map((h, i) => {
    const cases = r.runs.map((run) => /** @type {HotCase} */ (run.hot[i]));
    const c = /** @type {HotCase} */ (cases[0]);
    const g = c.hotGuard;
    return [
      `${Math.round((h.share ?? 0) * 100)}% (limit ${c.limit} per ${c.windowSeconds} s)`,
      `${n(c.load.offeredRps)} / ${n(c.load.sentRps)} (real ${n(c.load.realSentRps)}, p50 ${n(c.latencyMs.p50)} ms, p99 ${n(c.latencyMs.p99)} ms; load ${c.load.loadAverage.before[0]} -> ${c.load.loadAverage.after[0]})`,
      statusText(c.statuses),
      `${ranged(h.guardCallsPerSecond, 1)} (per second ${n(g?.median)} median, ${n(g?.p90)} p90, ${n(g?.max)} max)`,
      ranged(h.guardCallsPerRequest, 3),
      ranged(h.guardCallsPerIsolatePerSecond, 1),
      `${ranged(h.atTargetIsolates)} (${h.withinTarget ? "within" : "OVER"} ${TARGET.callsPerObject})`,
      `${ranged(h.guardBusyShare, 2)}`,
      `${h.mostInOneWindow} (${h.exactnessHeld ? "held" : "OVERSHOT"})`,
      `${ranged(h.revokeReturnMs)} ms (${n(c.revoke.returnZgateMs)} on zgate's clock), ${h.admittedAfterRevoke} of ${c.revoke.sentAfter} admitted after${h.revokesFailed.length ? `; FAILED: answered ${h.revokesFailed.join(", ")}` : ""}`,
    ];
  });
}
const HOT_HEAD = [
  "hot account: offered share of its limit",
  "offered / sent req/s (zgate's clock)",
  "answers",
  "its guard's calls/s (mean over the case)",
  "guard calls / request",
  "per isolate /s",
  `at ${TARGET.isolates} isolates /s`,
  "share of time a guard call was under way",
  "most admitted in one window (certain)",
  "revoke: returns in, admitted after",
];

/** @param {ScaleResults} r */
function storeRows(r) {
  const first = /** @type {ScaleResults["runs"][number]} */ (r.runs[0]);
  /** @type {[string, HotCase | AccountsCase][]} */
  const cases = [
    ...first.hot.map((c) => /** @type {[string, HotCase]} */ ([`hot account ${Math.round(c.share * 100)}%`, c])),
    ["many accounts", first.accounts],
  ];
  return cases.map(([title, c]) => {
    const p = c.perRequest;
    return [
      title,
      n(p.guardCalls, 3),
      n(p.usageLogCalls, 4),
      n(p.addressIndexCalls, 4),
      n(p.doRowsWrittenGuard, 3),
      n(p.doRowsWrittenUsage, 4),
      n(p.kvReads, 4),
      n(p.kvWrites, 4),
      n(p.d1Statements, 4),
      n(p.r2ClassA, 4),
      n(p.r2ClassB, 4),
      `${c.usageCalls.calls} / ${c.requests}`,
    ];
  });
}
const STORE_HEAD = [
  "case (per request)",
  "guard calls",
  "usage log appends",
  "address index calls",
  "guard rows written",
  "usage rows written",
  "KV reads",
  "KV writes",
  "D1 statements",
  "R2 class A",
  "R2 class B",
  "calls in usage appends / requests",
];

/** @param {ScaleResults} r */
function accountsRows(r) {
  return r.runs.map((run, i) => {
    const a = run.accounts;
    return [
      String(i + 1),
      `${a.accounts} accounts, ${n(a.load.sentRps)} req/s (real ${n(a.load.realSentRps)}, p50 ${n(a.latencyMs.p50)} ms; load ${a.load.loadAverage.before[0]} -> ${a.load.loadAverage.after[0]})`,
      `${a.usageLogs.objects}: ${n(a.usageLogs.meanPerObject, 2)} mean, busiest ${n(a.usageLogs.busiest?.mean, 2)}, peak second ${n(a.usageLogs.busiest?.max)}`,
      `${n(a.appendsPeakSecond)}`,
      `${a.addressIndexes.objects}: busiest ${n(a.addressIndexes.busiest?.mean, 2)} mean, ${n(a.addressIndexes.busiest?.max)} peak second`,
      `${n(a.guards.busiest?.mean, 1)} mean, ${n(a.guards.busiest?.max)} peak second`,
    ];
  });
}
const ACCOUNTS_HEAD = [
  "run",
  "load",
  "usage logs (appends/s per object)",
  "appends in the busiest second, all logs",
  "address indexes (calls/s per object)",
  "busiest guard (calls/s)",
];

/** @param {ScaleResults} r */
function caption(r) {
  const c = r.config;
  return [
    `${c.runs} run(s) of zgate at ${r.commit}, ${c.isolates} isolates x ${c.isolateRps} req/s, ${c.caseSeconds} s a case (per-second figures leave out its first ${c.rampSeconds} s),`,
    `on zgate's clock, which ran ${c.slowdown} times slower than real time (so ${n((c.isolates * c.isolateRps) / c.slowdown)} req/s real);`,
    `hot account of ${c.keys} keys over ${ROUTES.length} routes, window ${c.windowSeconds} s, usage flush ${n(c.flushRealMs / c.slowdown)} ms, guard round trip +${c.delayMs} ms;`,
    `${r.machine.cores} cores, 1-minute load average ${r.machine.loadAverageBefore[0]} -> ${r.machine.loadAverageAfter[0]}.`,
  ].join(" ");
}

/** @param {ScaleResults} r @param {(head: string[], rows: string[][]) => string} draw */
const tables = (r, draw) => [draw(HOT_HEAD, hotRows(r)), "", draw(STORE_HEAD, storeRows(r)), "", draw(ACCOUNTS_HEAD, accountsRows(r))];

/** @param {ScaleResults} r */
const markdown = (r) => [caption(r), "", ...tables(r, markdownTable)].join("\n");

/**
 * @param {{ hot: HotCase[], accounts: AccountsCase }[]} runs
 * @param {number[]} loadBefore
 */
function results(runs, loadBefore) {
  return {
    schema: "zgate-bench-scale/1",
    smoke,
    commit: commitOf(),
    machine: { ...machineInfo(root), loadAverageBefore: loadBefore, loadAverageAfter: loadNow() },
    config: { ...config, flushRealMs, settleMs, routes: ROUTES },
    target: TARGET,
    timing: { totalSeconds: round((performance.now() - startedAt) / 1000, 1) },
    summary: { hot: config.loads.map((_, i) => summarizeHot(runs.map((r) => /** @type {HotCase} */ (r.hot[i])))) },
    runs,
    outFile: outFile.startsWith(root) ? relative(root, outFile) : outFile,
  };
}

/** The commit measured, marked when the tree had changes. */
function commitOf() {
  try {
    const commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root, encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--untracked-files=no", "--", "src"], {
      cwd: root,
      encoding: "utf8",
    }).trim();
    return dirty ? `${commit} (src changed)` : commit;
  } catch {
    return "unknown";
  }
}

// ---------------------------------------------------------------- main

async function main() {
  const loadBefore = loadNow();
  const work = mkdtempSync(join(tmpdir(), "zgate-scale-"));
  track(() => rmSync(work, { recursive: true, force: true }), { dir: work });
  const storage = storageRoot(config.storage);
  track(() => rmSync(storage, { recursive: true, force: true }), { dir: storage });
  log(`${smoke ? "SMOKE " : ""}config ${JSON.stringify(config)}`);

  const scriptPath = await whileBuilding(buildScale(work));
  const origin = await startOrigin();
  track(origin.stop, { pids: [origin.pid] });
  const settings = {
    ...defaultLimitSettings(origin.url, flushRealMs),
    BENCH_CLOCK_T0: String(clockT0),
    BENCH_SLOWDOWN: String(config.slowdown),
  };
  const zgate = await startZgateIsolates({
    scriptPath,
    settings,
    compat: readCompatibility(),
    storage,
    isolates: Array.from({ length: config.isolates }, (_, i) => ({
      name: `i${i}`,
      bindings: { BENCH_DELAY_MS: String(config.delayMs * config.slowdown) },
    })),
  });
  track(zgate.stop, { pids: zgate.pids });
  await applyMigrations(zgate.mf);
  /** @type {Bench} */
  const bench = { urls: Object.values(zgate.urls), hostUrl: zgate.guardHostUrl, entry: zgate.url, settings };
  log(`origin ${origin.url}, isolates ${JSON.stringify(zgate.urls)}`);

  /** @type {{ hot: HotCase[], accounts: AccountsCase }[]} */
  const runs = [];
  for (let run = 0; run < config.runs; run++) {
    /** @type {HotCase[]} */
    const hot = [];
    for (const load of config.loads) hot.push(await hotAccount(bench, run, load));
    runs.push({ hot, accounts: await manyAccounts(bench, run) });
    log(`run ${run + 1}/${config.runs} done, load ${loadNow().join(" ")}`);
  }
  const r = results(runs, loadBefore);
  writeResults(outFile, r);
  console.log(
    [
      "",
      `zgate scale bench${smoke ? "  [SMOKE: figures are not meaningful]" : ""}`,
      caption(r),
      "",
      ...tables(r, table),
      "",
      "Markdown (docs/benchmarks.md):",
      markdown(r),
      "",
      `Took ${r.timing.totalSeconds} s. Results: ${r.outFile}`,
    ].join("\n"),
  );
}

await runBench("bench:scale", main);
