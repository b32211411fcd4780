import { Ratelimit } from "@upstash/ratelimit";
import { Redis } from "@upstash/redis/cloudflare";
import type { Settings } from "../config/settings";
import { GatewayError } from "../http/errors";
import type { Admission } from "./windows";
import type { AdmitDecision, AdmitRequest, WindowReport } from "../limits/guard-protocol";
import { countedWindows, subjectIds, type CountedWindow } from "../limits/policies";
import type { WindowPolicy } from "../limits/types";
import { Lru } from "../util/lru";

/**
 * Sliding windows counted in Upstash Redis (`LIMITER_BACKEND=upstash`), for teams that
 * share limits with services outside Cloudflare. Only the windows move: key status,
 * revocation, quotas and job slots stay in the account guard.
 *
 * What this backend gives up, on purpose and in docs/limits.md:
 * - `@upstash/ratelimit`'s sliding window weights the previous fixed window, so it is
 *   approximate: up to ~1.5 N can pass in some windows of length W (bench:accuracy).
 * - `Retry-After` is an upper bound: the end of the current fixed window. By then the
 *   request is admitted (a refused subject adds nothing, and the current window never
 *   holds more than N), but it may already pass a little earlier.
 * - Several windows are separate Redis calls, not one atomic decision: a window that
 *   admitted still counts a request another window refused.
 * Ephemeral cache: on. It only ever refuses, and only until the reset Redis itself
 * returned, so it cannot admit anything Redis would not; under abuse it spares Redis
 * a round trip per refused request. (A raised per-key limit applies after that reset.)
 * It is an LRU of REFUSAL_CACHE_SIZE subjects like every per-isolate cache: refused
 * subjects are what an abuser can make without end.
 * Timeouts and errors are ours, not the library's (its `timeout` admits on expiry):
 * after UPSTASH_TIMEOUT_MS or on an error the request fails closed (503) unless
 * UPSTASH_FAIL_OPEN is set, in which case it is admitted and the incident logged.
 */
const limiters = new Map<string, Ratelimit>();
const REFUSAL_CACHE_SIZE = 10_000;
/** Refused subject -> when Redis said it resets (ms); shared by this isolate's limiters. */
export const upstashRefusals = new Lru<string, number>(REFUSAL_CACHE_SIZE);

function limiterFor(settings: Settings, policy: WindowPolicy): Ratelimit {
  const id = `${settings.UPSTASH_REDIS_REST_URL}|${policy.limit}|${policy.windowSeconds}`;
  let limiter = limiters.get(id);
  if (!limiter) {
    limiter = new Ratelimit({
      redis: new Redis({
        url: settings.UPSTASH_REDIS_REST_URL!,
        token: settings.UPSTASH_REDIS_REST_TOKEN!,
        retry: { retries: 0 },
        enableTelemetry: false,
      }),
      limiter: Ratelimit.slidingWindow(policy.limit, `${policy.windowSeconds} s`),
      prefix: "zgate:rl",
      ephemeralCache: upstashRefusals,
      timeout: 0,
      analytics: false,
    });
    limiters.set(id, limiter);
  }
  return limiter;
}

export interface WindowVerdict {
  allowed: boolean;
  windows: WindowReport[];
  retryAfter: number;
}

/**
 * The Upstash implementation of Admission (windows.ts): the guard decides everything but
 * the windows, then Redis counts them. A generate call the guard reserved an allowance
 * and a job slot for, and that Redis refuses (or cannot be asked about), gives them back
 * before the refusal is returned: undoing is this backend's own business.
 */
export function upstashAdmission(settings: Settings): Admission {
  return {
    async admit(request, link) {
      const decision: AdmitDecision = request.credential
        ? await link.guard().admit({ ...request, windowsElsewhere: true })
        : { allow: true, windows: [] };
      if (!decision.allow) return decision;
      const basis = { account: decision.accountPlan, key: decision.key, tier: request.credential?.tier };
      const counted = countedWindows(request.limits, basis, subjectIds(request.credential, decision.key, request.accountId, request.ip));
      const undo = async () => {
        const generation = request.limits.generation;
        if (decision.reservationId && generation) await link.guard().settleGeneration(decision.reservationId, "refused", null, generation);
      };
      let verdict: WindowVerdict;
      try {
        verdict = await upstashWindows(settings, counted, link.waitUntil);
      } catch (err) {
        await undo();
        throw err;
      }
      if (!verdict.allowed) {
        await undo();
        return {
          allow: false,
          refusal: "rate_limited",
          message: "Rate limit exceeded",
          retryAfter: verdict.retryAfter,
          windows: verdict.windows,
        };
      }
      return { ...decision, windows: verdict.windows };
    },
  };
}

async function upstashWindows(
  settings: Settings,
  counted: CountedWindow[],
  waitUntil: (p: Promise<unknown>) => void,
  now = Date.now(),
): Promise<WindowVerdict> {
  if (counted.length === 0) return { allowed: true, windows: [], retryAfter: 0 };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("upstash timeout")), settings.UPSTASH_TIMEOUT_MS);
  });
  let results;
  try {
    results = await Promise.race([Promise.all(counted.map(({ policy, subject }) => limiterFor(settings, policy).limit(subject))), timeout]);
  } catch (err) {
    console.error(
      JSON.stringify({ msg: "limiter_unavailable", backend: "upstash", error: err instanceof Error ? err.message : "unknown" }),
    );
    if (settings.UPSTASH_FAIL_OPEN) return { allowed: true, windows: [], retryAfter: 0 };
    throw new GatewayError("SERVICE_UNAVAILABLE", "Service temporarily unavailable, please retry", { "Retry-After": "1" });
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
  for (const r of results) waitUntil(r.pending);
  const windows = results.map((r, i) => ({
    name: counted[i]!.policy.name,
    limit: counted[i]!.policy.limit,
    windowSeconds: counted[i]!.policy.windowSeconds,
    remaining: Math.max(0, r.remaining),
    resetSeconds: Math.max(0, Math.ceil((r.reset - now) / 1000)),
  }));
  const refused = results.filter((r) => !r.success);
  const retryAfter = refused.length ? Math.max(1, ...refused.map((r) => Math.ceil((r.reset - now) / 1000))) : 0;
  return { allowed: refused.length === 0, windows, retryAfter };
}
