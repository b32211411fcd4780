#!/usr/bin/env node
// `npm run bench:memory` (issue 23, item 25): the memory of the runtime `npm start` runs
// (wrangler dev's workerd, with zgate's isolate and every local Durable Object, KV, D1
// and R2 in it) under churn: BENCH_MEMORY_RATE requests a second, each from a client
// address never seen before with a made-up key of the right shape, the three products in
// turn. Each run starts, one after the other (their order alternating from run to run):
//   - zgate: `npm start` on free ports with a state directory of its own;
//   - bare: the control, `wrangler dev` running a Worker that only passes requests on to
//     an origin (bench/churn.mjs startBareGateway), under the same churn;
// and drives each through two churns of BENCH_MEMORY_SECONDS on the same runtime:
//   1. cold: right after the runtime started (BENCH_MEMORY_WARMUP_SECONDS);
//   2. warm: right after the first, with addresses and keys never seen before either.
// A structure that grows with the requests served grows as much in the warm churn as in
// the cold one; what the runtime sizes once (V8's heap and its allocator's arenas for the
// rate, compiled code, objects and caches made on first use) it does in the cold one. So
// the warm churn's growth is the measure of a leak. Then, for zgate (BENCH_MEMORY_PHASES
// with `keys`), BENCH_MEMORY_KEYS valid keys made through the admin API, called in turn at
// the same rate, each call from a new address.
// It reads the runtime's resident memory every 2 s, and, through the runtime's inspector,
// makes a full garbage collection of the Worker's isolate when each churn's last 30 s
// begin and once it ends, reading the JS heap and the runtime's memory right after. It
// reports, per churn, the growth over the last 30 s: what the runtime kept (the memory
// after the two collections), and, as readings taken without them show it, the fitted
// slope and the plain difference (both move with where V8's collections fall in the 30 s);
// the peak and the heap, with the median, lowest and highest over the runs. Judged against
// docs/limits.md (bench/churn.mjs GROWTH_LIMIT_MB, RUNTIME_CEILING_MB): the peak, and
// what zgate's warm churn kept over its last 30 s, in every run. Exit status 1 when not
// met. Writes bench/results/memory.json.
//
// Environment (defaults take about 5 minutes a run on 2 cores):
//   BENCH_MEMORY_RUNS=3        runs, each on fresh runtimes
//   BENCH_MEMORY_SECONDS=60    seconds of the warm churn (and the keys phase)
//   BENCH_MEMORY_WARMUP_SECONDS=60  seconds of the cold churn
//   BENCH_MEMORY_RATE=80       requests a second
//   BENCH_MEMORY_KEYS=200      valid keys of the keys phase
//   BENCH_MEMORY_PHASES=bare,keys  the control (bare) and zgate's keys phase; either may be left out
//   BENCH_OUT=path             results file (default bench/results/memory.json)
import { writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join, resolve } from "node:path";
import { root } from "../scripts/import-ts.mjs";
import {
  addressOf,
  churnRequests,
  drive,
  growthOverLast,
  keyedRequest,
  runtimeInspector,
  runtimeMemory,
  startBareGateway,
  startGateway,
  GROWTH_LIMIT_MB,
  RUNTIME_CEILING_MB,
} from "./churn.mjs";
import { cleanup, setting, track } from "./harness.mjs";
import { heapAfterGc } from "./inspector.mjs";

/** @typedef {Awaited<ReturnType<typeof drive>>} Phase */
/** @typedef {import("./churn.mjs").Gateway} Gateway */

const runs = setting("BENCH_MEMORY_RUNS", 3, 3, false);
const seconds = setting("BENCH_MEMORY_SECONDS", 60, 60, false);
const warmup = setting("BENCH_MEMORY_WARMUP_SECONDS", 60, 60, false);
const rate = setting("BENCH_MEMORY_RATE", 80, 80, false);
const keyCount = setting("BENCH_MEMORY_KEYS", 200, 200, false);
const phases = (process.env.BENCH_MEMORY_PHASES ?? "bare,keys").split(",");
const out = resolve(process.env.BENCH_OUT ?? join(root, "bench", "results", "memory.json"));
const TAIL_SECONDS = 30;

/**
 * Valid keys through the admin API, each in an account of its own, the products in turn.
 * @param {string} base
 * @param {string} adminToken
 * @param {number} count
 * @param {number} run
 */
async function makeKeys(base, adminToken, count, run) {
  const products = ["zsky", "zappway", "zakgt"];
  /** @type {string[]} */
  const keys = [];
  for (let i = 0; i < count; i++) {
    const response = await fetch(`${base}/admin/v1/keys`, {
      method: "POST",
      headers: { Authorization: `Bearer ${adminToken}`, "Content-Type": "application/json", "CF-Connecting-IP": "127.0.0.1" },
      body: JSON.stringify({ product: products[i % products.length], account: `acct_memory_${run}_${i}`, label: "bench:memory" }),
    });
    const text = await response.text();
    const key = response.ok ? /** @type {{ key?: string }} */ (JSON.parse(text)).key : undefined;
    if (!key) throw new Error(`creating key ${i}: ${response.status} ${text.slice(0, 200)}`);
    keys.push(key);
  }
  return keys;
}

const round = (/** @type {number} */ x) => Math.round(x * 10) / 10;

/** @typedef {{ heapMb: number, rssMb: number }} Collected */

/**
 * A phase's figures (MB of the runtime running the Worker; wrangler's proxy apart), with
 * the runtime's memory right after a full collection of the isolate when its last
 * TAIL_SECONDS began (`tailStart`) and once it ended (`end`, with the heap then).
 * @param {Phase} phase
 * @param {Collected} tailStart
 * @param {Collected} end
 */
function figures(phase, tailStart, end) {
  const { samples } = phase;
  const first = /** @type {import("./churn.mjs").Sample} */ (samples[0]);
  const last = /** @type {import("./churn.mjs").Sample} */ (samples.at(-1));
  const tail = growthOverLast(samples, TAIL_SECONDS);
  return {
    sent: phase.sent,
    died: phase.died,
    statuses: phase.statuses,
    unansweredAtEnd: phase.unansweredAtEnd,
    startMb: round(first.worker),
    endMb: round(last.worker),
    peakMb: round(Math.max(...samples.map((s) => s.worker))),
    tailGrowthMb: round(tail.fitted),
    tailDifferenceMb: round(tail.difference),
    // What the runtime keeps: both ends read right after a full collection, so the garbage
    // V8 has not collected yet (a sawtooth of several MB at this rate) is in neither.
    tailCollectedGrowthMb: round(end.rssMb - tailStart.rssMb),
    tailStartCollectedMb: round(tailStart.rssMb),
    endCollectedMb: round(end.rssMb),
    heapAfterMb: round(end.heapMb),
    proxy: {
      startMb: round(first.proxy),
      endMb: round(last.proxy),
      tailGrowthMb: round(growthOverLast(samples, TAIL_SECONDS, "proxy").fitted),
    },
    samples: samples.map((s) => ({ ...s, t: round(s.t), worker: round(s.worker), proxy: round(s.proxy) })),
  };
}

/**
 * The two churns (and, for zgate, the keys) on one fresh runtime. A runtime that dies (out
 * of memory, say) ends its part of the run: what was measured until then is kept, with the error.
 * @param {() => Promise<Gateway>} start
 * @param {number} run
 */
async function oneRuntime(start, run) {
  const gateway = await start();
  track(gateway.stop);
  /** @type {{ worker: string, idleMb?: number, idleHeapMb?: number, cold?: ReturnType<typeof figures>, warm?: ReturnType<typeof figures>, keysMadeMb?: number, keys?: ReturnType<typeof figures>, error?: string, loadAverage?: number[] }} */
  const result = { worker: gateway.name };
  const memory = () => runtimeMemory(gateway.pid, gateway.port);
  const inspector = await runtimeInspector(gateway);
  // A request that enters the Worker's isolate (see heapAfterGc): the bare Worker passes it on.
  const poke = () => fetch(`${gateway.base}/healthz`).then((r) => r.arrayBuffer());
  // The isolate's heap and the runtime's memory right after a full collection, tried up to
  // `tries` times (a busy isolate may not run the inspector's command within its 20 s). A
  // reading that fails is left out (NaN), not the run.
  /** @returns {Promise<Collected>} */
  const collected = async (tries = 1) => {
    for (let attempt = 1; ; attempt++) {
      try {
        // heapAfterGc gives up on the collection after 20 s, but not on opening the session or reading the heap.
        const { usedMb } = await Promise.race([
          heapAfterGc(inspector, gateway.name, poke),
          new Promise((_, reject) => setTimeout(() => reject(new Error("no answer within 30 s")), 30_000).unref()),
        ]);
        return { heapMb: usedMb, rssMb: (await memory()).worker };
      } catch (err) {
        console.log(`  (no reading after a full collection, attempt ${attempt}: ${err instanceof Error ? err.message : err})`);
        if (attempt >= tries) return { heapMb: NaN, rssMb: NaN };
      }
    }
  };
  /** @param {string} name @param {(i: number) => import("./churn.mjs").ChurnRequest} request @param {number} seconds */
  const churn = async (name, request, seconds) => {
    /** @type {Promise<Collected>} */
    let tailStart = Promise.resolve({ heapMb: NaN, rssMb: NaN });
    const timer = setTimeout(() => (tailStart = collected()), Math.max(0, seconds - TAIL_SECONDS) * 1000);
    const driven = await drive({ base: gateway.base, request, seconds, rate, memory });
    clearTimeout(timer);
    // The tail's start is read once: a later reading would measure a shorter span. Its end is tried twice.
    const phase = figures(driven, await tailStart, await collected(2));
    console.log(
      `  ${gateway.name} ${name}: ${phase.startMb} -> ${phase.endMb} MB (peak ${phase.peakMb}), last ${TAIL_SECONDS} s ${phase.tailGrowthMb} MB (after full collections: ${phase.tailStartCollectedMb} -> ${phase.endCollectedMb} MB, ${phase.tailCollectedGrowthMb} MB); heap ${phase.heapAfterMb} MB; ${phase.unansweredAtEnd} unanswered at the end`,
    );
    if (phase.died) throw new Error(`the runtime died: ${phase.died}`);
    return phase;
  };
  try {
    await new Promise((r) => setTimeout(r, 5000));
    result.idleMb = round((await memory()).worker);
    result.idleHeapMb = round((await collected()).heapMb);
    console.log(`run ${run + 1}, ${gateway.name}: idle at ${result.idleMb} MB (heap ${result.idleHeapMb} MB)`);
    // One sequence of addresses for both churns: the warm one's are new too.
    const first = Math.floor(Math.random() * 2 ** 23);
    const requests = await churnRequests(first);
    result.cold = await churn("cold", requests, warmup);
    const sent = result.cold.sent;
    result.warm = await churn("warm", (i) => requests(sent + i), seconds);
    if (gateway.name !== "zgate" || !phases.includes("keys")) return result;
    const keys = await makeKeys(gateway.base, gateway.adminToken, keyCount, run);
    result.keysMadeMb = round((await memory()).worker);
    const firstAddress = first + sent + result.warm.sent;
    result.keys = await churn(
      `${keyCount} keys`,
      (i) => {
        const { path, headers } = keyedRequest(/** @type {string} */ (keys[i % keys.length]));
        return { path, headers: { ...headers, "CF-Connecting-IP": addressOf(firstAddress + i) } };
      },
      seconds,
    );
  } catch (err) {
    result.error = `${err instanceof Error ? err.message : err}\n${gateway.output().slice(-2000)}`;
    console.log(`  run ${run + 1}, ${gateway.name} ended: ${String(err).slice(0, 300)}`);
  } finally {
    result.loadAverage = loadavg().map(round);
    await gateway.stop();
  }
  return result;
}

/** @param {number[]} xs */
const spread = (xs) => {
  const known = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return {
    median: round(known[Math.floor(known.length / 2)] ?? NaN),
    min: round(known[0] ?? NaN),
    max: round(known.at(-1) ?? NaN),
    n: known.length,
  };
};

try {
  /** @type {Awaited<ReturnType<typeof oneRuntime>>[][]} */
  const results = [];
  for (let run = 0; run < runs; run++) {
    const starts = phases.includes("bare") ? [startGateway, startBareGateway] : [startGateway];
    // Alternating which runtime goes first, so a change in the machine's load does not favour one.
    if (run % 2 === 1) starts.reverse();
    const pair = [];
    for (const start of starts) pair.push(await oneRuntime(start, run));
    results.push(pair);
  }
  /** @param {string} worker @param {(r: Awaited<ReturnType<typeof oneRuntime>>) => number | undefined} of */
  const across = (worker, of) => spread(results.flat().map((r) => (r.worker === worker ? (of(r) ?? NaN) : NaN)));
  /** @param {string} worker */
  const summaryOf = (worker) => ({
    idleMb: across(worker, (r) => r.idleMb),
    coldTailGrowthMb: across(worker, (r) => r.cold?.tailGrowthMb),
    warmTailGrowthMb: across(worker, (r) => r.warm?.tailGrowthMb),
    warmTailDifferenceMb: across(worker, (r) => r.warm?.tailDifferenceMb),
    coldTailCollectedGrowthMb: across(worker, (r) => r.cold?.tailCollectedGrowthMb),
    warmTailCollectedGrowthMb: across(worker, (r) => r.warm?.tailCollectedGrowthMb),
    coldPeakMb: across(worker, (r) => r.cold?.peakMb),
    warmPeakMb: across(worker, (r) => r.warm?.peakMb),
    heapIdleMb: across(worker, (r) => r.idleHeapMb),
    heapAfterColdMb: across(worker, (r) => r.cold?.heapAfterMb),
    heapAfterWarmMb: across(worker, (r) => r.warm?.heapAfterMb),
    keysTailGrowthMb: across(worker, (r) => r.keys?.tailGrowthMb),
    keysTailCollectedGrowthMb: across(worker, (r) => r.keys?.tailCollectedGrowthMb),
    keysPeakMb: across(worker, (r) => r.keys?.peakMb),
  });
  const zgateRuns = results.flat().filter((r) => r.worker === "zgate");
  const peak = Math.max(...zgateRuns.flatMap((r) => [r.cold?.peakMb ?? 0, r.warm?.peakMb ?? 0, r.keys?.peakMb ?? 0]));
  // The bound holds for every run, each judged on what the runtime keeps (after full collections).
  const warmGrowth = spread(zgateRuns.map((r) => r.warm?.tailCollectedGrowthMb ?? NaN));
  // What zgate's warm churn kept beyond the control's in the same run: the runtime's own
  // growth (which no Worker avoids) taken out. A comparison, not judged.
  const overControl = phases.includes("bare")
    ? spread(
        results.map((pair) => {
          const [z, b] = ["zgate", "bare"].map((w) => pair.find((r) => r.worker === w)?.warm?.tailCollectedGrowthMb ?? NaN);
          return /** @type {number} */ (z) - /** @type {number} */ (b);
        }),
      )
    : undefined;
  const summary = {
    zgate: summaryOf("zgate"),
    bare: phases.includes("bare") ? summaryOf("bare") : undefined,
    warmOverControlMb: overControl,
    ceilingMb: RUNTIME_CEILING_MB,
    growthLimitMb: GROWTH_LIMIT_MB,
    met:
      peak <= RUNTIME_CEILING_MB &&
      warmGrowth.n === zgateRuns.length &&
      warmGrowth.max <= GROWTH_LIMIT_MB &&
      zgateRuns.every((r) => !r.error && r.cold && r.warm && r.warm.unansweredAtEnd < rate),
  };
  writeFileSync(
    out,
    `${JSON.stringify({ date: new Date().toISOString(), warmup, seconds, rate, keys: keyCount, summary, runs: results }, null, 2)}\n`,
  );
  /** @param {{ median: number, min: number, max: number }} s */
  const show = (s) => `${s.median} MB (${s.min} to ${s.max})`;
  for (const [worker, s] of Object.entries(summary).filter(([k, v]) => (k === "zgate" || k === "bare") && v)) {
    const w = /** @type {ReturnType<typeof summaryOf>} */ (s);
    console.log(
      `\n${worker}, over the last ${TAIL_SECONDS} s of each churn (median of ${w.warmTailGrowthMb.n}, lowest to highest): cold ${show(w.coldTailGrowthMb)}, warm ${show(w.warmTailGrowthMb)}` +
        `\n  after full collections at both ends of the last ${TAIL_SECONDS} s: cold ${show(w.coldTailCollectedGrowthMb)}, warm ${show(w.warmTailCollectedGrowthMb)}` +
        `\n  peak: cold ${show(w.coldPeakMb)}, warm ${show(w.warmPeakMb)}; heap after GC: idle ${show(w.heapIdleMb)}, after cold ${show(w.heapAfterColdMb)}, after warm ${show(w.heapAfterWarmMb)}`,
    );
  }
  console.log(
    `\nzgate's warm churn kept ${show(warmGrowth)} over its last ${TAIL_SECONDS} s (at most ${GROWTH_LIMIT_MB} in every run)${overControl ? `, ${show(overControl)} beyond the control's` : ""}; peak ${peak} MB (ceiling ${RUNTIME_CEILING_MB})` +
      `\n${summary.met ? "met" : "NOT met"}; written to ${out}`,
  );
  process.exitCode = summary.met ? 0 : 1;
} finally {
  await cleanup();
}
