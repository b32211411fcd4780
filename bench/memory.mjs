#!/usr/bin/env node
// `npm run bench:memory` (issue 23, item 25): the memory of the runtime `npm start` runs
// (wrangler dev's workerd, with zgate's isolate and every local Durable Object, KV, D1
// and R2 in it) under churn, then under many valid keys. Each run starts `npm start` on
// free ports with a state directory of its own, then:
//   1. churn: BENCH_MEMORY_RATE requests a second for BENCH_MEMORY_SECONDS, each from a
//      new client address with a made-up key of the right shape, the three products in turn;
//   2. keys: BENCH_MEMORY_KEYS valid keys made through the admin API (each its own
//      account, the products in turn), then the same rate and time calling with them in
//      turn, still from a new address each time.
// It reads the runtime's resident memory every 2 s and reports, per phase, where it
// started and ended, its peak, and how much it grew over the last 30 s (the fitted slope
// of the readings, and the plain difference), judged against docs/limits.md's ceiling and
// growth bound (bench/churn.mjs). Writes bench/results/memory.json.
//
// Environment (defaults take about 3 minutes a run on 2 cores):
//   BENCH_MEMORY_RUNS=1        runs, each on a fresh `npm start`
//   BENCH_MEMORY_SECONDS=60    seconds per phase
//   BENCH_MEMORY_RATE=80       requests a second
//   BENCH_MEMORY_KEYS=200      valid keys of the keys phase
//   BENCH_MEMORY_PHASES=churn,keys  the phases to run, in that order
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
  runtimeMemory,
  startGateway,
  GROWTH_LIMIT_MB,
  RUNTIME_CEILING_MB,
} from "./churn.mjs";
import { cleanup, setting, track } from "./harness.mjs";

/** @typedef {Awaited<ReturnType<typeof drive>>} Phase */

const runs = setting("BENCH_MEMORY_RUNS", 1, 1, false);
const seconds = setting("BENCH_MEMORY_SECONDS", 60, 60, false);
const rate = setting("BENCH_MEMORY_RATE", 80, 80, false);
const keyCount = setting("BENCH_MEMORY_KEYS", 200, 200, false);
const phases = (process.env.BENCH_MEMORY_PHASES || "churn,keys").split(",");
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

/**
 * A phase's figures (MB of the runtime running zgate; wrangler's proxy apart).
 * @param {Phase} phase
 */
function figures(phase) {
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
    proxy: {
      startMb: round(first.proxy),
      endMb: round(last.proxy),
      tailGrowthMb: round(growthOverLast(samples, TAIL_SECONDS, "proxy").fitted),
    },
    samples: samples.map((s) => ({ ...s, t: round(s.t), worker: round(s.worker), proxy: round(s.proxy) })),
  };
}

const round = (/** @type {number} */ x) => Math.round(x * 10) / 10;

/**
 * One run on a fresh `npm start`. A runtime that dies (out of memory, say) ends the run:
 * what was measured until then is kept, with the error.
 * @param {number} run
 */
async function oneRun(run) {
  const gateway = await startGateway();
  track(gateway.stop);
  /** @type {{ idleMb?: number, churn?: ReturnType<typeof figures>, keysMadeMb?: number, keys?: ReturnType<typeof figures>, error?: string, loadAverage?: number }} */
  const result = {};
  try {
    const memory = () => runtimeMemory(gateway.pid, gateway.port);
    await new Promise((r) => setTimeout(r, 5000));
    result.idleMb = round((await memory()).worker);
    console.log(`run ${run + 1}: npm start idle at ${result.idleMb} MB`);
    if (phases.includes("churn")) {
      console.log(`  churn, ${rate}/s for ${seconds} s...`);
      const churn = (result.churn = figures(await drive({ base: gateway.base, request: await churnRequests(), seconds, rate, memory })));
      console.log(`  churn: ${churn.startMb} -> ${churn.endMb} MB (peak ${churn.peakMb}), last ${TAIL_SECONDS} s ${churn.tailGrowthMb} MB`);
      if (churn.died) throw new Error(`the runtime died: ${churn.died}`);
    }
    if (!phases.includes("keys")) return result;
    const keys = await makeKeys(gateway.base, gateway.adminToken, keyCount, run);
    result.keysMadeMb = round((await memory()).worker);
    console.log(`  ${keyCount} keys made: ${result.keysMadeMb} MB; calling with them, ${rate}/s for ${seconds} s...`);
    const firstAddress = Math.floor(Math.random() * 2 ** 24);
    const keyed = (result.keys = figures(
      await drive({
        base: gateway.base,
        request: (i) => {
          const { path, headers } = keyedRequest(/** @type {string} */ (keys[i % keys.length]));
          return { path, headers: { ...headers, "CF-Connecting-IP": addressOf(firstAddress + i) } };
        },
        seconds,
        rate,
        memory,
      }),
    ));
    console.log(`  keys: ${keyed.startMb} -> ${keyed.endMb} MB (peak ${keyed.peakMb}), last ${TAIL_SECONDS} s ${keyed.tailGrowthMb} MB`);
    if (keyed.died) throw new Error(`the runtime died: ${keyed.died}`);
  } catch (err) {
    result.error = `${err instanceof Error ? err.message : err}\n${gateway.output().slice(-2000)}`;
    console.log(`  run ${run + 1} ended: ${String(err).slice(0, 300)}`);
  } finally {
    result.loadAverage = loadavg()[0];
    await gateway.stop();
  }
  return result;
}

/** @param {number[]} xs */
const spread = (xs) => ({
  median: round([...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN),
  min: Math.min(...xs),
  max: Math.max(...xs),
});

try {
  /** @type {Awaited<ReturnType<typeof oneRun>>[]} */
  const results = [];
  for (let run = 0; run < runs; run++) results.push(await oneRun(run));
  const peak = Math.max(...results.flatMap((r) => [r.churn?.peakMb ?? 0, r.keys?.peakMb ?? 0]));
  /** @param {(r: (typeof results)[number]) => number | undefined} of */
  const across = (of) => spread(results.map((r) => of(r) ?? NaN));
  const summary = {
    churnTailGrowthMb: across((r) => r.churn?.tailGrowthMb),
    churnPeakMb: across((r) => r.churn?.peakMb),
    keysTailGrowthMb: across((r) => r.keys?.tailGrowthMb),
    keysPeakMb: across((r) => r.keys?.peakMb),
    ceilingMb: RUNTIME_CEILING_MB,
    growthLimitMb: GROWTH_LIMIT_MB,
    met:
      peak <= RUNTIME_CEILING_MB &&
      results.every((r) => !r.error && (!r.churn || (r.churn.tailGrowthMb <= GROWTH_LIMIT_MB && r.churn.unansweredAtEnd < rate))),
  };
  writeFileSync(
    out,
    `${JSON.stringify({ date: new Date().toISOString(), seconds, rate, keys: keyCount, summary, runs: results }, null, 2)}\n`,
  );
  console.log(
    `\nchurn, last ${TAIL_SECONDS} s: ${summary.churnTailGrowthMb.median} MB (${summary.churnTailGrowthMb.min} to ${summary.churnTailGrowthMb.max}; at most ${GROWTH_LIMIT_MB})` +
      `\npeak: ${peak} MB (ceiling ${RUNTIME_CEILING_MB})\n${summary.met ? "met" : "NOT met"}; written to ${out}`,
  );
  process.exitCode = summary.met ? 0 : 1;
} finally {
  await cleanup();
}
