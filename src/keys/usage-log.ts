import type { MiddlewareHandler } from "hono";
import type { Env } from "../env";
import type { AppEnv } from "../http/context";

/**
 * Per-call usage of API keys, recorded after the response is sent (`waitUntil`), so it
 * adds no latency. Calls that finish within FLUSH_DELAY_MS of each other in one isolate
 * share one D1 batch: the call that finds no flush scheduled schedules one (in its own
 * `waitUntil`), later ones only queue their row. One timer and one D1 call per
 * batch, not per request: under load a timer per request cost more than the write.
 * Paths are stored without their query string.
 */
const FLUSH_DELAY_MS = 25;
interface PendingUsage {
  keyId: string;
  at: number;
  method: string;
  path: string;
  status: number;
  requestId: string;
}
let pending: PendingUsage[] = [];
/** When the flush that will take `pending` was scheduled (0: none is). */
let flushScheduledAt = 0;
/** A flush scheduled longer ago than this was lost (its request's context ended): schedule another. */
const LOST_FLUSH_MS = 1_000;

export const recordKeyUsage: MiddlewareHandler<AppEnv> = async (c, next) => {
  await next();
  const identity = c.get("identity");
  if (identity?.via !== "key" || !identity.keyId) return;
  pending.push({ keyId: identity.keyId, at: Date.now(), method: c.req.method, path: c.get("target").originPath, status: c.res.status, requestId: c.get("requestId") });
  const now = Date.now();
  if (flushScheduledAt === 0 || now - flushScheduledAt > LOST_FLUSH_MS) {
    flushScheduledAt = now;
    c.executionCtx.waitUntil(flushSoon(c.env));
  }
};

async function flushSoon(env: Env): Promise<void> {
  await new Promise((r) => setTimeout(r, FLUSH_DELAY_MS));
  const batch = pending;
  pending = [];
  flushScheduledAt = 0;
  if (batch.length === 0) return;
  const lastUse = new Map<string, number>();
  for (const u of batch) lastUse.set(u.keyId, Math.max(lastUse.get(u.keyId) ?? 0, u.at));
  try {
    await env.DB.batch([...insertStatements(env, batch), ...[...lastUse].map(([keyId, at]) => env.DB.prepare("UPDATE api_keys SET last_used_at = MAX(COALESCE(last_used_at, 0), ?) WHERE id = ?").bind(at, keyId))]);
  } catch {
    console.error(JSON.stringify({ msg: "usage_write_failed", rows: batch.length }));
  }
}

// D1 binds at most 100 parameters per statement: 16 rows of 6 per INSERT.
const ROWS_PER_INSERT = 16;

/** Multi-row INSERTs: one statement per 16 rows instead of one per row. */
function insertStatements(env: Env, rows: PendingUsage[]): D1PreparedStatement[] {
  const statements: D1PreparedStatement[] = [];
  for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) {
    const chunk = rows.slice(i, i + ROWS_PER_INSERT);
    const sql = `INSERT INTO key_usage (key_id, at, method, path, status, request_id) VALUES ${chunk.map(() => "(?, ?, ?, ?, ?, ?)").join(", ")}`;
    statements.push(env.DB.prepare(sql).bind(...chunk.flatMap((u) => [u.keyId, u.at, u.method, u.path, u.status, u.requestId])));
  }
  return statements;
}

export interface UsageRecord {
  id: number;
  at: number;
  method: string;
  path: string;
  status: number;
  requestId: string;
}

/** Newest first; `before` is the id cursor. Returns one extra record when there are more. */
export async function listUsage(env: Env, keyId: string, limit: number, before?: number): Promise<UsageRecord[]> {
  const { results } = await env.DB.prepare(
    `SELECT id, at, method, path, status, request_id FROM key_usage WHERE key_id = ? ${before !== undefined ? "AND id < ?" : ""} ORDER BY id DESC LIMIT ?`,
  )
    .bind(...(before !== undefined ? [keyId, before, limit + 1] : [keyId, limit + 1]))
    .all<{ id: number; at: number; method: string; path: string; status: number; request_id: string }>();
  return results.map((r) => ({ id: r.id, at: r.at, method: r.method, path: r.path, status: r.status, requestId: r.request_id }));
}

/** Deletes usage older than the retention period, in bounded batches (run by the cron trigger). */
export async function pruneUsage(env: Env, olderThan: number, batch = 5000): Promise<number> {
  let total = 0;
  for (;;) {
    const result = await env.DB.prepare("DELETE FROM key_usage WHERE id IN (SELECT id FROM key_usage WHERE at < ? LIMIT ?)")
      .bind(olderThan, batch)
      .run();
    total += result.meta.changes;
    if (result.meta.changes < batch) return total;
  }
}
