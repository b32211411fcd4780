// One bounded load run with autocannon: fixed connections, fixed duration, and our
// own latency record. autocannon's histogram has 1 ms resolution and only counts 2xx
// answers; the target is "+1 ms at p50" and one case is all 429s, so every
// response's time (sub-millisecond, from autocannon's hrtime) is kept here instead.
import autocannon from "autocannon";

/**
 * One run's figures: requests answered, over how long, their rate, latency percentiles
 * (ms; NaN when nothing answered, null in JSON), answers by status, the share not of the
 * expected status, and autocannon's own errors and timeouts.
 * @typedef {{
 *   requests: number,
 *   seconds: number,
 *   rps: number,
 *   p50: number,
 *   p99: number,
 *   statuses: Record<number, number>,
 *   unexpected: number,
 *   errors: number,
 *   timeouts: number,
 * }} RunResult
 */

/**
 * @param {object} run
 * @param {string} run.url          full URL
 * @param {string} [run.method]
 * @param {Record<string,string>} [run.headers]
 * @param {string} [run.body]
 * @param {Record<string,string>[]} [run.headerSets] one per connection, round-robin (many keys)
 * @param {number} run.connections
 * @param {number} [run.duration]   seconds (default 30; the hard stop's base when `amount` is given)
 * @param {number} [run.amount]     a fixed request count instead of a duration (CPU per request)
 * @param {number} [run.expect]     the status every answer should have (default 200)
 * @param {number} [run.sampleMs]   autocannon's sampling tick: a run ends on the first tick after it is done (default 1000)
 * @returns {Promise<RunResult>}
 */
export function measure({
  url,
  method = "GET",
  headers = {},
  body,
  headerSets,
  connections,
  duration = 30,
  amount,
  expect = 200,
  sampleMs = 1000,
}) {
  /** @type {number[]} */
  const latencies = [];
  /** @type {Record<number, number>} */
  const statuses = {};
  let next = 0;
  /** @type {number | undefined} */
  let lastAnswer;
  const options = {
    url,
    method,
    headers,
    body,
    connections,
    duration,
    ...(amount ? { amount } : {}),
    sampleInt: sampleMs,
    timeout: 10,
    // Give each connection its own headers (e.g. its own API key) when asked to.
    setupClient: headerSets
      ? (/** @type {import("autocannon").Client} */ client) => client.setHeaders({ ...headers, ...headerSets[next++ % headerSets.length] })
      : undefined,
  };
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const instance = autocannon(options, (err, result) => {
      clearTimeout(hardStop);
      if (err) return reject(err);
      // autocannon reports a fixed-count run done only on its next 1 s tick: time it to the last answer.
      const seconds = ((amount ? (lastAnswer ?? performance.now()) : performance.now()) - started) / 1000;
      resolve(summarize({ latencies, statuses, seconds, expect, errors: result.errors, timeouts: result.timeouts }));
    });
    instance.on("response", (_client, status, _bytes, ms) => {
      latencies.push(ms);
      lastAnswer = performance.now();
      statuses[status] = (statuses[status] ?? 0) + 1;
    });
    // autocannon stops itself after `duration`; this is the belt to its braces.
    const hardStop = setTimeout(() => instance.stop(), (duration + 15) * 1000);
  });
}

/**
 * @param {{ latencies: number[], statuses: Record<number, number>, seconds: number, expect: number, errors: number, timeouts: number }} run
 * @returns {RunResult}
 */
function summarize({ latencies, statuses, seconds, expect, errors, timeouts }) {
  const sorted = Float64Array.from(latencies).sort();
  const total = sorted.length;
  const expected = statuses[expect] ?? 0;
  return {
    requests: total,
    seconds: round(seconds, 3),
    rps: round(total / seconds, 1),
    p50: round(percentile(sorted, 50), 3),
    p99: round(percentile(sorted, 99), 3),
    statuses,
    // Share of answers that were not the status the case is about (should be ~0).
    unexpected: total ? round((total - expected) / total, 4) : 1,
    errors,
    timeouts,
  };
}

/**
 * Nearest-rank percentile of an ascending array (NaN for an empty one: no figure, null in JSON).
 * @param {ArrayLike<number>} sorted
 * @param {number} p
 * @returns {number}
 */
export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return /** @type {number} */ (sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]);
}

/**
 * `x` to `digits` decimals; NaN and the infinities as they are.
 * @param {number} x
 * @param {number} digits
 */
export const round = (x, digits) => (!Number.isFinite(x) ? x : Number(x.toFixed(digits)));

/**
 * The median (the mean of the middle two of an even count); NaN for no values (no figure, null in JSON).
 * @param {readonly number[]} xs
 * @returns {number}
 */
export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = Math.floor(s.length / 2);
  const at = (/** @type {number} */ i) => /** @type {number} */ (s[i]);
  return s.length % 2 ? at(mid) : (at(mid - 1) + at(mid)) / 2;
};
