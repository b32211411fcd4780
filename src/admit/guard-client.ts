import { loadSettings } from "../config/settings";
import type { Env } from "../env";
import type { Identity } from "../identify/identity";
import { GatewayError } from "../http/errors";
import { addressGuardName, addressShardSecret, ADMIN_GUARD_NAME } from "../limits/guard-protocol";

/**
 * The one way isolate code reaches a guard (account, client address, admin surface): the
 * object is named here, and a call cut off by a restart is repeated here.
 */
export type GuardClient = ReturnType<Env["ACCOUNT_GUARD"]["get"]>;

/**
 * The calls that wait for leases to run out (the guard's mutate()) can be cut off by a
 * restart (a deploy) after their change was applied. Each of these answers a repeat
 * consistently (a revoked key stays revoked, a finished rotation or roll reports success,
 * a limit or plan set again is the same, a settled reservation or a purged job stays so)
 * and the repeat waits for the leases again, so the client makes it once more. Not
 * repeated: `admit` (a repeat would count the request twice: its caller fails closed with
 * a 503 instead), `registerKey` (it waits for nothing),
 * `revokeAllKeys` (a repeat finds no key left to name: the guard's outbox delivers the
 * first call's result, keys/key-outbox.ts), and the calls that change nothing.
 */
const REPEATED_AFTER_RESTART: ReadonlySet<string> = new Set<keyof GuardClient>([
  "revokeKey",
  "rotateKey",
  "rollKey",
  "revokeSessions",
  "revokeToken",
  "setKeyLimits",
  "setAccountPlan",
  "setOverage",
  "liftSuspension",
  "settleGeneration",
  "finishJob",
  "purgeJobs",
]);

type Methods = Record<string, (...args: unknown[]) => Promise<unknown>>;

export function guardNamed(env: Env, name: string): GuardClient {
  const id = env.ACCOUNT_GUARD.idFromName(name);
  return new Proxy(env.ACCOUNT_GUARD.get(id), {
    get(stub, method) {
      if (typeof method !== "string" || !REPEATED_AFTER_RESTART.has(method)) return Reflect.get(stub, method);
      return async (...args: unknown[]) => {
        try {
          return await (stub as unknown as Methods)[method]!(...args);
        } catch {
          // A restart leaves the stub broken: the repeat goes through a new one.
          return (env.ACCOUNT_GUARD.get(id) as unknown as Methods)[method]!(...args);
        }
      };
    },
  });
}

/** The guard object that owns an account's mutable state: one per `<product>:<account>`. */
export function guardFor(env: Env, identity: Pick<Identity, "product" | "accountId">): GuardClient {
  return guardNamed(env, accountGuardName(identity));
}

export const accountGuardName = (identity: Pick<Identity, "product" | "accountId">) => `${identity.product}:${identity.accountId}`;

/**
 * The guard that counts a client address's windows (unauthenticated routes, failed
 * authentications): `address` is from clientAddress(), an IPv4 address or an IPv6 /64.
 * One of ADDRESS_GUARD_SHARDS (the setting) per scope, shared with other addresses and picked by a keyed
 * hash (addressGuardName); it deletes each address's row once its windows have passed.
 * `|` never occurs in the names above.
 */
export async function ipGuardFor(env: Env, scope: string, address: string): Promise<GuardClient> {
  return guardNamed(env, await addressGuardNameOf(env, scope, address));
}

/** The name of that guard (ipGuardFor's), under this deployment's settings. */
export async function addressGuardNameOf(env: Env, scope: string, address: string): Promise<string> {
  const { ORIGIN_ASSERTION_KEYS, ADDRESS_GUARD_SHARDS } = loadSettings(env);
  return addressGuardName(addressShardSecret(ORIGIN_ASSERTION_KEYS), ADDRESS_GUARD_SHARDS, scope, address);
}

/** A guard that cannot be reached: fail closed with a 503 to retry in a second, never an answer taken on trust. */
export function guardUnavailable(): never {
  throw new GatewayError("SERVICE_UNAVAILABLE", "Service temporarily unavailable, please retry", { "Retry-After": "1" });
}

/** The one guard of zgate's own admin surface: failed admin credentials, console sessions. */
export function adminGuardFor(env: Env): GuardClient {
  return guardNamed(env, ADMIN_GUARD_NAME);
}
