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
