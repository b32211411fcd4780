import type { MiddlewareHandler } from "hono";
import type { Env } from "../env";
import type { AppEnv } from "../http/context";

/**
 * Per-call usage of API keys. Recorded after the response is sent (`waitUntil`), so it
 * adds no latency; the usage row and the key's `last_used_at` go to D1 as one batch.
 * Paths are stored without their query string.
 */
export const recordKeyUsage: MiddlewareHandler<AppEnv> = async (c, next) => {
  await next();
  const identity = c.var.identity;
  if (identity?.via !== "key" || !identity.keyId) return;
  const at = Date.now();
  const write = c.env.DB.batch([
    c.env.DB.prepare("INSERT INTO key_usage (key_id, at, method, path, status, request_id) VALUES (?, ?, ?, ?, ?, ?)").bind(
      identity.keyId,
      at,
      c.req.method,
      c.var.target.originPath,
      c.res.status,
      c.var.requestId,
    ),
    c.env.DB.prepare("UPDATE api_keys SET last_used_at = ? WHERE id = ?").bind(at, identity.keyId),
  ]).catch(() => console.error(JSON.stringify({ msg: "usage_write_failed", request_id: c.var.requestId, key_id: identity.keyId })));
  c.executionCtx.waitUntil(write);
};

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
