import type { Env } from "../env";
import type { CallPosition, UsageAccount, UsageLog } from "./usage-log-object";

/**
 * How isolate code (and the usage objects themselves) name the usage objects: an account's
 * usage log (src/usage/usage-log-object.ts) and the address index object of a client
 * address (src/usage/address-index.ts). Kept apart from the object classes so that what
 * imports it does not import the Durable Object runtime.
 */

/** The usage log object of an account, named like its guard: `<product>:<account>`. */
export function usageLogFor(env: Env, account: UsageAccount): DurableObjectStub<UsageLog> {
  return env.USAGE_LOG.getByName(`${account.product}:${account.accountId}`);
}

/** Address index objects: the search across accounts asks one (by address) or all of them. */
export const ADDRESS_INDEXES = 16;

/** The index object of an address (FNV-1a of its text). */
export function addressIndexFor(address: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < address.length; i++) hash = Math.imul(hash ^ address.charCodeAt(i), 0x01000193);
  return `addr|${(hash >>> 0) % ADDRESS_INDEXES}`;
}

/** Every address index object. */
export const addressIndexes = () => Array.from({ length: ADDRESS_INDEXES }, (_, n) => `addr|${n}`);

/** The hour (since the epoch) a call at `at` counts in, in the address index. */
export const usageHour = (at: number) => Math.floor(at / 3_600_000);

/** Listing order of calls across keys (a search): positive when `a` comes after `b` (is older). */
export function olderFirst(a: CallPosition, b: CallPosition): number {
  return b.t - a.t || (a.k < b.k ? 1 : a.k > b.k ? -1 : 0) || b.f - a.f || (a.b < b.b ? 1 : a.b > b.b ? -1 : 0) || b.i - a.i;
}
