import type { Identity } from "../identify/identity";
import type { Env } from "../env";
import { GatewayError } from "../http/errors";
import { ADDRESS_GUARD_PREFIX, ADMIN_GUARD_NAME } from "../limits/guard-protocol";

/** The guard object that owns an account's mutable state: one per `<product>:<account>`. */
export function guardFor(env: Env, identity: Pick<Identity, "product" | "accountId">) {
  return env.ACCOUNT_GUARD.get(env.ACCOUNT_GUARD.idFromName(`${identity.product}:${identity.accountId}`));
}

/**
 * The guard that counts one client address's windows (unauthenticated routes, failed
 * authentications): `address` is from clientAddress(), an IPv4 address or an IPv6 /64.
 * It deletes its own storage once its windows have passed. `|` never occurs in the names above.
 */
export function ipGuardFor(env: Env, scope: string, address: string) {
  return env.ACCOUNT_GUARD.get(env.ACCOUNT_GUARD.idFromName(`${ADDRESS_GUARD_PREFIX}${scope}|${address}`));
}

/** A guard that cannot be reached: fail closed with a 503 to retry in a second, never an answer taken on trust. */
export function guardUnavailable(): never {
  throw new GatewayError("SERVICE_UNAVAILABLE", "Service temporarily unavailable, please retry", { "Retry-After": "1" });
}

/** The one guard of zgate's own admin surface: failed admin credentials, console sessions. */
export function adminGuardFor(env: Env) {
  return env.ACCOUNT_GUARD.get(env.ACCOUNT_GUARD.idFromName(ADMIN_GUARD_NAME));
}

/**
 * A guard call made once more if it fails. The calls that wait for leases to run out
 * can be cut off by a restart (a deploy) after their change was applied; each answers
 * a repeat consistently (a revoked key stays revoked, a finished rotation reports
 * success) and the repeat waits for the leases again.
 */
export async function retriedOnce<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch {
    return call();
  }
}
