import type { Identity } from "../auth/identity";
import type { Env } from "../env";

/** The guard object that owns an account's mutable state: one per `<product>:<account>`. */
export function guardFor(env: Env, identity: Pick<Identity, "product" | "accountId">) {
  return env.ACCOUNT_GUARD.get(env.ACCOUNT_GUARD.idFromName(`${identity.product}:${identity.accountId}`));
}

/** The guard that counts an unauthenticated client's windows. `|` never occurs in the names above. */
export function ipGuardFor(env: Env, product: string, ip: string) {
  return env.ACCOUNT_GUARD.get(env.ACCOUNT_GUARD.idFromName(`ip|${product}|${ip}`));
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
