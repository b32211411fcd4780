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

/** A client address and an hour it called in: what the address index is told. */
export type SeenAddress = [address: string, hour: number];

/**
 * The distinct addresses and hours of an append's calls, for its usage log object to tell
 * the address index (`UsageLog.append`). Taken by the sender from the calls it holds: the
 * object would otherwise parse every call of every row again to find them.
 */
export function seenAddresses(calls: Iterable<{ at: number; clientAddress: string | null }>): SeenAddress[] {
  const seen = new Map<string, SeenAddress>();
  let last: SeenAddress | undefined;
  for (const { at, clientAddress } of calls) {
    if (clientAddress === null) continue;
    const hour = usageHour(at);
    // A caller's calls mostly come from one address: the same as the last costs no lookup.
    if (last && last[0] === clientAddress && last[1] === hour) continue;
    const key = `${hour}|${clientAddress}`;
    last = seen.get(key);
    if (!last) seen.set(key, (last = [clientAddress, hour]));
  }
  return [...seen.values()];
}

/** Listing order of calls across keys (a search): positive when `a` comes after `b` (is older). */
export function olderFirst(a: CallPosition, b: CallPosition): number {
  return b.t - a.t || (a.k < b.k ? 1 : a.k > b.k ? -1 : 0) || b.f - a.f || (a.b < b.b ? 1 : a.b > b.b ? -1 : 0) || b.i - a.i;
}
