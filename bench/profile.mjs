// npm run bench:profile: where zgate's CPU goes on one request case, from a V8 CPU profile of
// its isolate (workerd's inspector) while autocannon drives the case past Miniflare's entry
// worker. Prints the functions with the most self time and the share of each source file.
// Shares, not seconds: the profiler slows the isolate, and with the inspector attached every
// console.log is also sent to it, so the access log line looks far dearer than it is (an A/B
// of CPU per request with and without the line showed no difference).
//   BENCH_PROFILE_CASE=zappway_key   the case of bench/cases.mjs requestCases()
//   BENCH_PROFILE_SECONDS=10         how long the load runs while profiling
//   BENCH_PROFILE_OUT=<file>         also write the raw .cpuprofile there (open it in DevTools)
//   BENCH_PROFILE_ALLOC=1            the JS heap's allocations instead (V8's sampling heap
//                                    profiler, objects the GC took counted too): bytes a
//                                    request by function. A count, not a time: it does not
//                                    move with the machine's load, and every byte is the
//                                    garbage collector's work later (zgate's keyed request
//                                    allocated some 19 KB against the floor's 10 KB).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { requestCases, zgateSettings } from "./cases.mjs";
import { cleanup, track, whileBuilding } from "./harness.mjs";
import { inspect } from "./inspector.mjs";
import { measure } from "./load.mjs";
import { startOrigin } from "./origin.mjs";
import { applyMigrations, buildAll, readCompatibility, startZgate, storageRoot } from "./workers.mjs";

const caseId = process.env.BENCH_PROFILE_CASE ?? "zappway_key";
const seconds = Number(process.env.BENCH_PROFILE_SECONDS ?? 10);
const allocations = process.env.BENCH_PROFILE_ALLOC === "1";
const inspectorPort = 9300 + Math.floor(Math.random() * 500);

/**
 * A V8 CPU profile (Profiler.stop): the call tree's nodes, and the node of each sample with the time before it (µs).
 * @typedef {{
 *   nodes: { id: number, callFrame: { functionName: string, url: string, lineNumber: number } }[],
 *   samples: number[],
 *   timeDeltas: number[],
 * }} CpuProfile
 */

/** @typedef {{ functionName: string, url: string, lineNumber: number }} CallFrame */

/**
 * A call frame's file (the last part of its URL) and its function named with file and line, as both profiles print them.
 * @param {CallFrame} frame
 */
function frameName({ functionName, url, lineNumber }) {
  const file = url ? (url.split("/").at(-1) ?? url) : "(native)";
  return { file, name: `${functionName || "(anonymous)"} ${file}:${lineNumber + 1}` };
}

/**
 * Self time per function and per file, from a V8 CPU profile.
 * @param {CpuProfile} profile
 */
function summarize(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  /** @type {Map<number, number>} */
  const self = new Map();
  profile.samples.forEach((nodeId, i) => self.set(nodeId, (self.get(nodeId) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  /** @type {Map<string, number>} */
  const fns = new Map();
  /** @type {Map<string, number>} */
  const files = new Map();
  for (const [nodeId, us] of self) {
    const node = byId.get(nodeId);
    if (!node) continue;
    const { file, name } = frameName(node.callFrame);
    fns.set(name, (fns.get(name) ?? 0) + us);
    files.set(file, (files.get(file) ?? 0) + us);
  }
  /** @type {(m: Map<string, number>, n: number) => string[]} */
  const top = (m, n) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, us]) => `${((100 * us) / total).toFixed(1).padStart(5)}%  ${k}`);
  return { total, functions: top(fns, 40), files: top(files, 15) };
}

/**
 * A sampling heap profile (HeapProfiler.stopSampling): a tree of call frames, each with the
 * bytes allocated in it.
 * @typedef {{ callFrame: CallFrame, selfSize: number, children: HeapNode[] }} HeapNode
 */

/**
 * Bytes a request by function, from a sampling heap profile over `requests` requests.
 * @param {{ head: HeapNode }} profile
 * @param {number} requests
 */
function allocationsOf(profile, requests) {
  /** @type {Map<string, number>} */
  const fns = new Map();
  /** @type {HeapNode[]} */
  const stack = [profile.head];
  for (let node = stack.pop(); node; node = stack.pop()) {
    const { name } = frameName(node.callFrame);
    if (node.selfSize > 0) fns.set(name, (fns.get(name) ?? 0) + node.selfSize);
    stack.push(...node.children);
  }
  const total = [...fns.values()].reduce((a, b) => a + b, 0);
  const lines = [...fns]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 40)
    .map(([name, bytes]) => `${(bytes / requests).toFixed(0).padStart(6)} B  ${name}`);
  return { perRequest: total / requests, lines };
}

async function main() {
  const work = mkdtempSync(join(tmpdir(), "zgate-profile-"));
  track(() => rmSync(work, { recursive: true, force: true }), { dir: work });
  const storage = storageRoot("tmpfs");
  track(() => rmSync(storage, { recursive: true, force: true }), { dir: storage });
  const built = await whileBuilding(buildAll(work));
  const origin = await startOrigin();
  track(origin.stop, { pids: [origin.pid] });
  const settings = zgateSettings(origin.url, 1);
  const zgate = await startZgate({ scriptPath: built.zgate, settings, compat: readCompatibility(), storage, inspectorPort });
  track(zgate.stop, { pids: zgate.pids });
  await applyMigrations(zgate.mf);
  const c = (await requestCases(zgate.url, settings)).find((x) => x.id === caseId);
  if (!c) throw new Error(`no case ${caseId}`);
  const load = (/** @type {number} */ duration) =>
    measure({
      url: zgate.directUrl + c.path,
      method: c.method,
      headers: c.headers,
      body: c.body,
      connections: 8,
      duration,
      expect: c.expect,
    });
  await load(2); // warm-up: leases, caches, JIT
  const session = await inspect(inspectorPort);
  if (allocations) {
    // Every object sampled at one in 128 bytes on average, those the GC took since included.
    await session.send("HeapProfiler.enable");
    await session.send("HeapProfiler.startSampling", {
      samplingInterval: 128,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
    const result = await load(seconds);
    const { profile } = /** @type {{ profile: { head: HeapNode } }} */ (await session.send("HeapProfiler.stopSampling"));
    session.close();
    if (process.env.BENCH_PROFILE_OUT) writeFileSync(process.env.BENCH_PROFILE_OUT, JSON.stringify(profile));
    const { perRequest, lines } = allocationsOf(profile, result.requests);
    console.log(`case ${caseId} (${c.title}), inspector target "${session.title}": ${result.requests} requests in ${seconds} s`);
    console.log(`JS heap allocated: ${perRequest.toFixed(0)} bytes a request (sampled)\n\nby function (bytes a request):`);
    for (const line of lines) console.log(line);
    return;
  }
  await session.send("Profiler.enable");
  await session.send("Profiler.setSamplingInterval", { interval: 200 });
  await session.send("Profiler.start");
  const result = await load(seconds);
  const { profile } = /** @type {{ profile: CpuProfile }} */ (await session.send("Profiler.stop"));
  session.close();
  if (process.env.BENCH_PROFILE_OUT) writeFileSync(process.env.BENCH_PROFILE_OUT, JSON.stringify(profile));
  const summary = summarize(profile);
  console.log(`case ${caseId} (${c.title}), inspector target "${session.title}": ${result.requests} requests in ${seconds} s`);
  console.log(`profiled ${(summary.total / 1000).toFixed(0)} ms of samples\n\nself time by file:`);
  for (const line of summary.files) console.log(line);
  console.log("\nself time by function:");
  for (const line of summary.functions) console.log(line);
}

try {
  await main();
} finally {
  await cleanup();
}
