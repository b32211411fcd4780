import type { Env } from "../env";
import { GatewayError } from "../http/errors";
import type { ProductId } from "../products/types";
import { Lru } from "../util/lru";
import * as clock from "../util/clock";
import { guardUnavailable, ipGuardFor } from "../admit/guard-client";
import type { WindowPolicy } from "../limits/types";

/**
 * Failed authentications, limited per client address. Each failure is one call to the
 * guard that counts the address's windows (`ip|<product or report>|<shard>`, shared with
 * other addresses: guard-client.ts `ipGuardFor`), which counts it in an exact window;
 * failures are the abnormal case, so successes cost nothing here. Once the address's
 * window is full, the isolate remembers it until the window has room again (whole
 * seconds, rounded up) and refuses its failures with no guard call meanwhile (key
 * identification also reads no more than KV for it: auth/identify.ts).
 */
export interface FailureSubject {
  /** `report`: calls of the public leaked-key report, limited per address the same way. */
  guard: ProductId | "report";
  /** From clientAddress(); a request without one is not counted (it did not come through Cloudflare). */
  address: string | undefined;
  policy: WindowPolicy;
  /** The 429's message; failed authentications by default. */
  message?: string;
}

/** Whose refusal an isolate remembers: a failure subject's, or `admin` for admin credentials (edge/admin-logins.ts). */
type RefusedSubject = Pick<FailureSubject, "address" | "message"> & { guard: FailureSubject["guard"] | "admin" };

// `<guard>|<address>` -> when the guard's refusal ends (ms). Bounded like every isolate cache.
const refusedUntil = new Lru<string, number>(10_000);

const TOO_MANY = "Too many failed authentication attempts, retry later";

const tooMany = (subject: RefusedSubject, retryAfter: number) =>
  new GatewayError("RATE_LIMITED", subject.message ?? TOO_MANY, { "Retry-After": String(retryAfter) });

/** How long this isolate knows the address is over its limit for (ms; 0: not known to be). */
function refusalLeft(subject: RefusedSubject): number {
  const until = subject.address ? refusedUntil.get(`${subject.guard}|${subject.address}`) : undefined;
  return until === undefined ? 0 : Math.max(0, until - clock.now());
}

/** Whether this isolate knows the address is over its limit. */
export const isOverLimit = (subject: RefusedSubject): boolean => refusalLeft(subject) > 0;

/** 429 with Retry-After when this isolate knows the address is over its limit; else nothing. */
export function refuseIfOverLimit(subject: RefusedSubject): void {
  const left = refusalLeft(subject);
  if (left > 0) throw tooMany(subject, Math.ceil(left / 1000));
}

/**
 * A guard refused the address for `retryAfter` seconds: only time ends such a refusal,
 * so this isolate repeats it until then without asking. Returns the 429 to throw.
 */
export function rememberRefusal(subject: RefusedSubject, retryAfter: number): GatewayError {
  refusedUntil.set(`${subject.guard}|${subject.address}`, clock.now() + retryAfter * 1000);
  return tooMany(subject, retryAfter);
}

/**
 * Counts one failed authentication. Returns when the address is within its limit (the
 * caller answers 401); throws 429 when it is over, and 503 when the guard cannot be
 * reached (fail closed, as every guard call does).
 */
export async function countFailure(env: Env, subject: FailureSubject): Promise<void> {
  const { address } = subject;
  if (!address) return;
  refuseIfOverLimit(subject);
  const decision = await (
    await ipGuardFor(env, subject.guard, address)
  )
    .admit({ product: subject.guard, route: { scope: "auth", sessionOnly: false }, ip: address, limits: { windows: [subject.policy] } })
    .catch(guardUnavailable);
  if (decision.allow) {
    // This failure filled the window: the next one is refused here, with no guard call.
    const window = decision.windows[0];
    if (window && window.remaining === 0) rememberRefusal(subject, window.resetSeconds);
    return;
  }
  if (decision.refusal !== "rate_limited") return;
  throw rememberRefusal(subject, decision.retryAfter);
}
