import type { Settings } from "../config/settings";
import { retryAfterSeconds } from "../limits/calendar";
import type { AdmitDecision } from "../limits/guard-protocol";
import { Lru } from "../util/lru";
import * as clock from "../util/clock";

/**
 * Refusals that stand. A sliding window the guard found full stays full until the time it
 * gave (Retry-After): only time empties it. So the isolate remembers such a refusal for as
 * long as the guard lets it stand (`standsMs`) and gives the same subject's next requests
 * the same 429 meanwhile, with no guard call: under abuse a refused request costs the
 * isolate alone, not a Durable Object request. A client address's refusal stands until
 * its Retry-After; a credential's at most a lease life, and the guard holds it like a
 * lease, so a revoke or a raised limit still waits for it and applies to the very next
 * request (guard/account-guard.ts `refusalStands`).
 *
 * It can only refuse, and only what the guard would refuse:
 * - Requests that share a key (guard-protocol.ts leaseBookKey) are counted in the same windows under
 *   the same subjects: one credential on one route (and job), as the lease book names
 *   them, or one client address on one route. So the window that refused one refuses the next.
 * - Only `rate_limited` is remembered. Quota, job-slot and suspension refusals can end
 *   before their Retry-After (a job ends, an admin lifts a suspension or a cap).
 * - It never admits. Unspent lease tokens handed back may open room a little before a
 *   remembered refusal ends: the next request after it is asked about.
 */

type Refused = Extract<AdmitDecision, { retryAfter: number }>;

interface Standing {
  /** Local time the refusal ends: the guard's Retry-After counted from its answer's arrival, so never before the guard's own end. */
  until: number;
  /** Local time this isolate stops repeating it (at most `until`). */
  standsUntil: number;
  /** Local time the answer arrived: the windows' resets count down from it. */
  at: number;
  decision: Refused;
}

// Bounded like every isolate cache: an evicted refusal only costs one more guard call.
const MAX_ENTRIES = 4_096;

export class StandingRefusals {
  private readonly entries = new Lru<string, Standing>(MAX_ENTRIES);

  /** The refusal standing for `key`, worded as of now; else the guard's answer (`ask`), remembered when it is a full window. */
  admit(key: string, ask: () => Promise<AdmitDecision>): Promise<AdmitDecision> {
    const standing = this.standing(key);
    if (standing) return Promise.resolve(standing);
    const askedAt = clock.now();
    // No async step of its own: every admission passes through here.
    return ask().then((decision) => this.remember(key, decision, askedAt));
  }

  private remember(key: string, decision: AdmitDecision, askedAt: number): AdmitDecision {
    if (!decision.allow && decision.refusal === "rate_limited" && decision.standsMs) {
      // The refusal's end counted from the answer's arrival, later than the guard's own
      // count: never past its end. Its stand counted from before the ask, earlier than the
      // guard's hold (which a mutation waits for): repeated past that hold, it would answer
      // a credential revoked meanwhile with this 429 rather than a 401.
      const at = clock.now();
      this.entries.set(key, { until: at + decision.retryAfter * 1000, standsUntil: askedAt + decision.standsMs, at, decision });
    }
    return decision;
  }

  private standing(key: string): Refused | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    const now = clock.now();
    if (now >= entry.standsUntil) {
      this.entries.delete(key);
      return undefined;
    }
    // Rounded up to whole seconds as the guard rounds, so Retry-After counts down to the same end.
    const { at, decision } = entry;
    return {
      ...decision,
      retryAfter: retryAfterSeconds(entry.until, now),
      windows: decision.windows.map((w) => ({ ...w, resetSeconds: Math.max(0, Math.ceil((at + w.resetSeconds * 1000 - now) / 1000)) })),
    };
  }
}

// One per parsed settings, like the lease book: other limits start with nothing remembered.
const caches = new WeakMap<Settings, StandingRefusals>();

export function standingRefusalsFor(settings: Settings): StandingRefusals {
  let cache = caches.get(settings);
  if (!cache) {
    cache = new StandingRefusals();
    caches.set(settings, cache);
  }
  return cache;
}
