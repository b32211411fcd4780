// @ts-check
// `npm run bench:cost`'s default_key_1rps cases (cost-cases.mjs DEFAULT_KEY_CASE): one
// ZappWay Free key at 1 req/s, two isolates alternating, at the default limits, with its
// account's guard next door or a region away (default_key_1rps_far: each guard call waits
// the case's guardDelayMs, bench/guard-distance.mjs). Each run
// has a workerd of its own: the counted Worker (cost-worker.mjs) in two zgate isolates
// and the guard objects in a third (workers.mjs startZgateIsolates), on storage of its
// own, so the runs can go side by side (at 1 req/s the machine is idle) and each one's
// counters and CPU time are its alone. The counters of the three isolates are summed.
import { rmSync } from "node:fs";
import { createKey } from "./cases.mjs";
import { defaultLimitSettings } from "./cost-cases.mjs";
import { addTrees, counterDelta, drainedCharge, perUnit, scaleBy } from "./cost-model.mjs";
import { track } from "./harness.mjs";
import { applyMigrations, cpuTimeMs, readCompatibility, startZgateIsolates, storageRoot } from "./workers.mjs";

/** @typedef {{ [name: string]: number | CounterTree }} CounterTree */
/** @typedef {Parameters<typeof perUnit>[0]["delta"]} Counters What the counted Worker's `/__bench/counters` answers. */
/**
 * @typedef {{
 *   scriptPath: string,
 *   originUrl: string,
 *   storage: "tmpfs" | "disk",
 *   requests: number,
 *   intervalMs: number,
 *   usageFlushMs: number,
 *   quietMs: number,
 *   idleMs: number,
 *   log: (msg: string) => void,
 * }} DefaultKeyOptions
 * `requests` at one every `intervalMs`; the stretch ends once no Durable Object call (a
 * guard's or a usage log's) was made for `quietMs`. Beforehand the workerds' CPU is read
 * over `idleMs` with no request at all.
 */

/** Longest wait for the Durable Object calls to stop after the last request. */
const QUIET_DEADLINE_MS = 120_000;
const ISOLATES = ["isolate-0", "isolate-1"];

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
/** @typedef {import("./cost-cases.mjs").DefaultKeyCase} DefaultKeyCase */

/**
 * All runs side by side; resolves each run's measured stretch (cost.mjs `Measured`).
 * @param {DefaultKeyCase} keyCase
 * @param {number} runs
 * @param {DefaultKeyOptions} options
 */
export function defaultKeyRuns(keyCase, runs, options) {
  return Promise.all(Array.from({ length: runs }, (_, run) => defaultKeyRun(keyCase, run, options)));
}

/**
 * @param {DefaultKeyCase} keyCase
 * @param {number} run
 * @param {DefaultKeyOptions} options
 */
async function defaultKeyRun(
  keyCase,
  run,
  { scriptPath, originUrl, storage: storageKind, requests, intervalMs, usageFlushMs, quietMs, idleMs, log },
) {
  const storage = storageRoot(storageKind);
  const dropStorage = track(() => rmSync(storage, { recursive: true, force: true }), { dir: storage });
  const settings = defaultLimitSettings(originUrl, usageFlushMs);
  const zgate = await startZgateIsolates({
    scriptPath,
    settings,
    compat: readCompatibility(),
    storage,
    isolates: ISOLATES.map((name) => ({ name, bindings: { BENCH_DELAY_MS: String(keyCase.guardDelayMs) } })),
  });
  const stop = track(zgate.stop, { pids: zgate.pids });
  try {
    await applyMigrations(zgate.mf);
    const bases = ISOLATES.map((name) => `${zgate.urls[name]}`);
    const all = [...bases, zgate.guardHostUrl];
    /** @returns {Promise<Counters>} the three isolates' counters, summed */
    const counters = async () => {
      /** @type {CounterTree} */
      let sum = {};
      for (const base of all) {
        const response = await fetch(`${base}/__bench/counters`);
        if (!response.ok) throw new Error(`reading the counters: ${response.status} ${await response.text()}`);
        sum = addTrees(sum, await response.json());
      }
      return /** @type {Counters} */ (/** @type {unknown} */ (sum));
    };
    // Durable Object calls: the guards' and the usage logs' (cost-worker.mjs counts them together).
    const objectCalls = async () => (await counters()).guard.calls;
    const snapshot = async () => ({ counters: await counters(), cpuMs: cpuTimeMs(zgate) });
    // The alarms pending in the objects each isolate reached, run when they are due, down to
    // retention months later (cost.mjs drain()): one isolate after the other, as each stands
    // the objects' clock where their alarms are due.
    const drain = async () => {
      /** @type {import("./cost-model.mjs").Drained[]} */
      const drained = [];
      for (const base of all) {
        const response = await fetch(`${base}/__bench/drain`, { method: "POST" });
        if (!response.ok) throw new Error(`drain: ${response.status} ${await response.text()}`);
        drained.push(...(await response.json()));
      }
      return drained;
    };

    const key = await createKey(zgate.url, settings, { product: "zappway", account: keyCase.account });
    // Every isolate starts with its first request (the bench route): that belongs to no case.
    await counters();
    await drain();
    // What the workerds spend with nothing to do (timers, the runtime's own upkeep): at 1
    // req/s it is much of the stretch's CPU, which Cloudflare would not bill. Shown, not subtracted.
    const idleFrom = cpuTimeMs(zgate);
    await sleep(idleMs);
    const idleCpuMsPerSecond = Math.round(((cpuTimeMs(zgate) - idleFrom) / idleMs) * 1000 * 100) / 100;
    const before = await snapshot();

    /** @type {Record<string, number>} */
    const statuses = {};
    const started = performance.now();
    /** @type {Promise<void>[]} */
    const pending = [];
    for (let i = 0; i < requests; i++) {
      const wait = started + i * intervalMs - performance.now();
      if (wait > 0) await sleep(wait);
      const req = keyCase.request(key);
      // Cloudflare's edge adds the client address; these sockets are the isolates' own.
      const headers = { ...req.headers, "CF-Connecting-IP": "198.51.100.21" };
      pending.push(
        fetch(`${bases[i % bases.length]}${req.path}`, { headers }).then(
          async (response) => {
            await response.arrayBuffer();
            statuses[response.status] = (statuses[response.status] ?? 0) + 1;
          },
          () => {
            statuses.error = (statuses.error ?? 0) + 1;
          },
        ),
      );
    }
    await Promise.all(pending);
    const seconds = Math.round((performance.now() - started) / 10) / 100;
    const unexpected = Object.keys(statuses).filter((s) => !keyCase.expect.includes(Number(s)));
    if (unexpected.length) throw new Error(`${keyCase.id}: answers other than ${keyCase.expect.join(" or ")}: ${JSON.stringify(statuses)}`);

    // Counted until the key's object calls stop (lease refunds; renewals, if zgate renews ahead).
    const deadline = Date.now() + QUIET_DEADLINE_MS;
    let calls = await objectCalls();
    let quietSince = Date.now();
    while (Date.now() - quietSince < quietMs) {
      if (Date.now() > deadline)
        throw new Error(`${keyCase.id}: Durable Object calls went on ${QUIET_DEADLINE_MS / 1000} s after the last request`);
      await sleep(Math.min(1_000, quietMs));
      const now = await objectCalls();
      if (now !== calls) [calls, quietSince] = [now, Date.now()];
    }
    // Then the usage it gathered is appended (USAGE_FLUSH_MS), and every alarm it set has run.
    await sleep(usageFlushMs + 400);
    const drained = await drain();
    const after = await snapshot();
    // The key calls on: its objects' alarms charged by their period (cost-model.mjs drainedCharge).
    const { raw, charged } = drainedCharge(drained, seconds);
    const delta = /** @type {Counters} */ (addTrees(addTrees(counterDelta(after.counters, before.counters), scaleBy(raw, -1)), charged));
    log(`${keyCase.id} run ${run + 1}: ${requests} requests in ${seconds} s, answers ${JSON.stringify(statuses)}`);
    return {
      units: requests,
      statuses,
      seconds,
      idleCpuMsPerSecond,
      counts: perUnit({ delta, units: requests, workerRequests: requests, cpuMs: after.cpuMs - before.cpuMs }),
    };
  } finally {
    await stop();
    await dropStorage();
  }
}
