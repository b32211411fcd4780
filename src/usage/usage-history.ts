import { z } from "zod";
import type { Env } from "../env";
import type { ProductId } from "../products/types";
import type { KeyRef } from "../keys/key-store";
import { GatewayError } from "../http/errors";
import { addressIndexes, addressIndexFor, olderFirst, usageLogFor } from "./usage-client";
import { decodeCall, decodeCalls, MAX_BATCH_SPAN_MS, type StoredCall, type UsageCall } from "./usage-batches";
import type { KeyCalls, MatchedCall, UsageAccount } from "./usage-log-object";

/**
 * Reading per-call usage (written by src/usage/usage-log.ts to each account's usage log
 * object, src/usage/usage-log-object.ts, in the rows of src/usage/usage-batches.ts): a
 * key's calls, newest first, an address summary, its last use, and the search across keys
 * below. Everything that reads calls goes through this module. Batches from different
 * isolates overlap in time, so calls are merged by time across batches, not listed batch
 * after batch.
 */

/** Where a call sits: its time, then its batch and index there (ties of time stay in a fixed order). */
export const usagePosition = z.object({
  t: z.number().int().nonnegative(),
  f: z.number().int().nonnegative(),
  b: z.string().regex(/^[0-9A-Za-z]{1,32}$/),
  i: z.number().int().nonnegative(),
});
export type UsagePosition = z.infer<typeof usagePosition>;

export interface UsageRecord extends UsageCall {
  position: UsagePosition;
}

export interface UsageQuery {
  limit: number;
  /** Calls after this one in the listing (older): the cursor of the previous page. */
  after?: UsagePosition;
  /** Only calls at or after / at or before these times (ms). */
  since?: number;
  until?: number;
}

/** Newest first; returns one extra record when there are more, for the caller's cursor. */
export async function listUsage(env: Env, key: KeyRef, query: UsageQuery): Promise<UsageRecord[]> {
  const found: UsageRecord[] = [];
  // `limit + 1` batches a read, as many as could each hold one wanted call.
  for await (const record of callsNewestFirst(env, key, query, query.limit + 1)) {
    if (found.push(record) > query.limit) break;
  }
  return found;
}

/**
 * A key's calls in the query's range, newest first, read `batchesPerRead` batches at a
 * time (newest start first) as the caller takes them. Once every batch starting after F
 * is read, calls after F + MAX_BATCH_SPAN_MS are final: no batch left can hold one.
 */
export async function* callsNewestFirst(
  env: Env,
  key: KeyRef,
  query: Omit<UsageQuery, "limit">,
  batchesPerRead: number,
): AsyncGenerator<UsageRecord> {
  const { after, since = 0, until = Number.MAX_SAFE_INTEGER } = query;
  const newest = Math.min(until, after?.t ?? Number.MAX_SAFE_INTEGER);
  const log = usageLogFor(env, key);
  let pending: UsageRecord[] = [];
  let read: { f: number; b: string } = { f: Number.MAX_SAFE_INTEGER, b: "" };
  for (;;) {
    const results = await log.keyBatches(key.keyId, {
      newest,
      oldest: Math.max(0, since - MAX_BATCH_SPAN_MS),
      since,
      read,
      limit: batchesPerRead,
    });
    for (const row of results) {
      decodeCalls(row.first_at, row.calls).forEach((call, i) => {
        const record = { ...call, position: { t: call.at, f: row.first_at, b: row.batch, i } };
        if (call.at >= since && call.at <= until && (!after || newerFirst(record.position, after) > 0)) pending.push(record);
      });
    }
    const done = results.length < batchesPerRead;
    if (!done) read = { f: results[results.length - 1]!.first_at, b: results[results.length - 1]!.batch };
    pending.sort((a, b) => newerFirst(a.position, b.position));
    const finalAfter = done ? -Infinity : read.f + MAX_BATCH_SPAN_MS;
    const final = pending.findIndex((r) => r.at <= finalAfter);
    const ready = final === -1 ? pending.length : final;
    yield* pending.slice(0, ready);
    pending = pending.slice(ready);
    if (done) return;
  }
}

/** Listing order: positive when `a` comes after `b` (is older). */
function newerFirst(a: UsagePosition, b: UsagePosition): number {
  return b.t - a.t || b.f - a.f || (a.b < b.b ? 1 : a.b > b.b ? -1 : 0) || b.i - a.i;
}

/** One client address's calls with a key: when it was first and last seen, how many calls, from where. */
export interface AddressSummary {
  clientAddress: string | null;
  firstSeen: number;
  lastSeen: number;
  calls: number;
  admitted: number;
  countries: string[];
  asns: number[];
}

/**
 * Bounds the summary's read: a hot key's history can be long, and an investigation wants
 * the answer in one request. SUMMARY_BATCHES batches hold at most CALLS_PER_BATCH (256) calls each.
 */
export const SUMMARY_BATCHES = 1000;

/**
 * Per client address, the key's calls between `since` and `until` (ms), newest address
 * first so one that appeared lately stands out. `complete` is false when the key has
 * more batches in the range than SUMMARY_BATCHES (the newest are summarised).
 */
export async function summariseAddresses(
  env: Env,
  key: KeyRef,
  range: { since?: number; until?: number },
): Promise<{ addresses: AddressSummary[]; complete: boolean }> {
  const { since = 0, until = Number.MAX_SAFE_INTEGER } = range;
  const results = await usageLogFor(env, key).keyBatches(key.keyId, {
    newest: until,
    oldest: Math.max(0, since - MAX_BATCH_SPAN_MS),
    since,
    read: { f: Number.MAX_SAFE_INTEGER, b: "" },
    limit: SUMMARY_BATCHES + 1,
  });
  const byAddress = new Map<string | null, AddressSummary>();
  for (const row of results.slice(0, SUMMARY_BATCHES)) {
    for (const call of decodeCalls(row.first_at, row.calls)) {
      if (call.at < since || call.at > until) continue;
      let s = byAddress.get(call.clientAddress);
      if (!s) {
        s = { clientAddress: call.clientAddress, firstSeen: call.at, lastSeen: call.at, calls: 0, admitted: 0, countries: [], asns: [] };
        byAddress.set(call.clientAddress, s);
      }
      s.firstSeen = Math.min(s.firstSeen, call.at);
      s.lastSeen = Math.max(s.lastSeen, call.at);
      s.calls++;
      if (call.outcome === "admitted") s.admitted++;
      if (call.country !== null && !s.countries.includes(call.country)) s.countries.push(call.country);
      if (call.asn !== null && !s.asns.includes(call.asn)) s.asns.push(call.asn);
    }
  }
  const addresses = [...byAddress.values()].sort((a, b) => b.firstSeen - a.firstSeen);
  return { addresses, complete: results.length <= SUMMARY_BATCHES };
}

/**
 * Searching calls across keys: one account's (any range the log still holds), or every
 * account's (ACROSS_ACCOUNTS_MS back at most), by client address and time. Within an
 * account the account's usage log reads, inside its object, every batch that overlaps the
 * range (a batch's text is scanned for the address before its calls are parsed), and only
 * the matching calls leave it. Across accounts, the address's index object
 * (src/usage/address-index.ts) names the accounts that saw the address in the range, and
 * each of their logs is asked; without an address every index object is asked for the
 * accounts with calls in the range, at most SEARCH_ACCOUNTS of them.
 */
export const ACROSS_ACCOUNTS_MS = 86_400_000;
/** The most accounts one search reads (each is a call to its usage log): past it, a 400 asks for a narrower search. */
export const SEARCH_ACCOUNTS = 100;

/** Where a call sits among the calls of many keys: its time, key, batch and index there. */
export const searchPosition = usagePosition.extend({ k: z.string().regex(/^[0-9A-Za-z_]{1,64}$/) });
export type SearchPosition = z.infer<typeof searchPosition>;

export interface CallSearch {
  product?: ProductId;
  /** One account of `product`; none: every account. */
  accountId?: string;
  /** The client address exactly as recorded (CF-Connecting-IP). */
  address?: string;
  since: number;
  until: number;
}

export interface FoundCall extends UsageCall {
  keyId: string;
  product: ProductId;
  accountId: string;
  position: SearchPosition;
}

export interface KeySeen {
  keyId: string;
  product: ProductId;
  accountId: string;
  label: string | null;
  prefix: string;
  last4: string;
  firstSeen: number;
  lastSeen: number;
  calls: number;
  admitted: number;
}

/** The accounts a search reads: its own, or those the address index names. */
async function accountsOf(env: Env, search: CallSearch): Promise<UsageAccount[]> {
  if (search.product !== undefined && search.accountId !== undefined) return [{ product: search.product, accountId: search.accountId }];
  const names = search.address !== undefined ? [addressIndexFor(search.address)] : addressIndexes();
  const query = { address: search.address, product: search.product, since: search.since, until: search.until, limit: SEARCH_ACCOUNTS + 1 };
  const found = new Map<string, UsageAccount>();
  for (const accounts of await Promise.all(names.map((name) => env.USAGE_ADDRESSES.getByName(name).accounts(query))))
    for (const a of accounts) found.set(`${a.product}:${a.accountId}`, a);
  if (found.size > SEARCH_ACCOUNTS) {
    throw new GatewayError(
      "BAD_REQUEST",
      `more than ${SEARCH_ACCOUNTS} accounts have calls in this range: give an address, an account, or a shorter range`,
    );
  }
  return [...found.values()];
}

/** Newest first (then by key, batch and index); returns one extra call when there are more, for the caller's cursor. */
export async function searchCalls(env: Env, search: CallSearch, page: { limit: number; after?: SearchPosition }): Promise<FoundCall[]> {
  const { address, since, until } = search;
  const perAccount = await Promise.all(
    (await accountsOf(env, search)).map(async (account) =>
      (await usageLogFor(env, account).searchCalls({ address, since, until }, page.after, page.limit + 1)).map((row: MatchedCall) => {
        const call = decodeCall(row.first_at, JSON.parse(row.call) as StoredCall);
        return {
          ...call,
          keyId: row.key_id,
          product: account.product,
          accountId: account.accountId,
          position: { t: call.at, k: row.key_id, f: row.first_at, b: row.batch, i: row.i },
        };
      }),
    ),
  );
  return perAccount
    .flat()
    .sort((a, b) => olderFirst(a.position, b.position))
    .slice(0, page.limit + 1);
}

/** At most this many keys in a search's summary (the most recently used first). */
export const SEARCH_SUMMARY_KEYS = 100;

/** Per key, the search's calls: which keys an address used, and when. `complete` is false past SEARCH_SUMMARY_KEYS keys. */
export async function summariseKeys(env: Env, search: CallSearch): Promise<{ keys: KeySeen[]; complete: boolean }> {
  const { address, since, until } = search;
  const perAccount = await Promise.all(
    (await accountsOf(env, search)).map(async (account) =>
      (await usageLogFor(env, account).summariseKeys({ address, since, until }, SEARCH_SUMMARY_KEYS + 1)).map((k: KeyCalls) => ({
        ...k,
        account,
      })),
    ),
  );
  const seen = perAccount
    .flat()
    .sort((a, b) => b.last_seen - a.last_seen || (a.key_id < b.key_id ? 1 : a.key_id > b.key_id ? -1 : 0))
    .slice(0, SEARCH_SUMMARY_KEYS + 1);
  const shown = seen.slice(0, SEARCH_SUMMARY_KEYS);
  const labels = new Map<string, { label: string | null; prefix: string; last4: string }>();
  if (shown.length > 0) {
    const { results } = await env.DB.prepare(
      `SELECT id, label, prefix, last4 FROM api_keys WHERE id IN (${shown.map(() => "?").join(", ")})`,
    )
      .bind(...shown.map((k) => k.key_id))
      .all<{ id: string; label: string | null; prefix: string; last4: string }>();
    for (const r of results) labels.set(r.id, r);
  }
  const keys = shown.map((k) => ({
    keyId: k.key_id,
    product: k.account.product,
    accountId: k.account.accountId,
    label: labels.get(k.key_id)?.label ?? null,
    prefix: labels.get(k.key_id)?.prefix ?? "",
    last4: labels.get(k.key_id)?.last4 ?? "",
    firstSeen: k.first_seen,
    lastSeen: k.last_seen,
    calls: k.calls,
    admitted: k.admitted,
  }));
  return { keys, complete: seen.length <= SEARCH_SUMMARY_KEYS };
}

/** Each key's last admitted call, from its account's usage log: one call per account among the keys. */
export async function lastUses(env: Env, keys: KeyRef[]): Promise<Map<string, number | null>> {
  const byAccount = new Map<string, { account: UsageAccount; keyIds: string[] }>();
  for (const key of keys) {
    const name = `${key.product}:${key.accountId}`;
    const entry = byAccount.get(name) ?? { account: key, keyIds: [] };
    entry.keyIds.push(key.keyId);
    byAccount.set(name, entry);
  }
  const found = await Promise.all([...byAccount.values()].map(({ account, keyIds }) => usageLogFor(env, account).lastUsed(keyIds)));
  return new Map(found.flatMap((r) => Object.entries(r)));
}
