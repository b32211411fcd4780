import type { Env } from "../env";
import type { KeyLimitOverride } from "../limits/types";
import type { ProductId } from "../products/types";
import { Lru } from "../util/lru";
import { whereBuilder } from "./sql-where";

/**
 * Key records in D1 (the source of truth for listings) and the hash -> key reference
 * cache in KV. Both hold the key's SHA-256 only. Whether a key may be used right now is
 * never decided here: that is the account guard's job (see limits/account-guard.ts).
 */
export interface KeyRef {
  keyId: string;
  product: ProductId;
  accountId: string;
}

export interface KeyRecord extends KeyRef {
  ownerUserId: string | null;
  label: string | null;
  prefix: string;
  last4: string;
  scopes: string[];
  plan: string | null;
  limitOverride: KeyLimitOverride | null;
  imported: boolean;
  /** The key this one replaced (rotation). */
  rotatedFrom?: string | null;
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
  revokedBy: string | null;
  lastUsedAt: number | null;
}

interface KeyRow {
  id: string;
  product: ProductId;
  account_id: string;
  owner_user_id: string | null;
  label: string | null;
  prefix: string;
  last4: string;
  scopes: string;
  plan: string | null;
  limit_override: string | null;
  imported: number;
  rotated_from: string | null;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
  revoked_by: string | null;
  last_used_at: number | null;
}

const kvKey = (hash: string) => `key:${hash}`;

function fromRow(row: KeyRow): KeyRecord {
  return {
    keyId: row.id,
    product: row.product,
    accountId: row.account_id,
    ownerUserId: row.owner_user_id,
    label: row.label,
    prefix: row.prefix,
    last4: row.last4,
    scopes: JSON.parse(row.scopes) as string[],
    plan: row.plan,
    limitOverride: row.limit_override ? (JSON.parse(row.limit_override) as KeyLimitOverride) : null,
    imported: row.imported === 1,
    rotatedFrom: row.rotated_from,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    revokedBy: row.revoked_by,
    lastUsedAt: row.last_used_at,
  };
}

export function keyStatus(record: KeyRecord, now = Date.now()): "active" | "revoked" | "expired" {
  if (record.revokedAt !== null) return "revoked";
  if (record.expiresAt !== null && now >= record.expiresAt) return "expired";
  return "active";
}

export async function insertKey(env: Env, record: KeyRecord, hash: string): Promise<void> {
  await env.DB.prepare(
    `INSERT INTO api_keys (id, key_hash, product, account_id, owner_user_id, label, prefix, last4, scopes, plan, limit_override, imported, created_at, expires_at, rotated_from)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  )
    .bind(
      record.keyId,
      hash,
      record.product,
      record.accountId,
      record.ownerUserId,
      record.label,
      record.prefix,
      record.last4,
      JSON.stringify(record.scopes),
      record.plan,
      record.limitOverride ? JSON.stringify(record.limitOverride) : null,
      record.imported ? 1 : 0,
      record.createdAt,
      record.expiresAt,
      record.rotatedFrom ?? null,
    )
    .run();
  const ref: KeyRef = { keyId: record.keyId, product: record.product, accountId: record.accountId };
  await env.KEYS_KV.put(kvKey(hash), JSON.stringify(ref));
}

// hash -> owner, per isolate. The mapping never changes and says nothing about whether
// the key may be used (the guard decides that on every request), so caching it is safe.
const refs = new Lru<string, KeyRef>(10_000);

/** Isolate cache, then KV (the mapping never changes), then D1, refilling KV in the background. */
export async function findKeyByHash(env: Env, hash: string, waitUntil: (p: Promise<unknown>) => void): Promise<KeyRef | null> {
  const known = refs.get(hash);
  if (known) return known;
  const ref = await lookupKeyByHash(env, hash, waitUntil);
  if (ref) refs.set(hash, ref);
  return ref;
}

async function lookupKeyByHash(env: Env, hash: string, waitUntil: (p: Promise<unknown>) => void): Promise<KeyRef | null> {
  const cached = await env.KEYS_KV.get<KeyRef>(kvKey(hash), "json");
  if (cached) return cached;
  const row = await env.DB.prepare("SELECT id, product, account_id FROM api_keys WHERE key_hash = ?")
    .bind(hash)
    .first<{ id: string; product: ProductId; account_id: string }>();
  if (!row) return null;
  const ref: KeyRef = { keyId: row.id, product: row.product, accountId: row.account_id };
  waitUntil(env.KEYS_KV.put(kvKey(hash), JSON.stringify(ref)));
  return ref;
}

export async function getKey(env: Env, keyId: string): Promise<KeyRecord | null> {
  const row = await env.DB.prepare("SELECT * FROM api_keys WHERE id = ?").bind(keyId).first<KeyRow>();
  return row ? fromRow(row) : null;
}

export interface KeyFilter {
  product?: ProductId;
  accountId?: string;
  ownerUserId?: string;
  status?: "active" | "revoked" | "expired";
  /** Keyset pagination: records created before this (created_at, id). */
  after?: { createdAt: number; keyId: string };
  limit: number;
}

/** Newest first. Returns one extra record when there are more, for the caller's cursor. */
export async function listKeys(env: Env, filter: KeyFilter, now = Date.now()): Promise<KeyRecord[]> {
  const where = whereBuilder();
  if (filter.product) where.add("product = ?", filter.product);
  if (filter.accountId) where.add("account_id = ?", filter.accountId);
  if (filter.ownerUserId) where.add("owner_user_id = ?", filter.ownerUserId);
  if (filter.status === "revoked") where.add("revoked_at IS NOT NULL");
  if (filter.status === "active") where.add("revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)", now);
  if (filter.status === "expired") where.add("revoked_at IS NULL AND expires_at <= ?", now);
  if (filter.after) {
    const { createdAt, keyId } = filter.after;
    where.add("(created_at < ? OR (created_at = ? AND id < ?))", createdAt, createdAt, keyId);
  }
  const sql = `SELECT * FROM api_keys ${where.sql} ORDER BY created_at DESC, id DESC LIMIT ?`;
  const { results } = await env.DB.prepare(sql).bind(...where.args, filter.limit + 1).all<KeyRow>();
  return results.map(fromRow);
}

export async function markRevoked(env: Env, keyIds: string[], by: string, at = Date.now()): Promise<void> {
  if (keyIds.length === 0) return;
  await env.DB.batch(
    keyIds.map((id) => env.DB.prepare("UPDATE api_keys SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL").bind(at, by, id)),
  );
}

export async function updateKeyLimits(env: Env, keyId: string, plan: string | null, override: KeyLimitOverride | null): Promise<void> {
  await env.DB.prepare("UPDATE api_keys SET plan = ?, limit_override = ? WHERE id = ?")
    .bind(plan, override ? JSON.stringify(override) : null, keyId)
    .run();
}

/** Keys made by rotating `keyId`, and by rotating those, and so on. */
export async function rotatedDescendants(env: Env, keyId: string): Promise<KeyRecord[]> {
  const { results } = await env.DB.prepare(
    `WITH RECURSIVE chain(id) AS (SELECT id FROM api_keys WHERE rotated_from = ? UNION SELECT k.id FROM api_keys k JOIN chain c ON k.rotated_from = c.id)
     SELECT * FROM api_keys WHERE id IN (SELECT id FROM chain)`,
  )
    .bind(keyId)
    .all<KeyRow>();
  return results.map(fromRow);
}
