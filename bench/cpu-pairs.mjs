// CPU per request of a workerd, in alternating fixed-count runs: what `npm run bench` steers by
// (zgate against the bare Worker) and `npm run bench:ab` (one build of zgate against another).
// Each run sends a fixed number of requests and reads the CPU time (user + system,
// /proc/<pid>/stat) the side's workerd used meanwhile; on shared cores a pair is only as
// good as the machine was quiet, so each pair may wait for a low load and records the one
// it started at.
import { loadavg } from "node:os";
import { measure, median, round } from "./load.mjs";
import { cpuTimeMs } from "./workers.mjs";

/** @typedef {Omit<Parameters<typeof measure>[0], "duration">} LoadRequest The request and connections; each run adds its count. */
/** @typedef {import("./report.mjs").CpuRun} CpuRun */
/** @typedef {import("./report.mjs").CpuPairs} CpuPairs */
/** @typedef {import("./report.mjs").Spread} Spread */
/**
 * How the runs are made: requests per run, pairs, and the load a pair waits for (0: none)
 * and for how long at most (seconds).
 * @typedef {{ requests: number, pairs: number, maxLoad: number, loadWait: number }} CpuConfig
 */

/**
 * One run of a fixed request count: the workerd's CPU time per request, and the throughput.
 * @param {LoadRequest} load
 * @param {Pick<import("./workers.mjs").Instance, "pids">} instance
 * @param {number} requests
 * @returns {Promise<CpuRun>}
 */
export async function cpuRun(load, instance, requests) {
  const before = cpuTimeMs(instance);
  const r = await measure({ ...load, amount: requests });
  const cpuMs = cpuTimeMs(instance) - before;
  return { requests: r.requests, rps: r.rps, p50: r.p50, cpuMs, cpuMsPerRequest: round(cpuMs / r.requests, 4), unexpected: r.unexpected };
}

/** Seconds spent waiting for a quiet machine, before the wait under way (if any, since `waitingSince`). */
let waited = 0;
/** @type {number | null} */
let waitingSince = null;
/** Seconds spent so far waiting for a quiet machine, the wait under way included (a run's watchdog allows for them). */
export const secondsWaitedForQuiet = () => waited + (waitingSince === null ? 0 : (Date.now() - waitingSince) / 1000);

/**
 * Waits until the 1-minute load average is below `maxLoad` (0: at once), or `loadWait`
 * seconds passed; returns the load it starts at.
 * @param {Pick<CpuConfig, "maxLoad" | "loadWait">} config
 * @returns {Promise<number>}
 */
export async function quietEnough({ maxLoad, loadWait }) {
  const started = Date.now();
  const deadline = started + loadWait * 1000;
  waitingSince = started;
  try {
    while (maxLoad > 0 && (loadavg()[0] ?? 0) >= maxLoad && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5000));
  } finally {
    waitingSince = null;
    waited += (Date.now() - started) / 1000;
  }
  return round(loadavg()[0] ?? 0, 2);
}

/** @type {(xs: number[]) => Spread} */
export const spread = (xs) => ({ median: round(median(xs), 3), range: [round(Math.min(...xs), 3), round(Math.max(...xs), 3)] });

/**
 * Alternating pairs of fixed-count runs, A then B: CPU per request of each side's workerd,
 * its ratio, and the throughput ratio, pair by pair.
 * @param {LoadRequest} a
 * @param {Pick<import("./workers.mjs").Instance, "pids">} aInstance
 * @param {LoadRequest} b
 * @param {Pick<import("./workers.mjs").Instance, "pids">} bInstance
 * @param {CpuConfig} config
 * @returns {Promise<CpuPairs>}
 */
export async function cpuPairs(a, aInstance, b, bInstance, config) {
  /** @type {CpuPairs["pairs"]} */
  const pairs = [];
  for (let i = 0; i < config.pairs; i++) {
    const load = await quietEnough(config);
    pairs.push({ load, a: await cpuRun(a, aInstance, config.requests), b: await cpuRun(b, bInstance, config.requests) });
  }
  return {
    cpuMsPerRequest: round(median(pairs.map((p) => p.a.cpuMsPerRequest)), 4),
    bareCpuMsPerRequest: round(median(pairs.map((p) => p.b.cpuMsPerRequest)), 4),
    cpuRatio: spread(pairs.map((p) => p.a.cpuMsPerRequest / p.b.cpuMsPerRequest)),
    rpsRatio: spread(pairs.map((p) => p.a.rps / p.b.rps)),
    pairs,
  };
}
