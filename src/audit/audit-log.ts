import type { Env } from "../env";
import { whereBuilder } from "../keys/sql-where";

/** Who did what to which key or user. Written before the action's response is sent. */
export interface AuditEntry {
  actor: string;
  action: string;
  target?: string;
  product?: string;
  accountId?: string;
  requestId: string;
  /** Never a secret: ids, labels, counts. */
  detail?: Record<string, unknown>;
}

const COLUMNS = "at, actor, action, target, product, account_id, request_id, detail";

const columnValues = (entry: AuditEntry, at: number) => [
  at,
  entry.actor,
  entry.action,
  entry.target ?? null,
  entry.product ?? null,
  entry.accountId ?? null,
  entry.requestId,
  entry.detail ? JSON.stringify(entry.detail) : null,
];

export async function writeAudit(env: Env, entry: AuditEntry, at = Date.now()): Promise<void> {
  await env.DB.prepare(`INSERT INTO audit_log (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
    .bind(...columnValues(entry, at))
    .run();
}

/**
 * Writes the entry unless the log has one of the same target, action and request already:
 * for entries more than one writer may deliver (keys/key-outbox.ts). D1 runs statements
 * one at a time, so two writers never both write it.
 */
export async function writeAuditOnce(env: Env, entry: AuditEntry, at: number): Promise<void> {
  await auditOnce(env, entry, at, "").run();
}

/**
 * writeAuditOnce as a statement for a batch that writes it only if the statement before it
 * changed a row: a decision and its audit entry in one transaction (keys/guard-birth.ts).
 * Several in a row all follow the decision (each one's insert is the next one's change).
 */
export function auditOnceAfterChange(env: Env, entry: AuditEntry, at: number): D1PreparedStatement {
  return auditOnce(env, entry, at, "changes() > 0 AND");
}

function auditOnce(env: Env, entry: AuditEntry, at: number, condition: string): D1PreparedStatement {
  return env.DB.prepare(
    `INSERT INTO audit_log (${COLUMNS}) SELECT ?, ?, ?, ?, ?, ?, ?, ?
     WHERE ${condition} NOT EXISTS (SELECT 1 FROM audit_log WHERE target IS ? AND action = ? AND request_id = ?)`,
  ).bind(...columnValues(entry, at), entry.target ?? null, entry.action, entry.requestId);
}

/** Whether `actor` has an entry of `action` on `target` (one indexed read: the log is indexed by target). */
export async function hasAuditEntry(env: Env, entry: { target: string; actor: string; action: string }): Promise<boolean> {
  const row = await env.DB.prepare("SELECT 1 FROM audit_log WHERE target = ? AND actor = ? AND action = ? LIMIT 1")
    .bind(entry.target, entry.actor, entry.action)
    .first();
  return row !== null;
}

/** An audit row as stored, with its JSON detail parsed. */
export interface AuditRow {
  id: number;
  at: number;
  actor: string;
  action: string;
  target: string | null;
  product: string | null;
  account_id: string | null;
  request_id: string;
  detail: Record<string, unknown> | null;
}

/** Newest first; `before` is the id cursor. Returns one extra entry when there are more. */
export async function listAudit(
  env: Env,
  filter: { target?: string; action?: string; actor?: string; before?: number; limit: number },
): Promise<AuditRow[]> {
  const where = whereBuilder();
  if (filter.target) where.add("target = ?", filter.target);
  if (filter.action) where.add("action = ?", filter.action);
  if (filter.actor) where.add("actor = ?", filter.actor);
  if (filter.before !== undefined) where.add("id < ?", filter.before);
  const { results } = await env.DB.prepare(`SELECT * FROM audit_log ${where.sql} ORDER BY id DESC LIMIT ?`)
    .bind(...where.args, filter.limit + 1)
    .all<Omit<AuditRow, "detail"> & { detail: string | null }>();
  return results.map((r) => ({ ...r, detail: r.detail ? (JSON.parse(r.detail) as Record<string, unknown>) : null }));
}
