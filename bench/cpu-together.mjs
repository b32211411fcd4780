// CPU per request of several workerds driven at the same time (`BENCH_AB_TOGETHER=1 npm
// run bench:ab`). On these shared cores the CPU a request costs moves by 10-15% from one
// run to the next (the machine's other tenants), so sides measured one after the other
// (cpu-pairs.mjs) differ by more than a change to zgate saves: two runs of one build
// differed by up to 0.1 ms a request. Driven at once, every side meets the same moments of
// the machine; each window reads every side's CPU time and answers over the same stretch,
// and the figure is a ratio per window. Two workerds of one build, driven so for 20 windows
// of 5 s, came out 4% apart at the median (0.92-1.09 by window): it tells a few percent,
// not less, as two processes of one build may differ by that much for as long as they run.
// The sides compete for the cores, so each one's CPU per request is higher than alone:
// read the ratios, not the absolute figures.
import autocannon from "autocannon";
import { cpuTimeNs } from "./workers.mjs";

/**
 * One side: its request (as load.mjs `measure` takes it, without duration or count) and the
 * workerd whose CPU it costs.
 * @typedef {{ name: string, load: Omit<Parameters<typeof import("./load.mjs").measure>[0], "duration" | "amount">, instance: Pick<import("./workers.mjs").Instance, "pids"> }} TogetherSide
 */
/** @typedef {{ load: number, sides: Record<string, { requests: number, cpuMsPerRequest: number, unexpected: number }> }} TogetherWindow */

/**
 * Drives every side at once without pause, warms up for `warmupMs`, then reads each side's
 * CPU time and answers over `windows` windows of `windowMs`.
 * @param {TogetherSide[]} sides
 * @param {{ windows: number, windowMs: number, warmupMs: number, loadNow: () => number }} config
 * @returns {Promise<TogetherWindow[]>}
 */
export async function cpuTogether(sides, { windows, windowMs, warmupMs, loadNow }) {
  const seconds = (warmupMs + windows * windowMs) / 1000 + 5;
  const driven = sides.map((side) => {
    const { url, method = "GET", headers = {}, body, connections, expect = 200 } = side.load;
    const counted = { answers: 0, unexpected: 0 };
    /** @type {() => void} */
    let done = () => {};
    const stopped = new Promise((resolve) => (done = () => resolve(undefined)));
    const instance = autocannon({ url, method, headers, body, connections, duration: seconds, timeout: 10 }, () => done());
    instance.on("response", (_client, status) => {
      counted.answers++;
      if (status !== expect) counted.unexpected++;
    });
    return { side, counted, instance, stopped };
  });
  const sleep = (/** @type {number} */ ms) => new Promise((resolve) => setTimeout(resolve, ms));
  /** @type {TogetherWindow[]} */
  const out = [];
  try {
    await sleep(warmupMs);
    for (let w = 0; w < windows; w++) {
      const load = loadNow();
      const before = driven.map(({ side, counted }) => ({
        ns: cpuTimeNs(side.instance),
        answers: counted.answers,
        unexpected: counted.unexpected,
      }));
      await sleep(windowMs);
      /** @type {TogetherWindow["sides"]} */
      const figures = {};
      driven.forEach(({ side, counted }, i) => {
        const start = /** @type {(typeof before)[number]} */ (before[i]);
        const requests = counted.answers - start.answers;
        const ns = cpuTimeNs(side.instance) - start.ns;
        figures[side.name] = {
          requests,
          cpuMsPerRequest: requests > 0 ? ns / 1e6 / requests : NaN,
          unexpected: requests > 0 ? (counted.unexpected - start.unexpected) / requests : 1,
        };
      });
      out.push({ load, sides: figures });
    }
  } finally {
    driven.forEach(({ instance }) => instance.stop());
    await Promise.all(driven.map(({ stopped }) => stopped));
  }
  return out;
}
