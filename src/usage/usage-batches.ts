import type { Env } from "../env";

/**
 * The stored form of per-call key usage: D1 table `key_usage_batches` (migrations/),
 * one row per key per flush of an isolate (src/usage/usage-log.ts) holding that key's
 * calls as one JSON array. D1 bills rows written, so a row per call (plus its indexes
 * and AUTOINCREMENT) cost about four writes per call; a batch costs one write per
 * flush. The primary key (key_id, first_at, batch) is the only index: it serves a key's
 * history, its last use and pruning.
 */

/**
 * No batch spans longer than this from its first call to its last: the flush splits a
 * key's calls to keep it so. Reads rely on it: a batch that starts before T holds no
 * call after T + MAX_BATCH_SPAN_MS.
 */
export const MAX_BATCH_SPAN_MS = 60_000;

/** How a call ended: `admitted` by the guard (whatever the origin answered), else the refusal's kind from its status. */
export type UsageOutcome = "admitted" | "invalid_credential" | "forbidden" | "rate_limited" | "refused";

export interface UsageCall {
  at: number;
  method: string;
  /** Without the query string. */
  path: string;
  status: number;
  requestId: string;
  /** CF-Connecting-IP as Cloudflare set it. */
  clientAddress: string | null;
  /** request.cf: ISO country code and autonomous system number. */
  country: string | null;
  asn: number | null;
  /** Truncated to USER_AGENT_CHARS. */
  userAgent: string | null;
  outcome: UsageOutcome;
}

export const USER_AGENT_CHARS = 256;

/** One call in a batch's `calls` array, positional to keep rows small; `at` is relative to the batch's first_at. */
export type StoredCall = [number, string, string, number, string, string | null, string | null, number | null, string | null, UsageOutcome];

export interface UsageBatchRow {
  key_id: string;
  first_at: number;
  batch: string;
  last_at: number;
  last_admitted_at: number | null;
  calls: string;
}

/** A batch row for calls of one key, oldest first, spanning at most MAX_BATCH_SPAN_MS. */
export function encodeBatch(keyId: string, batch: string, calls: UsageCall[]): UsageBatchRow {
  const first = calls[0]!.at;
  const admitted = calls.filter((c) => c.outcome === "admitted");
  return {
    key_id: keyId,
    first_at: first,
    batch,
    last_at: calls[calls.length - 1]!.at,
    last_admitted_at: admitted.length > 0 ? admitted[admitted.length - 1]!.at : null,
    calls: JSON.stringify(
      calls.map((c): StoredCall => [
        c.at - first,
        c.method,
        c.path,
        c.status,
        c.requestId,
        c.clientAddress,
        c.country,
        c.asn,
        c.userAgent,
        c.outcome,
      ]),
    ),
  };
}

export function decodeCalls(firstAt: number, calls: string): UsageCall[] {
  return (JSON.parse(calls) as StoredCall[]).map((call) => decodeCall(firstAt, call));
}

/** One call of a batch, as its `calls` array holds it (JSON.parse of one element). */
export function decodeCall(
  firstAt: number,
  [dt, method, path, status, requestId, clientAddress, country, asn, userAgent, outcome]: StoredCall,
): UsageCall {
  return { at: firstAt + dt, method, path, status, requestId, clientAddress, country, asn, userAgent, outcome };
}

/** Where a stored call holds its fields, for SQL reading a batch's `calls` with json_each (`$[n]`). */
export const STORED_CALL_FIELD = { dt: 0, clientAddress: 5, outcome: 9 } as const;

/**
 * SQL for a key's `last_used_at`: its last admitted call. `api_keys.last_used_at` keeps
 * it for batches already pruned (see `pruneUsage`); the batches hold the rest. The newest
 * batch with an admitted call is found walking the primary key backwards, and by
 * MAX_BATCH_SPAN_MS only batches starting at most that much earlier can hold a later
 * admitted call, so a hot key's read touches a few rows, not its whole history.
 */
export function lastUsedAtSql(keys: string): string {
  return `NULLIF(MAX(COALESCE(${keys}.last_used_at, 0), COALESCE((
    SELECT MAX(b.last_admitted_at) FROM key_usage_batches b WHERE b.key_id = ${keys}.id AND b.first_at >= (
      SELECT n.first_at FROM key_usage_batches n WHERE n.key_id = ${keys}.id AND n.last_admitted_at IS NOT NULL ORDER BY n.first_at DESC LIMIT 1
    ) - ${MAX_BATCH_SPAN_MS}), 0)), 0)`;
}

/**
 * Deletes whole batches whose last call is older than `olderThan` (cron), in bounded
 * steps; returns how many batches went. First folds their last admitted call into
 * `api_keys.last_used_at`, so a key's last use outlives its history. Keys are walked by
 * their own table so each lookup is a primary-key range: no index exists for pruning.
 */
export async function pruneUsage(env: Env, olderThan: number, step = 1000): Promise<number> {
  await env.DB.prepare(
    `UPDATE api_keys SET last_used_at = f.at
     FROM (SELECT k.id, MAX(b.last_admitted_at) AS at FROM api_keys k CROSS JOIN key_usage_batches b
           WHERE b.key_id = k.id AND b.first_at < ?1 AND b.last_at < ?1 GROUP BY k.id) f
     WHERE api_keys.id = f.id AND f.at > COALESCE(api_keys.last_used_at, 0)`,
  )
    .bind(olderThan)
    .run();
  let total = 0;
  for (;;) {
    const result = await env.DB.prepare(
      `DELETE FROM key_usage_batches WHERE (key_id, first_at, batch) IN (
         SELECT b.key_id, b.first_at, b.batch FROM api_keys k CROSS JOIN key_usage_batches b
         WHERE b.key_id = k.id AND b.first_at < ?1 AND b.last_at < ?1 LIMIT ?2)`,
    )
      .bind(olderThan, step)
      .run();
    total += result.meta.changes;
    if (result.meta.changes < step) return total;
  }
}
