import { z } from "zod";
import type { Env } from "../env";
import type { ProductId } from "../products/types";
import { whereBuilder } from "../keys/sql-where";
import {
  decodeCall,
  decodeCalls,
  MAX_BATCH_SPAN_MS,
  STORED_CALL_FIELD,
  type StoredCall,
  type UsageBatchRow,
  type UsageCall,
} from "./usage-batches";

/**
 * Reading per-call usage (written by src/usage/usage-log.ts in the rows of
 * src/usage/usage-batches.ts): a key's calls, newest first, an address summary, and the
 * search across keys below. Everything that reads calls goes through this module.
 * Batches from different isolates overlap in time, so calls are merged by time across
 * batches, not listed batch after batch.
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
export async function listUsage(env: Env, keyId: string, query: UsageQuery): Promise<UsageRecord[]> {
  const found: UsageRecord[] = [];
  // `limit + 1` batches a read, as many as could each hold one wanted call.
  for await (const record of callsNewestFirst(env, keyId, query, query.limit + 1)) {
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
  keyId: string,
  query: Omit<UsageQuery, "limit">,
  batchesPerRead: number,
): AsyncGenerator<UsageRecord> {
  const { after, since = 0, until = Number.MAX_SAFE_INTEGER } = query;
  const newest = Math.min(until, after?.t ?? Number.MAX_SAFE_INTEGER);
  let pending: UsageRecord[] = [];
  let read: { f: number; b: string } = { f: Number.MAX_SAFE_INTEGER, b: "" };
  for (;;) {
    const { results } = await env.DB.prepare(
      `SELECT first_at, batch, calls FROM key_usage_batches
       WHERE key_id = ? AND first_at <= ? AND first_at >= ? AND last_at >= ? AND (first_at < ? OR (first_at = ? AND batch < ?))
       ORDER BY first_at DESC, batch DESC LIMIT ?`,
    )
      .bind(keyId, newest, Math.max(0, since - MAX_BATCH_SPAN_MS), since, read.f, read.f, read.b, batchesPerRead)
      .all<Pick<UsageBatchRow, "first_at" | "batch" | "calls">>();
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
  keyId: string,
  range: { since?: number; until?: number },
): Promise<{ addresses: AddressSummary[]; complete: boolean }> {
  const { since = 0, until = Number.MAX_SAFE_INTEGER } = range;
  const { results } = await env.DB.prepare(
    `SELECT first_at, calls FROM key_usage_batches WHERE key_id = ? AND first_at <= ? AND first_at >= ? AND last_at >= ?
     ORDER BY first_at DESC LIMIT ?`,
  )
    .bind(keyId, until, Math.max(0, since - MAX_BATCH_SPAN_MS), since, SUMMARY_BATCHES + 1)
    .all<Pick<UsageBatchRow, "first_at" | "calls">>();
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
 * account's (ACROSS_ACCOUNTS_MS back at most), by client address and time. Nothing is
 * indexed for it, so writing a call costs no more: a search reads, inside D1, every batch
 * of the keys in scope that overlaps its range (a batch's text is scanned for the address
 * before its calls are parsed), and only the matching calls leave D1. Keys are walked
 * through their own table, so each key's batches are a primary-key range.
 */
export const ACROSS_ACCOUNTS_MS = 86_400_000;

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

/** The calls a search matches, one row each (`call` is its stored array as JSON), as a subquery with its bound values. */
function matchingCalls(search: CallSearch, newest: number): { sql: string; args: (string | number)[] } {
  const batches = whereBuilder();
  if (search.product) batches.add("k.product = ?", search.product);
  if (search.accountId !== undefined) batches.add("k.account_id = ?", search.accountId);
  batches.add(
    "b.key_id = k.id AND b.first_at <= ? AND b.first_at >= ? AND b.last_at >= ?",
    newest,
    Math.max(0, search.since - MAX_BATCH_SPAN_MS),
    search.since,
  );
  if (search.address !== undefined) batches.add("instr(b.calls, ?) > 0", JSON.stringify(search.address));
  const calls = whereBuilder();
  calls.add("at >= ? AND at <= ?", search.since, search.until);
  if (search.address !== undefined) calls.add(`json_extract(call, '$[${STORED_CALL_FIELD.clientAddress}]') = ?`, search.address);
  return {
    sql: `SELECT * FROM (
        SELECT k.id AS key_id, k.product, k.account_id, k.label, k.prefix, k.last4, b.first_at, b.batch, j.key AS i,
               b.first_at + json_extract(j.value, '$[${STORED_CALL_FIELD.dt}]') AS at, j.value AS call
        FROM api_keys k CROSS JOIN key_usage_batches b CROSS JOIN json_each(b.calls) j ${batches.sql}
      ) ${calls.sql}`,
    args: [...batches.args, ...calls.args],
  };
}

/** Newest first (then by key, batch and index); returns one extra call when there are more, for the caller's cursor. */
export async function searchCalls(env: Env, search: CallSearch, page: { limit: number; after?: SearchPosition }): Promise<FoundCall[]> {
  const { after } = page;
  const { sql, args } = matchingCalls(search, Math.min(search.until, after?.t ?? Number.MAX_SAFE_INTEGER));
  const { results } = await env.DB.prepare(
    `SELECT key_id, product, account_id, first_at, batch, i, call FROM (${sql})
     ${after ? "WHERE (at, key_id, first_at, batch, i) < (?, ?, ?, ?, ?)" : ""}
     ORDER BY at DESC, key_id DESC, first_at DESC, batch DESC, i DESC LIMIT ?`,
  )
    .bind(...args, ...(after ? [after.t, after.k, after.f, after.b, after.i] : []), page.limit + 1)
    .all<{ key_id: string; product: ProductId; account_id: string; first_at: number; batch: string; i: number; call: string }>();
  return results.map((row) => {
    const call = decodeCall(row.first_at, JSON.parse(row.call) as StoredCall);
    return {
      ...call,
      keyId: row.key_id,
      product: row.product,
      accountId: row.account_id,
      position: { t: call.at, k: row.key_id, f: row.first_at, b: row.batch, i: row.i },
    };
  });
}

/** At most this many keys in a search's summary (the most recently used first). */
export const SEARCH_SUMMARY_KEYS = 100;

/** Per key, the search's calls: which keys an address used, and when. `complete` is false past SEARCH_SUMMARY_KEYS keys. */
export async function summariseKeys(env: Env, search: CallSearch): Promise<{ keys: KeySeen[]; complete: boolean }> {
  const { sql, args } = matchingCalls(search, search.until);
  const { results } = await env.DB.prepare(
    `SELECT key_id, product, account_id, label, prefix, last4, MIN(at) AS first_seen, MAX(at) AS last_seen, COUNT(*) AS calls,
            SUM(json_extract(call, '$[${STORED_CALL_FIELD.outcome}]') = 'admitted') AS admitted
     FROM (${sql}) GROUP BY key_id ORDER BY last_seen DESC, key_id DESC LIMIT ?`,
  )
    .bind(...args, SEARCH_SUMMARY_KEYS + 1)
    .all<{
      key_id: string;
      product: ProductId;
      account_id: string;
      label: string | null;
      prefix: string;
      last4: string;
      first_seen: number;
      last_seen: number;
      calls: number;
      admitted: number;
    }>();
  const keys = results.slice(0, SEARCH_SUMMARY_KEYS).map((r) => ({
    keyId: r.key_id,
    product: r.product,
    accountId: r.account_id,
    label: r.label,
    prefix: r.prefix,
    last4: r.last4,
    firstSeen: r.first_seen,
    lastSeen: r.last_seen,
    calls: r.calls,
    admitted: r.admitted,
  }));
  return { keys, complete: results.length <= SEARCH_SUMMARY_KEYS };
}
