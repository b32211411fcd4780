// @ts-check
// What the benches that drive zgate's isolates (bench:distance, bench:scale) read from the
// client's side: answers by status, whether a limit held judged from the responses alone,
// and a figure's spread over runs.
import { median, round } from "./load.mjs";

/**
 * A request as the client saw it: sent and answered (ms, on one clock), and its status.
 * @typedef {{ sentAt: number, answeredAt: number, status: number }} Answered
 */
/** @typedef {{ median: number | null, range: (number | null)[] }} Spread */

/** @param {{ status: number }[]} sent */
export function statusCounts(sent) {
  /** @type {Record<string, number>} */
  const out = {};
  for (const r of sent) out[r.status] = (out[r.status] ?? 0) + 1;
  return out;
}

/**
 * A limit of `limit` per `windowMs`, judged from the client's side. An admission (200)
 * happened between its request's sending and its answer, so the admitted requests sent at
 * or after one's sending and answered within a window of it were all admitted inside one
 * window: the most of them is a lower bound on the most any window held, and above the
 * limit it is an overshoot for certain. `exactAdmits` is what an exact limiter deciding at
 * each sending would have admitted: fewer admitted than that are early 429s (or timing).
 * @param {Answered[]} sent
 * @param {number} limit
 * @param {number} windowMs
 */
export function judgeWindow(sent, limit, windowMs) {
  const bySending = [...sent].sort((a, b) => a.sentAt - b.sentAt);
  const admitted = bySending.filter((r) => r.status === 200);
  let most = 0;
  for (let i = 0; i < admitted.length; i++) {
    const end = /** @type {Answered} */ (admitted[i]).sentAt + windowMs;
    let inside = 0;
    for (let j = i; j < admitted.length && /** @type {Answered} */ (admitted[j]).sentAt < end; j++)
      if (/** @type {Answered} */ (admitted[j]).answeredAt < end) inside++;
    most = Math.max(most, inside);
  }
  /** @type {number[]} */
  const exact = [];
  let first = 0; // the oldest admission of `exact` still inside the window
  for (const r of bySending) {
    while (first < exact.length && /** @type {number} */ (exact[first]) <= r.sentAt - windowMs) first++;
    if (exact.length - first < limit) exact.push(r.sentAt);
  }
  return { limit, admitted: admitted.length, exactAdmits: exact.length, mostInOneWindow: most, held: most <= limit };
}

/**
 * The median and the lowest and highest of a figure over runs, to `digits` decimals.
 * @param {(number | null)[]} xs
 * @returns {Spread}
 */
export function spread(xs, digits = 1) {
  const present = xs.filter((x) => x !== null && Number.isFinite(x)).map(Number);
  if (present.length === 0) return { median: null, range: [null, null] };
  return { median: round(median(present), digits), range: [round(Math.min(...present), digits), round(Math.max(...present), digits)] };
}
