import type { Identity } from "../auth/identity";
import type { Env } from "../env";

/** The guard object that owns an account's mutable credential state: one per `<product>:<account>`. */
export function guardFor(env: Env, identity: Pick<Identity, "product" | "accountId">) {
  return env.ACCOUNT_GUARD.get(env.ACCOUNT_GUARD.idFromName(`${identity.product}:${identity.accountId}`));
}
