#!/usr/bin/env node
// @ts-check
// `npm run bench:distance`: what a caller pays when its account's guard is far away.
//
// zgate runs unchanged in workerd (Miniflare) inside a bench-only wrapper
// (bench/distance-worker.mjs) whose guard stubs wait D ms before every call (an RPC
// method or fetch): the round trip to a guard in another region. For each D (0, 50 and
// 150 ms by default) two isolates serve the same accounts, bound to one guard namespace
// whose objects live in an isolate of their own (bench/workers.mjs startZgateIsolates);
// request i of every case goes to isolate i mod 2. Every D runs at once, each on subjects
// of its own (bench/distance-cases.mjs), so "added at D" is pX at D minus pX at D = 0 of
// the same run, under the same machine load.
//
// Each kind of traffic of issue 26 is sent at its real rate (it is latency, not
// throughput), at the products' default limits: ZappWay Free keys at 1 and 0.5 req/s, a
// ZakGT key on ai/chat at 0.5 req/s, a ZakGT session at 1 req/s, a public route from one
// address at 1 req/s, ZSky polls every 2 s, ZSky jobs (generate, the poll 2 s later that
// completes, the download), the first request of cold keys, and a high-limit hot key at
// 50 req/s; then an exactness case (a key at 10 per 10 s, sent 5 req/s) and, each under
// load at 50 req/s, an admin revoke, a ZSky rotate and a ZakGT logout (time to return,
// and admissions of requests sent after it returned). Guard calls are counted per request,
// before and after its answer (the wrapper; after = work kept alive by waitUntil).
//
// Environment (defaults: 3 runs of about 2.5 minutes each, all delays at once):
//   BENCH_DISTANCE_RUNS=3             runs (medians and ranges are over runs)
//   BENCH_DISTANCE_DELAYS=0,50,150    guard round trips in ms (0 is always measured: the baseline)
//   BENCH_DISTANCE_REQUESTS=60        requests per case, D and run (cold keys: one request each)
//   BENCH_DISTANCE_HOT_REQUESTS=500   requests of the hot key per D and run
//   BENCH_DISTANCE_EXACT_REQUESTS=100 requests of the exactness case per D and run
//   BENCH_DISTANCE_JOB_KEYS=6         keys running ZSky jobs side by side (one job at a time each)
//   BENCH_DISTANCE_SPEED=1            every rate and pause of the steady cases times this (1: real rates)
//   BENCH_STORAGE=tmpfs               where local KV/D1/R2/DO data lives: tmpfs or disk
//   BENCH_DISTANCE_SMOKE=1            1 run, D = 0 and 50, a few requests at 10x the rates: checks the harness only
//   BENCH_OUT=path                    results file (default bench/results/distance.json; distance-smoke.json in smoke mode)
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { defaultLimitSettings } from "./cost-cases.mjs";
import {
  EXACT_LIMIT,
  JOB_STEPS,
  ZSKY_POLL_GAP_MS,
  addressOf,
  exactnessCase,
  jobKeys,
  jobRequests,
  changeCases,
  steadyCases,
} from "./distance-cases.mjs";
import { judgeWindow, spread, statusCounts } from "./client-figures.mjs";
import { runBench, setting as numberSetting, track, whileBuilding } from "./harness.mjs";
import { median, percentile, round } from "./load.mjs";
import { startOrigin } from "./origin.mjs";
import { machineInfo, table, writeResults } from "./report.mjs";
import { applyMigrations, buildDistance, readCompatibility, root, startZgateIsolates, storageRoot } from "./workers.mjs";

/** @typedef {import("./distance-cases.mjs").Group} Group */
/** @typedef {import("./distance-cases.mjs").BenchRequest} BenchRequest */
/** @typedef {import("./distance-cases.mjs").SteadyCase} SteadyCase */
/** @typedef {import("./distance-cases.mjs").ChangeCase} ChangeCase */
/** @typedef {import("./distance-worker.mjs").CaseCalls} CaseCalls */
/**
 * One request as the client saw it (times in ms of performance.now()).
 * @typedef {{ i: number, sentAt: number, answeredAt: number, ms: number, status: number, body: string }} Sent
 */
/**
 * One case at one D in one run: latency percentiles, answers, guard calls per request.
 * @typedef {{
 *   n: number,
 *   p50: number | null, p90: number | null, p99: number | null,
 *   p90Warm: number | null,
 *   statuses: Record<string, number>,
 *   guardCalls: { before: number, after: number, byMethod: Record<string, { before: number, after: number }> },
 *   slowest: number[][],
 *   others: number[][],
 * }} CaseRun
 */
/**
 * A subject's requests before it is warm: each of the two isolates' first two (the first
 * of a subject in an isolate asks the guard; far from it, so does the second in the
 * isolate the subject reached first, whose first request the guard could tell nothing of
 * its pace). CaseRun `p90Warm` is the p90 of the requests after them.
 */
const COLD_REQUESTS = 4;
/** How many of a case's slowest requests each run names (CaseRun `slowest`). */
const SLOWEST_KEPT = 8;
/** @typedef {import("./client-figures.mjs").Spread} Spread */

const smoke = process.env.BENCH_DISTANCE_SMOKE === "1";
/** @type {(name: string, fallback: number, smokeValue: number) => number} */
const setting = (name, fallback, smokeValue) => numberSetting(name, fallback, smokeValue, smoke);
const config = {
  runs: Math.round(setting("BENCH_DISTANCE_RUNS", 3, 1)),
  delays: delaysSetting(),
  requests: Math.round(setting("BENCH_DISTANCE_REQUESTS", 60, 4)),
  hotRequests: Math.round(setting("BENCH_DISTANCE_HOT_REQUESTS", 500, 20)),
  exactRequests: Math.round(setting("BENCH_DISTANCE_EXACT_REQUESTS", 100, 10)),
  jobKeys: Math.round(setting("BENCH_DISTANCE_JOB_KEYS", 6, 2)),
  speed: setting("BENCH_DISTANCE_SPEED", 1, 10),
  // The load under a revoke, rotate or logout: 50 req/s, for this long before the change and after it returned.
  changeLoadIntervalMs: 20,
  changeLeadMs: smoke ? 200 : 2_000,
  changeTailMs: smoke ? 200 : 1_500,
  storage: /** @type {"disk" | "tmpfs"} */ (process.env.BENCH_STORAGE === "disk" ? "disk" : "tmpfs"),
};
const outFile = resolve(process.env.BENCH_OUT || join(root, "bench", "results", smoke ? "distance-smoke.json" : "distance.json"));

/** BENCH_DISTANCE_DELAYS: round trips in ms, ascending, 0 always among them. */
function delaysSetting() {
  const raw = process.env.BENCH_DISTANCE_DELAYS || (smoke ? "0,50" : "0,50,150");
  const delays = raw.split(",").map((s) => Number(s.trim()));
  if (delays.some((d) => !Number.isInteger(d) || d < 0)) throw new Error(`BENCH_DISTANCE_DELAYS must be whole ms, got "${raw}"`);
  return [...new Set([0, ...delays])].sort((a, b) => a - b);
}

/**
 * The parts that run one D at a time (oneRun), at real speed: the first starts 5 s after
 * the low-rate cases, each next one 2 s after the last ended; the low-rate cases at 0.5
 * req/s run about as long as all of them.
 */
const SCHEDULE = { firstMs: 5_000, gapMs: 2_000 };
/** After a run, time for the work each request left running (lease refunds, settlements) before its calls are read. */
const SETTLE_MS = 2_000;
/** Every case's title, by id, as distance-cases.mjs names them (filled as runs prepare their cases). */
/** @type {Record<string, string>} */
const titles = Object.fromEntries(Object.values(JOB_STEPS).map((s) => [s.id, s.title]));
/** The order cases are reported in (distance-cases.mjs: the low-rate ones, the ZSky job's steps, the hot key, exactness). */
/** @type {string[]} */
const caseOrder = [];

const startedAt = performance.now();
/** @param {string} msg */
const log = (msg) => console.log(`[${((performance.now() - startedAt) / 1000).toFixed(0).padStart(4)}s] ${msg}`);
/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
/** @param {number} ms */
const scaled = (ms) => ms / config.speed;

// ---------------------------------------------------------------- sending

/**
 * The tag a request carries (X-Bench-Case): its run, D and case, under which the wrapper counts its guard calls.
 * @param {Group} g
 * @param {string} caseId
 */
const tagOf = (g, caseId) => `r${g.run}:d${g.delayMs}:${caseId}`;

/**
 * Sends request `i` of a case to isolate i mod 2 of its group, with the client address
 * Cloudflare would add, and times it to the end of its body.
 * @param {Group} g
 * @param {string} caseId
 * @param {number} i
 * @param {BenchRequest} req
 * @returns {Promise<Sent>}
 */
async function send(g, caseId, i, req) {
  const headers = { "CF-Connecting-IP": addressOf(g, 0), ...req.headers, "X-Bench-Case": tagOf(g, caseId) };
  const sentAt = performance.now();
  try {
    const response = await fetch(`${g.urls[i % g.urls.length]}${req.path}`, { method: req.method ?? "GET", headers, body: req.body });
    const body = await response.text();
    const answeredAt = performance.now();
    return { i, sentAt, answeredAt, ms: answeredAt - sentAt, status: response.status, body };
  } catch (err) {
    const answeredAt = performance.now();
    return { i, sentAt, answeredAt, ms: answeredAt - sentAt, status: 0, body: String(err) };
  }
}

/**
 * A steady case: request i sent at offsetMs + i * intervalMs, whatever the answers before it took.
 * @param {Group} g
 * @param {SteadyCase} c
 */
async function steady(g, c, offsetMs = 0) {
  const started = performance.now() + offsetMs;
  /** @type {Promise<Sent>[]} */
  const pending = [];
  for (let i = 0; i < c.count; i++) {
    const wait = started + i * c.intervalMs - performance.now();
    if (wait > 0) await sleep(wait);
    pending.push(send(g, c.id, i, c.request(i)));
  }
  return Promise.all(pending);
}

/**
 * ZSky jobs as the reference client runs them, `count` in all over `keys` side by side:
 * generate, the poll 2 s later (the job completes at its first poll), the download of the
 * result it links. Each step is a case of its own (JOB_STEPS).
 * @param {Group} g
 * @param {string[]} keys
 * @param {number} count
 * @returns {Promise<Record<string, Sent[]>>}
 */
async function jobs(g, keys, count) {
  const { generate, poll, download } = JOB_STEPS;
  /** @type {Record<string, Sent[]>} */
  const steps = { [generate.id]: [], [poll.id]: [], [download.id]: [] };
  /** @param {{ id: string }} step @param {BenchRequest} req */
  const take = async (step, req) => {
    const done = (steps[step.id] ??= []);
    const sent = await send(g, step.id, done.length, req);
    done.push(sent);
    return sent;
  };
  let started = 0;
  await Promise.all(
    keys.map(async (key, k) => {
      await sleep(scaled((k * ZSKY_POLL_GAP_MS) / keys.length)); // the clients' polls spread over the 2 s
      while (started < count) {
        started++;
        const submitted = await take(generate, jobRequests.generate(key));
        if (submitted.status !== 200) continue;
        await sleep(scaled(ZSKY_POLL_GAP_MS));
        const polled = await take(poll, jobRequests.poll(key, JSON.parse(submitted.body).job_id));
        const resultUrl = polled.status === 200 ? JSON.parse(polled.body).result_url : undefined;
        if (typeof resultUrl === "string") await take(download, jobRequests.download(resultUrl));
      }
    }),
  );
  return steps;
}

/**
 * A change under load: the credential's requests at 50 req/s; after a lead, the change
 * (through the group's first isolate); the load goes on until a while after the change
 * returned. Every request of the load sent after that must be refused.
 * @param {Group} g
 * @param {ChangeCase} m
 */
async function underLoad(g, m) {
  let stop = false;
  const started = performance.now();
  const load = (async () => {
    /** @type {Promise<Sent>[]} */
    const pending = [];
    for (let i = 0; !stop; i++) {
      const wait = started + i * config.changeLoadIntervalMs - performance.now();
      if (wait > 0) await sleep(wait);
      if (!stop) pending.push(send(g, `${m.id}_load`, i, m.load(i)));
    }
    return Promise.all(pending);
  })();
  await sleep(config.changeLeadMs);
  const change = await send(g, m.id, 0, m.change());
  await sleep(config.changeTailMs);
  stop = true;
  const sent = await load;
  const after = sent.filter((r) => r.sentAt >= change.answeredAt);
  return {
    status: change.status,
    returnMs: round(change.ms, 1),
    loadRequests: sent.length,
    loadStatuses: statusCounts(sent),
    sentAfter: after.length,
    // The guarantee: nothing sent after the change returned is admitted.
    admittedAfter: after.filter((r) => r.status === 200).length,
    // Admitted before the change returned, answered after it (not a breach; shown for reading).
    answeredOkAfter: sent.filter((r) => r.answeredAt > change.answeredAt && r.sentAt < change.answeredAt && r.status === 200).length,
  };
}

// ---------------------------------------------------------------- one run

/**
 * One run of every case at every D. The low-rate cases and the ZSky jobs of every D run at
 * once, their starts spread over a second so their requests do not arrive together;
 * meanwhile the hot key, the exactness case and the changes under load run one D at a
 * time (at 50 req/s each, all D at once would load the isolates' one workerd thread and
 * measure its queue). Returns, per D, each case's requests and the exactness and change results.
 * @param {number} run
 * @param {Record<string, string>} urls the isolates' direct URLs, by name
 * @param {string} entry
 * @param {Group["settings"]} settings
 */
async function oneRun(run, urls, entry, settings) {
  const prepared = await Promise.all(groupsOf(run, urls, entry, settings).map(prepare));
  for (const p of prepared) for (const c of [...p.steady, p.exact, ...p.changes]) titles[c.id] = c.title;
  if (caseOrder.length === 0 && prepared[0]) {
    const { steady: cases, hot, exact } = prepared[0];
    caseOrder.push(...cases.filter((c) => c !== hot).map((c) => c.id), ...Object.values(JOB_STEPS).map((s) => s.id), hot.id, exact.id);
  }
  log(`run ${run + 1}/${config.runs}: credentials made, sending`);
  /** @type {Record<number, Record<string, Sent[]>>} */
  const sent = {};
  /** @type {Record<number, Record<string, Awaited<ReturnType<typeof underLoad>>>>} */
  const changes = {};
  /** @param {Group} g @param {string} id @param {Sent[]} requests */
  const keep = (g, id, requests) => ((sent[g.delayMs] ??= {})[id] = requests);
  const low = prepared.flatMap((p, d) => p.steady.filter((c) => c !== p.hot).map((c, k) => ({ g: p.g, c, slot: k * prepared.length + d })));
  const slots = low.length + prepared.length;
  const lowRate = Promise.all([
    ...low.map(async ({ g, c, slot }) => keep(g, c.id, await steady(g, c, scaled((slot * 1000) / slots)))),
    ...prepared.map(async (p, d) => {
      await sleep(scaled(((low.length + d) * 1000) / slots));
      for (const [id, requests] of Object.entries(await jobs(p.g, p.jobKeys, config.requests))) keep(p.g, id, requests);
    }),
  ]);
  const oneAtATime = (async () => {
    await sleep(scaled(SCHEDULE.firstMs));
    for (const p of prepared) {
      keep(p.g, p.hot.id, await steady(p.g, p.hot));
      await sleep(scaled(SCHEDULE.gapMs));
    }
    await Promise.all(
      prepared.map(async (p, d) => keep(p.g, p.exact.id, await steady(p.g, p.exact, (d * p.exact.intervalMs) / prepared.length))),
    );
    for (const [i, m] of (prepared[0]?.changes ?? []).entries()) {
      for (const p of prepared) {
        await sleep(scaled(SCHEDULE.gapMs));
        (changes[p.g.delayMs] ??= {})[m.id] = await underLoad(p.g, /** @type {ChangeCase} */ (p.changes[i]));
      }
    }
  })();
  await Promise.all([lowRate, oneAtATime]);
  await sleep(SETTLE_MS);
  const calls = await readCalls(urls);
  /** @type {number[]} */
  const roundTrips = [];
  for (const { g } of prepared) roundTrips.push(await roundTrip(g));
  return prepared.map(({ g }, d) => {
    const mine = sent[g.delayMs] ?? {};
    /** @type {Record<string, CaseRun>} */
    const cases = {};
    for (const id of caseOrder) if (mine[id]) cases[id] = caseRun(mine[id], calls[tagOf(g, id)]);
    // The guard calls each change made on its way to its answer (the load's are its requests' own).
    const made = Object.entries(changes[g.delayMs] ?? {}).map(([id, c]) => {
      const own = calls[tagOf(g, id)];
      const byMethod = Object.fromEntries(Object.entries(own?.byMethod ?? {}).map(([method, k]) => [method, k.before]));
      return [id, { ...c, guardCalls: own?.before ?? 0, guardCallsByMethod: byMethod }];
    });
    return {
      delayMs: g.delayMs,
      roundTripMs: roundTrips[d] ?? null,
      cases,
      exactness: judgeExactness(mine.exactness ?? []),
      changes: Object.fromEntries(made),
    };
  });
}

/**
 * An isolate's first requests of a kind compile zgate's code for it: before the first run,
 * every isolate serves a few requests of every case and change, on subjects no run uses.
 * @param {Record<string, string>} urls
 * @param {string} entry
 * @param {Group["settings"]} settings
 */
async function warmUp(urls, entry, settings) {
  await Promise.all(
    groupsOf(config.runs, urls, entry, settings).map(async (g) => {
      const cases = await steadyCases(g, { requests: 6, hotRequests: 20, speed: 10 });
      await Promise.all(cases.map((c) => steady(g, c)));
      await jobs(g, await jobKeys(g, 2), 2);
      for (const m of await changeCases(g)) for (const i of [0, 1]) await send(g, m.id, i, i === 0 ? m.change() : m.load(i));
    }),
  );
}

/**
 * The groups of a run: one per D, each with its two isolates.
 * @param {number} run
 * @param {Record<string, string>} urls
 * @param {string} entry
 * @param {Group["settings"]} settings
 * @returns {Group[]}
 */
function groupsOf(run, urls, entry, settings) {
  return config.delays.map((delayMs) => ({ run, delayMs, urls: [0, 1].map((i) => `${urls[isolateName(delayMs, i)]}`), entry, settings }));
}

/**
 * A group's cases, with the credentials they need.
 * @param {Group} g
 */
async function prepare(g) {
  const steadyOnes = await steadyCases(g, config);
  const hot = steadyOnes.find((c) => c.id === "hot_key");
  if (!hot) throw new Error("distance-cases.mjs has no hot_key case");
  return {
    g,
    steady: steadyOnes,
    hot,
    exact: await exactnessCase(g, { requests: config.exactRequests, speed: config.speed }),
    jobKeys: await jobKeys(g, config.jobKeys),
    changes: await changeCases(g),
  };
}

/** Guard calls a round-trip probe makes one after the other, and probes per isolate. */
const PROBE = { calls: 5, times: 3 };

/**
 * The guard round trip a group's isolates meet, probed through the wrapper from outside
 * (workerd's clock does not move while a Worker waits): a request that makes PROBE.calls
 * guard calls one after the other, less one that makes none, over PROBE.calls; the
 * median over both isolates' probes, in ms. The probe's guard is started first.
 * @param {Group} g
 */
async function roundTrip(g) {
  /** @param {string} url @param {number} calls */
  const timed = async (url, calls) => {
    const started = performance.now();
    const response = await fetch(`${url}/__bench/round-trip?calls=${calls}`);
    await response.arrayBuffer();
    if (response.status !== 204) throw new Error(`probing the guard round trip: ${response.status}`);
    return performance.now() - started;
  };
  /** @type {number[]} */
  const trips = [];
  for (const url of g.urls) {
    await timed(url, 1);
    for (let i = 0; i < PROBE.times; i++) trips.push(((await timed(url, PROBE.calls)) - (await timed(url, 0))) / PROBE.calls);
  }
  return round(median(trips), 1);
}

/**
 * The guard calls every isolate counted, summed by case tag.
 * @param {Record<string, string>} urls
 * @returns {Promise<Record<string, CaseCalls>>}
 */
async function readCalls(urls) {
  /** @type {Record<string, CaseCalls>} */
  const sum = {};
  for (const url of Object.values(urls)) {
    const response = await fetch(`${url}/__bench/calls`);
    if (!response.ok) throw new Error(`reading the guard calls: ${response.status} ${await response.text()}`);
    /** @type {Record<string, CaseCalls>} */
    const counts = await response.json();
    for (const [tag, c] of Object.entries(counts)) {
      const into = (sum[tag] ??= { requests: 0, before: 0, after: 0, byMethod: {} });
      into.requests += c.requests;
      into.before += c.before;
      into.after += c.after;
      for (const [method, n] of Object.entries(c.byMethod)) {
        const m = (into.byMethod[method] ??= { before: 0, after: 0 });
        m.before += n.before;
        m.after += n.after;
      }
    }
  }
  return sum;
}

/**
 * @param {Sent[]} sent
 * @param {CaseCalls | undefined} calls
 * @returns {CaseRun}
 */
function caseRun(sent, calls) {
  const sorted = Float64Array.from(sent.map((r) => r.ms)).sort();
  const per = (/** @type {number} */ x) => (sent.length ? round(x / sent.length, 3) : 0);
  /** @type {CaseRun["guardCalls"]["byMethod"]} */
  const byMethod = {};
  for (const [method, n] of Object.entries(calls?.byMethod ?? {})) byMethod[method] = { before: per(n.before), after: per(n.after) };
  return {
    n: sent.length,
    p50: round(percentile(sorted, 50), 1),
    p90: round(percentile(sorted, 90), 1),
    p99: round(percentile(sorted, 99), 1),
    p90Warm: round(percentile(Float64Array.from(sent.filter((r) => r.i >= COLD_REQUESTS).map((r) => r.ms)).sort(), 90), 1),
    statuses: statusCounts(sent),
    guardCalls: { before: per(calls?.before ?? 0), after: per(calls?.after ?? 0), byMethod },
    // Which requests waited (the first of a subject in each isolate, or a later one?): [request i, ms, status].
    slowest: [...sent]
      .sort((a, b) => b.ms - a.ms)
      .slice(0, SLOWEST_KEPT)
      .map((r) => [r.i, round(r.ms, 1), r.status]),
    // Which requests were answered other than 200 (at exactly a limit: the ones meeting a full window): [request i, ms, status].
    others: sent.filter((r) => r.status !== 200).map((r) => [r.i, round(r.ms, 1), r.status]),
  };
}

/**
 * The exactness case, judged from the client's side (client-figures.mjs judgeWindow).
 * @param {Sent[]} sent
 */
const judgeExactness = (sent) => judgeWindow(sent, EXACT_LIMIT.limit, EXACT_LIMIT.windowSeconds * 1000);

// ---------------------------------------------------------------- summary

/** @param {number} delayMs @param {number} i */
const isolateName = (delayMs, i) => `d${delayMs}-${i}`;

/** @param {Record<string, number>[]} counts */
function sumCounts(counts) {
  /** @type {Record<string, number>} */
  const out = {};
  for (const c of counts) for (const [k, n] of Object.entries(c)) out[k] = (out[k] ?? 0) + n;
  return out;
}

/** @typedef {Awaited<ReturnType<typeof oneRun>>} RunResult */

/**
 * A figure for every D, by D.
 * @template T
 * @param {(delayMs: number) => T} figure
 * @returns {Record<number, T>}
 */
const perDelay = (figure) => Object.fromEntries(config.delays.map((d) => [d, figure(d)]));

/**
 * The figure of one D (every D has one: perDelay).
 * @template T
 * @param {Record<number, T>} byDelay
 * @param {number} delayMs
 * @returns {T}
 */
function atDelay(byDelay, delayMs) {
  const figure = byDelay[delayMs];
  if (figure === undefined) throw new Error(`no figure at D = ${delayMs}`);
  return figure;
}

/**
 * Per case and D: medians over runs of the percentiles and of what each adds over D = 0
 * in its own run, with their ranges; guard calls per request, before and after the answer.
 * @param {string} id
 * @param {string} title
 * @param {RunResult[]} runs
 */
function summarizeCase(id, title, runs) {
  const base = runs.map((r) => r.find((d) => d.delayMs === 0)?.cases[id]);
  const byDelay = perDelay((delayMs) => {
    const at = runs.map((r) => r.find((d) => d.delayMs === delayMs)?.cases[id]);
    /** @param {"p50" | "p90" | "p99" | "p90Warm"} p */
    const added = (p) =>
      spread(
        at.map((c, i) => {
          const [far, near] = [c?.[p], base[i]?.[p]];
          return typeof far === "number" && typeof near === "number" ? far - near : null;
        }),
      );
    return {
      p50: spread(at.map((c) => c?.p50 ?? null)),
      p90: spread(at.map((c) => c?.p90 ?? null)),
      p99: spread(at.map((c) => c?.p99 ?? null)),
      added: delayMs > 0 ? { p50: added("p50"), p90: added("p90"), p99: added("p99"), p90Warm: added("p90Warm") } : null,
      guardCallsBefore: spread(
        at.map((c) => c?.guardCalls.before ?? null),
        3,
      ),
      guardCallsAfter: spread(
        at.map((c) => c?.guardCalls.after ?? null),
        3,
      ),
      requests: at.reduce((n, c) => n + (c?.n ?? 0), 0),
      statuses: sumCounts(at.map((c) => c?.statuses ?? {})),
    };
  });
  return { id, title, byDelay, runs: runs.map((r, run) => ({ run, byDelay: Object.fromEntries(r.map((d) => [d.delayMs, d.cases[id]])) })) };
}

/** @param {RunResult[]} runs */
function summarizeExactness(runs) {
  const byDelay = perDelay((delayMs) => {
    const at = runs.flatMap((r) => r.filter((d) => d.delayMs === delayMs).map((d) => d.exactness));
    return {
      held: at.every((e) => e.held),
      mostInOneWindow: Math.max(...at.map((e) => e.mostInOneWindow)),
      admitted: spread(at.map((e) => e.admitted)),
      exactAdmits: spread(at.map((e) => e.exactAdmits)),
      runs: at,
    };
  });
  return { limit: EXACT_LIMIT.limit, windowSeconds: EXACT_LIMIT.windowSeconds, byDelay };
}

/**
 * @param {{ id: string, title: string }[]} changes
 * @param {RunResult[]} runs
 */
function summarizeChanges(changes, runs) {
  return changes.map(({ id, title }) => {
    const byDelay = perDelay((delayMs) => {
      const at = runs.flatMap((r) => r.filter((d) => d.delayMs === delayMs).flatMap((d) => d.changes[id] ?? []));
      return {
        returnMs: spread(at.map((c) => c.returnMs)),
        guardCalls: spread(at.map((c) => c.guardCalls)),
        // The guarantee, over every run: requests sent after the change returned and admitted.
        admittedAfter: Math.max(...at.map((c) => c.admittedAfter)),
        sentAfter: spread(at.map((c) => c.sentAfter)),
        answeredOkAfter: spread(at.map((c) => c.answeredOkAfter)),
        statuses: sumCounts(at.map((c) => ({ [c.status]: 1 }))),
        runs: at,
      };
    });
    return { id, title, byDelay };
  });
}

// ---------------------------------------------------------------- report

/**
 * What bench/results/distance.json holds (schema "zgate-bench-distance/1").
 * @typedef {{
 *   schema: string,
 *   smoke: boolean,
 *   machine: ReturnType<typeof machineInfo> & {
 *     loadAverageBefore: number[], loadAverageAfter: number[], loadAverageByRun: { before: number[], after: number[] }[],
 *   },
 *   config: typeof config,
 *   timing: { totalSeconds: number, runSeconds: number[] },
 *   cases: ReturnType<typeof summarizeCase>[],
 *   roundTripMs: Record<number, Spread>,
 *   exactness: ReturnType<typeof summarizeExactness>,
 *   changes: ReturnType<typeof summarizeChanges>,
 *   outFile: string,
 * }} DistanceResults
 */

/** @param {number | null | undefined} x @param {number} [digits] */
const n = (x, digits = 0) => (x === null || x === undefined ? "-" : x.toFixed(digits));
/** @param {number | null | undefined} x */
const signed = (x) => (x === null || x === undefined ? "-" : `${x >= 0 ? "+" : ""}${x.toFixed(0)}`);
/** A figure added over D = 0: its median over runs [lowest..highest run]. @param {Spread} s */
const addedRange = (s) => `${signed(s.median)} [${signed(s.range[0])}..${signed(s.range[1])}]`;
/** @param {Spread} s */
const msRange = (s) => `${n(s.median)} [${n(s.range[0])}-${n(s.range[1])}]`;
/** Guard calls per request: the median over runs, and the runs' range where they differ. @param {Spread} s */
const callsRange = (s) => (s.range[0] === s.range[1] ? n(s.median, 2) : `${n(s.median, 2)} [${n(s.range[0], 2)}-${n(s.range[1], 2)}]`);
/** @param {string[]} cells */
const line = (cells) => `| ${cells.join(" | ")} |`;
/** @param {string[]} head @param {string[][]} rows */
const markdownTable = (head, rows) => [line(head), line(head.map(() => "---")), ...rows.map(line)].join("\n");

/** The columns of latencyRows() at a far D. @param {number} d */
const latencyHead = (d) => [
  "case",
  "p50 at D = 0 (ms)",
  `added p50 at D = ${d}`,
  `added p90 at D = ${d}`,
  `added p99 at D = ${d}`,
  `added p90 after each isolate's first two`,
  "guard calls / request before the answer",
  "after it",
  "answers other than 200",
];

/**
 * One row per case at a far D: p50 at D = 0; what D adds to p50, p90 and p99 over D = 0
 * of the same run (median over runs [lowest..highest run]); guard calls per request made
 * before the answer and after it (waitUntil); the answers at this D that were not 200.
 * @param {DistanceResults} results
 * @param {number} d
 */
function latencyRows(results, d) {
  return results.cases.map((c) => {
    const at = atDelay(c.byDelay, d);
    const added = at.added;
    const others = Object.entries(at.statuses)
      .filter(([status]) => status !== "200")
      .map(([status, count]) => `${count} x ${status}`);
    return [
      c.title,
      n(atDelay(c.byDelay, 0).p50.median, 1),
      added ? addedRange(added.p50) : "-",
      added ? addedRange(added.p90) : "-",
      added ? addedRange(added.p99) : "-",
      added ? addedRange(added.p90Warm) : "-",
      callsRange(at.guardCallsBefore),
      callsRange(at.guardCallsAfter),
      others.length ? others.join(", ") : "none",
    ];
  });
}

/**
 * One row per change and D: when it returned (median [runs], ms), the guard calls it made
 * on its way, the load's requests sent after it returned (median) and, over every run,
 * how many of those were admitted.
 * @param {DistanceResults} results
 */
function changeRows(results) {
  return results.changes.flatMap((c) =>
    results.config.delays.map((d) => {
      const at = atDelay(c.byDelay, d);
      return [c.title, String(d), msRange(at.returnMs), n(at.guardCalls.median), n(at.sentAfter.median), String(at.admittedAfter)];
    }),
  );
}
const CHANGE_HEAD = [
  "change under load (50 req/s)",
  "D (ms)",
  "returns in (ms)",
  "its guard calls",
  "load requests sent after it returned",
  "of those admitted (all runs)",
];

/** @param {DistanceResults} results */
function exactnessRows(results) {
  const e = results.exactness;
  return results.config.delays.map((d) => {
    const at = atDelay(e.byDelay, d);
    return [
      String(d),
      `${at.mostInOneWindow} (${at.held ? "held" : "OVERSHOT"})`,
      `${n(at.admitted.median)} / ${n(at.exactAdmits.median)}`,
    ];
  });
}
/** @param {DistanceResults} results */
const exactnessHead = (results) => [
  "D (ms)",
  `most admitted in one ${results.exactness.windowSeconds} s window, all runs (limit ${results.exactness.limit})`,
  "admitted / an exact limiter's (medians)",
];

/** The run count, D, the round trip probed at each D and each run's load average, for a table's caption. @param {DistanceResults} results */
function caption(results) {
  const { config: cfg, machine } = results;
  const loads = machine.loadAverageByRun.map((l, i) => `run ${i + 1}: ${l.before[0]} -> ${l.after[0]}`).join(", ");
  const trips = cfg.delays.map((d) => `${n(atDelay(results.roundTripMs, d).median, 1)} at D = ${d}`).join(", ");
  return [
    `${cfg.runs} run(s), D = ${cfg.delays.join(", ")} ms, ${cfg.requests} requests per case, D and run (hot key ${cfg.hotRequests}, exactness ${cfg.exactRequests}), two isolates per D.`,
    `Guard round trip probed through the wrapper (median ms): ${trips}. ${machine.cores} cores, 1-minute load average ${loads}.`,
  ].join(" ");
}

/**
 * The tables of a report, each drawn by `draw` (markdownTable, or report.mjs's text
 * table): latency per case at each far D, the changes under load, exactness.
 * @param {DistanceResults} results
 * @param {(head: string[], rows: string[][]) => string} draw
 */
function tables(results, draw) {
  const far = results.config.delays.filter((d) => d > 0);
  return [
    ...far.flatMap((d) => ["", draw(latencyHead(d), latencyRows(results, d))]),
    "",
    draw(CHANGE_HEAD, changeRows(results)),
    "",
    draw(exactnessHead(results), exactnessRows(results)),
  ];
}

/** What docs/benchmarks.md shows. @param {DistanceResults} results */
const markdown = (results) => [caption(results), ...tables(results, markdownTable)].join("\n");

/** @param {DistanceResults} results */
function printReport(results) {
  const { machine } = results;
  console.log(
    [
      "",
      `zgate distance bench — ${machine.cpuModel}${results.smoke ? "  [SMOKE: figures are not meaningful]" : ""}`,
      caption(results),
      ...tables(results, table),
      "",
      "Markdown (docs/benchmarks.md):",
      markdown(results),
      "",
      `Took ${results.timing.totalSeconds} s. Results: ${results.outFile}`,
    ].join("\n"),
  );
}

// ---------------------------------------------------------------- main

async function main() {
  const loadBefore = loadavg();
  const work = mkdtempSync(join(tmpdir(), "zgate-distance-"));
  track(() => rmSync(work, { recursive: true, force: true }), { dir: work });
  const storage = storageRoot(config.storage);
  track(() => rmSync(storage, { recursive: true, force: true }), { dir: storage });
  log(`${smoke ? "SMOKE " : ""}config ${JSON.stringify(config)}`);

  const scriptPath = await whileBuilding(buildDistance(work));
  const origin = await startOrigin();
  track(origin.stop, { pids: [origin.pid] });
  const settings = defaultLimitSettings(origin.url);
  const zgate = await startZgateIsolates({
    scriptPath,
    settings,
    compat: readCompatibility(),
    storage,
    isolates: config.delays.flatMap((d) => [0, 1].map((i) => ({ name: isolateName(d, i), bindings: { BENCH_DELAY_MS: String(d) } }))),
  });
  track(zgate.stop, { pids: zgate.pids });
  await applyMigrations(zgate.mf);
  log(`origin ${origin.url}, zgate isolates ${JSON.stringify(zgate.urls)}`);
  // Smoke mode checks the harness only: its figures need no warm isolates.
  if (!smoke) {
    await warmUp(zgate.urls, zgate.url, settings);
    log("isolates warmed up");
  }

  /** @type {RunResult[]} */
  const runs = [];
  const runSeconds = [];
  // The machine's load average (1, 5, 15 min) as each run starts and ends: the latencies are only as quiet as it was.
  /** @type {{ before: number[], after: number[] }[]} */
  const loadByRun = [];
  const loadNow = () => loadavg().map((x) => round(x, 2));
  for (let run = 0; run < config.runs; run++) {
    const runStarted = performance.now();
    const before = loadNow();
    runs.push(await oneRun(run, zgate.urls, zgate.url, settings));
    loadByRun.push({ before, after: loadNow() });
    runSeconds.push(round((performance.now() - runStarted) / 1000, 1));
    log(`run ${run + 1}/${config.runs} done in ${runSeconds.at(-1)} s, load ${before.join(" ")} -> ${loadByRun.at(-1)?.after.join(" ")}`);
  }

  /** @type {DistanceResults} */
  const results = {
    schema: "zgate-bench-distance/1",
    smoke,
    machine: {
      ...machineInfo(root),
      loadAverageBefore: loadBefore.map((x) => round(x, 2)),
      loadAverageAfter: loadNow(),
      loadAverageByRun: loadByRun,
    },
    config,
    timing: { totalSeconds: round((performance.now() - startedAt) / 1000, 1), runSeconds },
    cases: caseOrder.map((id) => summarizeCase(id, titles[id] ?? id, runs)),
    // The round trip each D gave, as zgate's isolates met it: the wrapper works if it is about D.
    roundTripMs: perDelay((d) => spread(runs.map((r) => r.find((x) => x.delayMs === d)?.roundTripMs ?? null))),
    exactness: summarizeExactness(runs),
    changes: summarizeChanges(
      Object.keys(runs[0]?.[0]?.changes ?? {}).map((id) => ({ id, title: titles[id] ?? id })),
      runs,
    ),
    outFile: outFile.startsWith(root) ? relative(root, outFile) : outFile,
  };
  writeResults(outFile, results);
  printReport(results);
}

await runBench("bench:distance", main);
