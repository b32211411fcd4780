import { z } from "zod";
import type { Env } from "../env";
import { decodeCalls, MAX_BATCH_SPAN_MS, type UsageBatchRow, type UsageCall } from "./usage-batches";

/**
 * A key's calls, newest first, read from its batches (src/keys/usage-batches.ts).
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
  const { limit, after, since = 0, until = Number.MAX_SAFE_INTEGER } = query;
  const newest = Math.min(until, after?.t ?? Number.MAX_SAFE_INTEGER);
  const wanted = limit + 1;
  const found: UsageRecord[] = [];
  // Batches are read newest start first, `wanted` at a time. Once batches starting at or
  // before F are all that is left, calls after F + MAX_BATCH_SPAN_MS are final.
  let read: { f: number; b: string } = { f: Number.MAX_SAFE_INTEGER, b: "" };
  for (;;) {
    const { results } = await env.DB.prepare(
      `SELECT first_at, batch, calls FROM key_usage_batches
       WHERE key_id = ? AND first_at <= ? AND first_at >= ? AND last_at >= ? AND (first_at < ? OR (first_at = ? AND batch < ?))
       ORDER BY first_at DESC, batch DESC LIMIT ?`,
    )
      .bind(keyId, newest, Math.max(0, since - MAX_BATCH_SPAN_MS), since, read.f, read.f, read.b, wanted)
      .all<Pick<UsageBatchRow, "first_at" | "batch" | "calls">>();
    for (const row of results) {
      decodeCalls(row.first_at, row.calls).forEach((call, i) => {
        const record = { ...call, position: { t: call.at, f: row.first_at, b: row.batch, i } };
        if (call.at >= since && call.at <= until && (!after || newerFirst(record.position, after) > 0)) found.push(record);
      });
    }
    if (results.length < wanted) break;
    read = { f: results[results.length - 1]!.first_at, b: results[results.length - 1]!.batch };
    if (found.filter((r) => r.at > read.f + MAX_BATCH_SPAN_MS).length >= wanted) break;
  }
  return found.sort((a, b) => newerFirst(a.position, b.position)).slice(0, wanted);
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
