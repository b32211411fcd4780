import type { Env } from "../env";
import { GatewayError } from "../http/errors";
import type { ProductId } from "../products/types";
import { Lru } from "../util/lru";
import { ipGuardFor } from "./guard-client";
import type { WindowPolicy } from "../limits/types";

/**
 * Failed authentications, limited per client address. Each failure is one call to the
 * address's guard (`ip|<product or admin>|<address>`), which counts it in an exact
 * window; failures are the abnormal case, so successes cost nothing here. Once the
 * address's window is full, the isolate remembers it until the window has room again
 * (whole seconds, rounded up) and refuses it with no guard call and no lookup meanwhile.
 */
export interface FailureSubject {
  /** `report`: calls of the public leaked-key report, limited per address the same way. */
  guard: ProductId | "admin" | "report";
  /** From clientAddress(); a request without one is not counted (it did not come through Cloudflare). */
  address: string | undefined;
  policy: WindowPolicy;
  /** The 429's message; failed authentications by default. */
  message?: string;
}

// `<guard>|<address>` -> when the guard's refusal ends (ms). Bounded like every isolate cache.
const refusedUntil = new Lru<string, number>(10_000);

const TOO_MANY = "Too many failed authentication attempts, retry later";

/** 429 with Retry-After when this isolate knows the address is over its limit; else nothing. */
export function refuseIfOverLimit(subject: FailureSubject): void {
  if (!subject.address) return;
  const until = refusedUntil.get(`${subject.guard}|${subject.address}`);
  const left = until === undefined ? 0 : until - Date.now();
  if (left > 0) throw new GatewayError("RATE_LIMITED", subject.message ?? TOO_MANY, { "Retry-After": String(Math.ceil(left / 1000)) });
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
  const decision = await ipGuardFor(env, subject.guard, address)
    .admit({ product: subject.guard, route: { scope: "auth", sessionOnly: false }, ip: address, limits: { windows: [subject.policy] } })
    .catch(() => {
      throw new GatewayError("SERVICE_UNAVAILABLE", "Service temporarily unavailable, please retry", { "Retry-After": "1" });
    });
  const key = `${subject.guard}|${address}`;
  if (decision.allow) {
    // This failure filled the window: the next one is refused here, before its lookup.
    const window = decision.windows[0];
    if (window && window.remaining === 0) refusedUntil.set(key, Date.now() + window.resetSeconds * 1000);
    return;
  }
  if (decision.refusal !== "rate_limited") return;
  refusedUntil.set(key, Date.now() + decision.retryAfter * 1000);
  throw new GatewayError("RATE_LIMITED", subject.message ?? TOO_MANY, { "Retry-After": String(decision.retryAfter) });
}
