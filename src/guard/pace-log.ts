import { MAX_IDLE_MS, type Pace } from "../limits/guard-protocol";
import { Lru } from "../util/lru";

/**
 * How often each subject calls, as this guard hears of it from every isolate (issue 26).
 * Far from the guard, an isolate renews a slow subject's lease timed to its next request,
 * and could foresee that only from a gap between two requests of its own: so each
 * isolate's second request of a subject waited a round trip. The guard hears of the
 * subject from every isolate, and tells an isolate that does not know the subject yet the
 * gap it may expect there:
 * - the gap an isolate measured between its own requests of the subject, as its latest
 *   renewal or request reported it within MAX_IDLE_MS (a subject whose isolates hold
 *   leases asks the guard only through their renewals); else
 * - from the subject's last few requests that asked the guard (renewals are not
 *   requests: a renewal the hint itself caused must not shorten the next hint), which
 *   isolate made each, over the last MAX_IDLE_MS: their mean gap times the isolates they
 *   came through (the asker included), since a subject spread over I isolates reaches
 *   each about every I of its gaps.
 *
 * A hint only times renewals: one too short costs renewals the isolate did not need (it
 * keeps the lease alive until twice the hinted gap has passed, at most MAX_IDLE_MS), one
 * too long a wait for the guard, as without a hint; never an admission. A slow subject
 * whose every request lands in an isolate new to it is hinted its gap times the isolates
 * of its last requests plus one: at a request a second, from five isolates on, longer
 * than an isolate keeps anything alive (MAX_IDLE_MS), so no hint at all. Memory only: a
 * restarted guard hints nothing until it has heard of the subject again.
 */

/** Requests kept per subject (isolate and time). */
const ASKS_KEPT = 6;
/** Subjects kept; the least recently heard of is forgotten first. */
const MAX_SUBJECTS = 1_024;

type Ask = [isolate: number, at: number];

interface Heard {
  /** Its latest requests that asked the guard, oldest first. */
  asks: Ask[];
  /** The latest gap an isolate measured between its own requests of it, and when it was told. */
  gap?: { ms: number; at: number };
}

export class PaceLog {
  private readonly subjects = new Lru<string, Heard>(MAX_SUBJECTS);

  /**
   * Notes what an isolate tells of a subject, with a request of it that asks the guard
   * (`request`) or a renewal; returns the gap hint the isolate asked for (`pace.ask`), if any.
   */
  note(pace: Pace, now: number, request: boolean): number | undefined {
    const heard = this.subjects.get(pace.subject) ?? { asks: [] };
    heard.asks = heard.asks.filter(([, at]) => now - at <= MAX_IDLE_MS);
    const hint = pace.ask ? hintOf(heard, pace.isolate, now) : undefined;
    if (pace.gap !== undefined) heard.gap = { ms: pace.gap, at: now };
    if (request) {
      heard.asks.push([pace.isolate, now]);
      if (heard.asks.length > ASKS_KEPT) heard.asks.shift();
    }
    this.subjects.set(pace.subject, heard);
    return hint;
  }
}

/** The gap an isolate new to the subject may expect between its requests (none: no hint). */
function hintOf({ asks, gap }: Heard, isolate: number, now: number): number | undefined {
  let ms: number;
  if (gap && now - gap.at <= MAX_IDLE_MS) ms = gap.ms;
  else if (asks.length > 0) ms = ((now - asks[0]![1]) / asks.length) * new Set([...asks.map(([id]) => id), isolate]).size;
  else return undefined;
  return ms > 0 && ms <= MAX_IDLE_MS ? Math.round(ms) : undefined;
}
