#!/usr/bin/env node
// `npm run bench` (issue 8): zgate's cost over a bare pass-through Worker, on loopback.
//
// Starts a tiny origin (Node), a bare pass-through Worker and zgate (both served by
// workerd through Miniflare, the same way), then drives each case with autocannon in
// alternating runs A B A B ... (A = the case, B = the bare Worker sent the same request)
// so machine drift hits both sides, and reports medians and pair-by-pair ratios. Each
// case also gets unloaded pairs (1 connection), where p50 is the time a request takes
// rather than the time it queues. Then one hot account versus the same load over
// many accounts, through zgate, and the AccountGuard Durable Object alone. Prints a
// table and writes bench/results/latest.json.
//
// Environment (defaults take about 4 minutes on 2 cores):
//   BENCH_DURATION=2          seconds per measured run
//   BENCH_WARMUP=1            seconds of warm-up before a case's pairs
//   BENCH_CONNECTIONS=50      autocannon connections (and guard-driver callers)
//   BENCH_PAIRS=3             A/B pairs per case
//   BENCH_PROBE_DURATION=0.5  seconds of each side of the unloaded (1 connection) pairs
//   BENCH_GUARD_DURATION=1    seconds per AccountGuard-alone run
//   BENCH_CPU_REQUESTS=2000   requests per CPU-per-request run (each side, each route)
//   BENCH_TOGETHER_WINDOWS=8  windows of 4 s in which zgate, the floor and the bare Worker are driven at once (floor phase)
//   BENCH_WINDOW_SECONDS=1    window length of the raised limits (see cases.mjs)
//   BENCH_STORAGE=tmpfs       where local KV/D1/R2/DO data lives: tmpfs or disk (workers.mjs)
//   BENCH_SAMPLE_MS=1000      autocannon's sampling tick (a run ends on the first tick after it is done)
//   BENCH_SMOKE=1             0.3 s runs, 1 pair, 5 connections, 100 ms ticks: checks the harness only
//   BENCH_OUT=path            results file (default bench/results/latest.json; smoke.json in smoke mode)
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { hotAndSpreadKeys, limitOverrides, requestCases, zgateSettings } from "./cases.mjs";
import { cleanup, setting as numberSetting, track, whileBuilding } from "./harness.mjs";
import { measure, median, round } from "./load.mjs";
import { startOrigin } from "./origin.mjs";
import { judgeTargets, machineInfo, printReport, summarizePairs, writeResults } from "./report.mjs";
import { cpuPairs as cpuPairsOf, quietEnough, secondsWaitedForQuiet, spread } from "./cpu-pairs.mjs";
import { cpuTogether } from "./cpu-together.mjs";
import {
  applyMigrations,
  buildAll,
  peakOf,
  readCompatibility,
  root,
  startBare,
  startContractFloor,
  startGuardBench,
  startZgate,
  storageRoot,
} from "./workers.mjs";

/** @typedef {import("./report.mjs").Pair} Pair */
/** @typedef {import("./report.mjs").CpuPairs} CpuPairs */
/** @typedef {import("./report.mjs").CaseResult} CaseResult */
/** @typedef {import("./report.mjs").GuardResult} GuardResult */
/** @typedef {import("./workers.mjs").Instance} Instance */
/** @typedef {import("./cases.mjs").BenchSettings} BenchSettings */
/** @typedef {Parameters<typeof measure>[0]} Load One side of a pair: a request and how to send it. */
/** @typedef {Omit<Load, "duration">} LoadRequest The request and connections; each run adds its duration or count. */
/**
 * What `measure` needs of a request: a case of cases.mjs, or one of the hot-account and floor loads.
 * @typedef {{ id: string, path: string, method?: string, headers?: Record<string, string>, body?: string, headerSets?: Record<string, string>[], expect?: number }} BenchRequest
 */
/** @typedef {Awaited<ReturnType<typeof startEverything>>} Everything */

const smoke = process.env.BENCH_SMOKE === "1";

/** @type {(name: string, fallback: number, smokeValue: number) => number} */
const setting = (name, fallback, smokeValue) => numberSetting(name, fallback, smokeValue, smoke);

/** floorAtOnce's window and warm-up (ms): BENCH_TOGETHER_WINDOWS windows of this length. */
const AT_ONCE = smoke ? { windowMs: 500, warmupMs: 200 } : { windowMs: 4000, warmupMs: 2000 };

/** @type {import("./report.mjs").BenchConfig} */
const config = {
  duration: setting("BENCH_DURATION", 2, 0.3),
  warmup: setting("BENCH_WARMUP", 1, 0.2),
  connections: Math.round(setting("BENCH_CONNECTIONS", 50, 5)),
  pairs: Math.round(setting("BENCH_PAIRS", 3, 1)),
  probeDuration: setting("BENCH_PROBE_DURATION", 0.5, 0.2),
  guardDuration: setting("BENCH_GUARD_DURATION", 1, 0.2),
  // Enough requests for workerd's CPU time (read in 10 ms clock ticks) to move on both sides.
  cpuRequests: Math.round(setting("BENCH_CPU_REQUESTS", 2000, 100)),
  togetherWindows: Math.round(setting("BENCH_TOGETHER_WINDOWS", 8, 1)),
  sampleMs: setting("BENCH_SAMPLE_MS", 1000, 100),
  windowSeconds: Math.round(setting("BENCH_WINDOW_SECONDS", 1, 1)),
  // CPU pairs start only once the 1-minute load average is below this (0: at once), waiting
  // at most BENCH_LOAD_WAIT seconds a pair; each pair records the load it started at.
  maxLoad: setting("BENCH_MAX_LOAD", 0, 0),
  loadWait: setting("BENCH_LOAD_WAIT", 600, 0),
  storage: process.env.BENCH_STORAGE === "disk" ? "disk" : "tmpfs",
};
// A smoke run never overwrites the real figures unless told to.
const outFile = resolve(process.env.BENCH_OUT || join(root, "bench", "results", smoke ? "smoke.json" : "latest.json"));
const startedAt = performance.now();
const elapsed = () => (performance.now() - startedAt) / 1000;
const log = (/** @type {string} */ msg) => console.log(`[${elapsed().toFixed(0).padStart(3)}s] ${msg}`);

/**
 * Roughly how long the measured part takes (autocannon adds ~0.3 s per run).
 * @param {number} caseCount
 */
function plannedSeconds(caseCount) {
  const run = (/** @type {number} */ seconds) => seconds + 0.3;
  // CPU runs: a fixed request count, two routes (entry worker, direct), at roughly 1000 req/s, plus autocannon's closing tick.
  const cpuRun = run(config.cpuRequests / 1000 + 1);
  const perCase = run(config.warmup) + 2 * config.pairs * (run(config.duration) + run(config.probeDuration) + 2 * cpuRun);
  const hot = 2 * run(config.warmup) + 2 * config.pairs * run(config.duration);
  const guard = 3 * (Math.min(0.5, config.guardDuration) + config.pairs * config.guardDuration);
  // The floor against the bare Worker, then zgate against the floor.
  // The floor's pairs, then the three sides at once (floorAtOnce: a warm-up, the windows, autocannon's closing).
  const floor = run(config.warmup) + 4 * config.pairs * cpuRun + (AT_ONCE.warmupMs + AT_ONCE.windowMs * config.togetherWindows) / 1000 + 5;
  return run(config.warmup) + caseCount * perCase + hot + floor + guard;
}

// ---------------------------------------------------------------- phases

/**
 * @param {string} work
 * @param {string} storage
 */
async function startEverything(work, storage) {
  const built = await whileBuilding(buildAll(work));
  const compat = readCompatibility();
  const origin = await startOrigin();
  track(origin.stop, { pids: [origin.pid] });
  const bare = await startBare({ scriptPath: built.bare, originUrl: origin.url, compat, storage });
  track(bare.stop, { pids: bare.pids });
  const settings = zgateSettings(origin.url, config.windowSeconds);
  const zgate = await startZgate({ scriptPath: built.zgate, settings, compat, storage });
  track(zgate.stop, { pids: zgate.pids });
  await applyMigrations(zgate.mf);
  log(`origin ${origin.url}, bare ${bare.url} (workerd pid ${bare.pids}), zgate ${zgate.url} (workerd pid ${zgate.pids})`);
  return { built, compat, origin, bare, zgate, settings, storage };
}

/**
 * One request of the case, to fail fast with a readable message instead of a table of 500s.
 * @param {string} url
 * @param {Omit<BenchRequest, "path">} req
 */
async function preflight(url, req) {
  const init = { method: req.method ?? "GET", headers: req.headers, body: req.body };
  let response = await fetch(url, init);
  // The 429 case's key admits its very first call; the second is the one that counts.
  if (req.expect === 429 && response.status === 200) response = await fetch(url, init);
  const expect = req.expect ?? 200;
  if (response.status !== expect) {
    throw new Error(
      `preflight ${req.id}: ${init.method} ${url} answered ${response.status}, expected ${expect}: ${(await response.text()).slice(0, 300)}`,
    );
  }
  await response.arrayBuffer();
}

/** @type {(base: string, req: BenchRequest) => LoadRequest} */
const loadOf = (base, req) => ({
  url: base + req.path,
  method: req.method,
  headers: req.headers,
  body: req.body,
  headerSets: req.headerSets,
  expect: req.expect,
  connections: config.connections,
  sampleMs: config.sampleMs,
});

/**
 * Warm-up of A, then `pairs` runs of A then B at full load.
 * @param {string} label
 * @param {LoadRequest} a
 * @param {LoadRequest} b
 */
async function runPairs(label, a, b) {
  await measure({ ...a, duration: config.warmup });
  /** @type {Pair[]} */
  const pairs = [];
  for (let i = 0; i < config.pairs; i++) {
    const ra = await measure({ ...a, duration: config.duration });
    const rb = await measure({ ...b, duration: config.duration });
    pairs.push({ a: ra, b: rb });
    log(
      `${label} pair ${i + 1}/${config.pairs}: A ${ra.rps.toFixed(0)} req/s p50 ${ra.p50} ms | B ${rb.rps.toFixed(0)} req/s p50 ${rb.p50} ms`,
    );
  }
  return pairs;
}

/**
 * Short pairs at a single connection: what a request costs when nothing queues.
 * Alternated and taken as medians like the loaded pairs (one run alone is easily
 * thrown off by a GC pause or a neighbour's burst).
 * @param {LoadRequest} a
 * @param {LoadRequest} b
 * @returns {Promise<import("./report.mjs").Probe>}
 */
async function probe(a, b) {
  /** @type {Pair[]} */
  const pairs = [];
  for (let i = 0; i < config.pairs; i++) {
    const ra = await measure({ ...a, connections: 1, duration: config.probeDuration });
    const rb = await measure({ ...b, connections: 1, duration: config.probeDuration });
    pairs.push({ a: ra, b: rb });
  }
  return {
    pairs,
    p50: round(median(pairs.map((p) => p.a.p50)), 3),
    bareP50: round(median(pairs.map((p) => p.b.p50)), 3),
    p50AddedMs: round(median(pairs.map((p) => p.a.p50 - p.b.p50)), 3),
  };
}

/**
 * Alternating pairs of fixed-count runs, A (zgate) then B (bare Worker), as configured (cpu-pairs.mjs).
 * @param {LoadRequest} a
 * @param {Pick<Instance, "pids">} aInstance
 * @param {LoadRequest} b
 * @param {Pick<Instance, "pids">} bInstance
 */
const cpuPairs = (a, aInstance, b, bInstance) =>
  cpuPairsOf(a, aInstance, b, bInstance, {
    requests: config.cpuRequests,
    pairs: config.pairs,
    maxLoad: config.maxLoad,
    loadWait: config.loadWait,
  });

/**
 * @param {string} label
 * @param {CpuPairs} c
 */
function logCpuPairs(label, c) {
  log(
    `${label}: ${c.cpuMsPerRequest} ms vs bare ${c.bareCpuMsPerRequest} ms, ` +
      `ratio ${c.cpuRatio.median} (${c.cpuRatio.range.join("..")}), req/s ratio ${c.rpsRatio.median} (${c.rpsRatio.range.join("..")}), ` +
      `load at each pair ${c.pairs.map((p) => p.load).join(", ")}`,
  );
}

/**
 * Every case's pairs; `keyedDirect`: the ZappWay keyed request past the entry worker, which the floor phase sends zgate again.
 * @param {Everything} env
 * @returns {Promise<{ results: CaseResult[], keyedDirect: LoadRequest | null }>}
 */
async function requestPhase({ origin, bare, zgate, settings }) {
  const cases = await requestCases(zgate.url, settings);
  // The bare Worker is side B of every case: warm it once.
  await measure({ url: `${bare.url}/warm-up`, connections: config.connections, duration: config.warmup, sampleMs: config.sampleMs });
  /** @type {CaseResult[]} */
  const results = [];
  /** @type {LoadRequest | null} */
  let keyedDirect = null;
  for (const req of cases) {
    const aBase = req.target === "origin" ? origin.url : zgate.url;
    await preflight(aBase + req.path, req);
    const a = loadOf(aBase, req);
    // Side B: the bare Worker, sent the same request, always expected to pass (200).
    const b = loadOf(bare.url, { ...req, expect: 200 });
    const pairs = await runPairs(req.id, a, b);
    const unloaded = await probe(a, b);
    log(`${req.id} unloaded (1 connection): p50 ${unloaded.p50} ms vs bare ${unloaded.bareP50} ms`);
    // CPU per request needs a workerd on side A: not the origin-alone case.
    /** @type {CaseResult["cpu"]} */
    let cpu = null;
    if (req.target === "zgate") {
      // Past the entry worker nothing adds the client's address; Cloudflare's edge does in production.
      const direct = { ...req, headers: { "CF-Connecting-IP": "127.0.0.1", ...req.headers } };
      const [zgateDirect, bareDirect] = [directUrlOf(zgate), directUrlOf(bare)];
      await preflight(zgateDirect + req.path, direct);
      if (req.id === "zappway_key") keyedDirect = loadOf(zgateDirect, direct);
      cpu = {
        entry: await cpuPairs(a, zgate, b, bare),
        direct: await cpuPairs(loadOf(zgateDirect, direct), zgate, loadOf(bareDirect, { ...direct, expect: 200 }), bare),
      };
      for (const [route, c] of Object.entries(cpu)) logCpuPairs(`${req.id} CPU/request (${route})`, c);
    }
    results.push({
      id: req.id,
      title: req.title,
      target: req.target,
      request: { method: req.method ?? "GET", path: req.path, expect: req.expect ?? 200 },
      runs: pairs,
      unloaded,
      cpu,
      summary: { ...summarizePairs(pairs), unloadedP50: unloaded.p50, unloadedP50AddedMs: unloaded.p50AddedMs },
      // VmHWM of the workerd serving side A, read once the case is done (cumulative: see report).
      memory: { peakMiB: req.target === "zgate" ? peakOf(zgate) : null, barePeakMiB: peakOf(bare) },
    });
  }
  return { results, keyedDirect };
}

/**
 * The contract floor (contract-floor.mjs) against the bare Worker, past the entry worker,
 * on the ZappWay keyed request: the CPU per request below which no Worker keeping zgate's
 * contract can go here, beside zgate's own ratio for the same request. Then zgate's keyed
 * request (`keyedDirect`) against the floor in pairs of their own: zgate's own CPU over the
 * floor is read pair by pair, as each ratio to the bare Worker is. Taken from the floor's
 * pairs and zgate's of the request phase, run minutes apart, it moved with the machine by
 * more than the 0.05 ms it is judged against (one quiet run read -0.005 ms: the floor's bare
 * Worker 0.04 ms dearer than zgate's).
 * @param {Everything} env
 * @param {LoadRequest | null} keyedDirect
 * @returns {Promise<import("./report.mjs").ContractFloor>}
 */
async function floorPhase({ built, compat, origin, bare, zgate, settings, storage }, keyedDirect) {
  const floor = await startContractFloor({
    scriptPath: built.floor,
    originUrl: origin.url,
    assertionKeys: settings.ORIGIN_ASSERTION_KEYS,
    compat,
    storage,
  });
  const stop = track(floor.stop, { pids: floor.pids });
  const req = {
    id: "floor",
    path: "/zappway/api/v1/agents",
    headers: { "CF-Connecting-IP": "127.0.0.1", Authorization: "Bearer contract-floor-key" },
  };
  await preflight(directUrlOf(floor) + req.path, req);
  const a = loadOf(directUrlOf(floor), req);
  await measure({ ...a, duration: config.warmup });
  const result = await cpuPairs(a, floor, loadOf(directUrlOf(bare), req), bare);
  logCpuPairs("contract floor CPU/request (direct)", result);
  const zgateOverFloor = keyedDirect ? await cpuPairs(keyedDirect, zgate, a, floor) : null;
  if (zgateOverFloor) logCpuPairs("zgate ZappWay keyed against the contract floor (direct)", zgateOverFloor);
  const atOnce = keyedDirect ? await floorAtOnce(keyedDirect, zgate, a, floor, loadOf(directUrlOf(bare), req), bare) : null;
  await stop();
  return { title: "contract floor (contract-floor.mjs), ZappWay keyed GET, direct", ...result, zgateOverFloor, atOnce };
}

/**
 * zgate's keyed request, the floor and the bare Worker driven at the same time
 * (cpu-together.mjs), each side's CPU read per window: every side meets the same moments of
 * the machine, where the pairs above meet it one after the other (the bare Worker alone
 * cost 0.175-0.375 ms a request from one pair to the next in one quiet run). The sides
 * share the cores, so each one's CPU a request is higher than alone: the ratios are the
 * figures, zgate's to the floor's among them.
 * @param {LoadRequest} zgateLoad
 * @param {import("./workers.mjs").Instance} zgate
 * @param {LoadRequest} floorLoad
 * @param {import("./workers.mjs").Instance} floor
 * @param {LoadRequest} bareLoad
 * @param {import("./workers.mjs").Instance} bare
 * @returns {Promise<import("./report.mjs").AtOnce>}
 */
async function floorAtOnce(zgateLoad, zgate, floorLoad, floor, bareLoad, bare) {
  const load = await quietEnough(config);
  const windows = await cpuTogether(
    [
      { name: "zgate", load: zgateLoad, instance: zgate },
      { name: "floor", load: floorLoad, instance: floor },
      { name: "bare", load: bareLoad, instance: bare },
    ],
    { windows: config.togetherWindows, ...AT_ONCE, loadNow: () => round(loadavg()[0] ?? 0, 2) },
  );
  const ratio = (/** @type {string} */ a, /** @type {string} */ b) =>
    spread(windows.map((w) => (w.sides[a]?.cpuMsPerRequest ?? NaN) / (w.sides[b]?.cpuMsPerRequest ?? NaN)));
  const atOnce = {
    load,
    windows: windows.length,
    zgateOverBare: ratio("zgate", "bare"),
    floorOverBare: ratio("floor", "bare"),
    zgateOverFloor: ratio("zgate", "floor"),
    unexpected: Math.max(...windows.flatMap((w) => Object.values(w.sides).map((s) => s.unexpected))),
    runs: windows,
  };
  log(
    `zgate, floor and bare at once (${atOnce.windows} windows, load ${load}): zgate ${atOnce.zgateOverBare.median}x bare ` +
      `(${atOnce.zgateOverBare.range.join("..")}), floor ${atOnce.floorOverBare.median}x (${atOnce.floorOverBare.range.join("..")}), ` +
      `zgate ${atOnce.zgateOverFloor.median}x the floor (${atOnce.zgateOverFloor.range.join("..")})`,
  );
  return atOnce;
}

/**
 * The socket past Miniflare's entry worker: every Worker measured here is started with one (workers.mjs).
 * @param {import("./workers.mjs").Instance} instance
 */
function directUrlOf(instance) {
  if (!instance.directUrl) throw new Error(`${instance.name}: started without a direct socket`);
  return instance.directUrl;
}

/**
 * Many keys of one account (one guard object) vs one key per account (many objects).
 * @param {Everything} env
 * @returns {Promise<import("./report.mjs").HotAccount>}
 */
async function hotAccountPhase({ zgate, settings }) {
  const n = config.connections;
  const { hot, spread } = await hotAndSpreadKeys(zgate.url, settings, n);
  const base = { id: "hot", path: "/zappway/api/v1/agents" };
  const auth = (/** @type {string} */ key) => ({ Authorization: `Bearer ${key}` });
  const a = loadOf(zgate.url, { ...base, headerSets: hot.map(auth) });
  const b = loadOf(zgate.url, { ...base, headerSets: spread.map(auth) });
  await preflight(a.url, { id: "hot", headers: auth(hot[0] ?? "") });
  await measure({ ...b, duration: config.warmup }); // runPairs warms A only
  const pairs = await runPairs("hot-vs-spread", a, b);
  /** @type {(pick: (pair: Pair) => import("./load.mjs").RunResult) => import("./report.mjs").HotSide} */
  const side = (pick) => {
    const runs = pairs.map(pick);
    return {
      rps: round(median(runs.map((r) => r.rps)), 1),
      p50: round(median(runs.map((r) => r.p50)), 3),
      p99: round(median(runs.map((r) => r.p99)), 3),
      unexpected: Math.max(...runs.map((r) => r.unexpected)),
    };
  };
  return {
    keys: n,
    hot: side((p) => p.a),
    spread: side((p) => p.b),
    hotOverSpread: round(median(pairs.map((p) => p.a.rps / p.b.rps)), 3),
    p50AddedMs: round(median(pairs.map((p) => p.a.p50 - p.b.p50)), 3),
    runs: pairs,
  };
}

/**
 * The guard Durable Object alone, driven by admit RPCs from inside workerd.
 * @param {Everything} env
 * @returns {Promise<GuardResult>}
 */
async function guardPhase({ built, compat, storage }) {
  const guard = await startGuardBench({ hostPath: built.guardHost, driverPath: built.guardDriver, compat, storage });
  track(guard.stop, { pids: guard.pids });
  await applyMigrations(guard.mf);
  const driver = await guard.mf.getWorker("driver");
  // Its answers are guard-driver.mjs's (its Target and RunAnswer types).
  /** @type {(path: string, body: object) => Promise<unknown>} */
  const post = async (path, body) => {
    const response = await driver.fetch(`http://driver${path}`, { method: "POST", body: JSON.stringify(body) });
    if (!response.ok) throw new Error(`guard driver ${path}: ${response.status} ${await response.text()}`);
    return response.json();
  };
  const c = config.connections;
  const loads = [
    { id: "one_key", title: `one key of one account (1 object)`, accounts: [{ account: "g_one", keys: 1 }] },
    { id: "hot", title: `${c} keys of one account (1 object)`, accounts: [{ account: "g_hot", keys: c }] },
    {
      id: "spread",
      title: `${c} accounts, one key each (${c} objects)`,
      accounts: Array.from({ length: c }, (_, i) => ({ account: `g_spread_${i}`, keys: 1 })),
    },
  ];
  /** @typedef {(typeof loads)[number] & { targets: import("./guard-driver.mjs").Target[], runs: import("./report.mjs").GuardRun[] }} Mode */
  /** @type {Mode[]} */
  const modes = [];
  for (const load of loads) {
    const { targets } = /** @type {{ targets: import("./guard-driver.mjs").Target[] }} */ (
      await post("/setup", { accounts: load.accounts })
    );
    modes.push({ ...load, targets, runs: [] });
  }
  /** @type {(mode: Mode, seconds: number) => Promise<import("./report.mjs").GuardRun>} */
  const run = async (mode, seconds) => {
    const result = /** @type {import("./report.mjs").GuardRun} */ (
      await post("/run", {
        targets: mode.targets,
        concurrency: c,
        ms: Math.round(seconds * 1000),
        limitOverrides: limitOverrides(config.windowSeconds),
      })
    );
    // Limits are raised, so every call should be admitted: anything else means the
    // driver no longer speaks the guard's contract (see guard-driver.mjs).
    if (result.refused + result.failed > 0) {
      const why = result.firstError ?? JSON.stringify(result.firstRefusal);
      throw new Error(
        `AccountGuard alone (${mode.id}): ${result.refused} refused, ${result.failed} failed of ${result.admitted + result.refused + result.failed}: ${why}`,
      );
    }
    return result;
  };

  for (const mode of modes) await run(mode, Math.min(0.5, config.guardDuration)); // warm-up
  // Rounds of every mode, so drift spreads over all of them.
  for (let i = 0; i < config.pairs; i++) {
    for (const mode of modes) mode.runs.push(await run(mode, config.guardDuration));
    log(`guard round ${i + 1}/${config.pairs}: ${modes.map((m) => `${m.id} ${m.runs.at(-1)?.perSecond.toFixed(0)}/s`).join(", ")}`);
  }
  const peakMiB = peakOf(guard);
  await guard.stop();
  return {
    concurrency: c,
    duration: config.guardDuration,
    peakMiB,
    modes: modes.map((m) => ({
      id: m.id,
      title: m.title,
      perSecond: round(median(m.runs.map((r) => r.perSecond)), 1),
      p50: median(m.runs.map((r) => r.p50)),
      p99: median(m.runs.map((r) => r.p99)),
      refusedOrFailed: m.runs.reduce((n, r) => n + r.refused + r.failed, 0),
      runs: m.runs,
    })),
  };
}

// ---------------------------------------------------------------- main

/**
 * A stuck run must not hang CI: gives up well after the plan, not counting the time CPU
 * pairs waited for a quiet machine (BENCH_MAX_LOAD), which the plan cannot know. (Counting
 * it stopped a quiet-window run in its last phase, the guard's, whose workerd it stopped:
 * "AccountGuard alone: FAILED (fetch failed)".)
 * @param {number} planned seconds of measuring
 */
function startWatchdog(planned) {
  const startedAt = elapsed();
  const limit = () => planned + 120 + secondsWaitedForQuiet();
  /** @type {ReturnType<typeof setTimeout>} */
  let timer;
  const arm = () => {
    timer = setTimeout(check, Math.max(0, limit() - (elapsed() - startedAt)) * 1000);
    timer.unref();
  };
  const check = async () => {
    if (elapsed() - startedAt < limit()) return arm();
    console.error(
      `bench exceeded ${limit().toFixed(0)} s of measuring (${secondsWaitedForQuiet().toFixed(0)} s of it waiting for a quiet machine); stopping`,
    );
    await cleanup();
    process.exit(1);
  };
  arm();
  return { stop: () => clearTimeout(timer) };
}

async function main() {
  const loadBefore = loadavg();
  const work = mkdtempSync(join(tmpdir(), "zgate-bench-"));
  track(() => rmSync(work, { recursive: true, force: true }), { dir: work });
  const storage = storageRoot(config.storage);
  track(() => rmSync(storage, { recursive: true, force: true }), { dir: storage });
  log(`${smoke ? "SMOKE " : ""}config ${JSON.stringify(config)}`);
  const env = await startEverything(work, storage);

  const planned = plannedSeconds(6);
  log(`direct sockets (past Miniflare's entry worker): bare ${env.bare.directUrl}, zgate ${env.zgate.directUrl}`);
  log(`measuring: about ${planned.toFixed(0)} s planned`);
  const watchdog = startWatchdog(planned);

  const { results: cases, keyedDirect } = await requestPhase(env);
  const contractFloor = await floorPhase(env, keyedDirect);
  const hotAccount = await hotAccountPhase(env);
  /** @type {import("./report.mjs").Results["memory"]} */
  const memory = { bare: { peakMiB: peakOf(env.bare) }, zgate: { peakMiB: peakOf(env.zgate) } };
  // The request-level Workers are done: stop them before the guard runs alone.
  await env.zgate.stop();
  await env.bare.stop();
  // A broken guard measurement should not throw away the request-level figures:
  // the results are still written, and the run exits non-zero.
  /** @type {GuardResult} */
  const guard = await guardPhase(env).catch((err) => ({ error: err instanceof Error ? err.message : String(err) }));
  memory.guard = { peakMiB: guard.peakMiB ?? null };
  watchdog.stop();

  const baselineRuns = cases.flatMap((c) => c.runs.map((p) => p.b));
  /** @type {import("./report.mjs").Results} */
  const results = {
    schema: "zgate-bench/1",
    smoke,
    machine: {
      ...machineInfo(root),
      loadAverageBefore: loadBefore.map((x) => round(x, 2)),
      loadAverageAfter: loadavg().map((x) => round(x, 2)),
    },
    config,
    timing: { totalSeconds: round(elapsed(), 1), plannedMeasureSeconds: round(planned, 0) },
    baseline: {
      rps: round(median(baselineRuns.map((r) => r.rps)), 1),
      p50: round(median(baselineRuns.map((r) => r.p50)), 3),
      p99: round(median(baselineRuns.map((r) => r.p99)), 3),
      unloadedP50: round(median(cases.map((c) => c.unloaded.bareP50)), 3),
    },
    cases,
    contractFloor,
    hotAccount,
    guard,
    memory,
    targets: judgeTargets(cases, contractFloor),
    outFile,
  };
  writeResults(outFile, results);
  printReport(results);
  if (guard.error !== undefined) {
    console.error(`\nbench: the AccountGuard-alone measurement failed: ${guard.error}`);
    process.exitCode = 1;
  }
}

try {
  await main();
  await cleanup();
} catch (err) {
  console.error(`bench failed: ${err instanceof Error ? (err.stack ?? err) : err}`);
  await cleanup();
  process.exit(1);
}
