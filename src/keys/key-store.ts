import { loadSettings, type Settings } from "../config/settings";
import type { Env } from "../env";
import { GatewayError } from "../http/errors";
import type { KeyLimitOverride } from "../limits/types";
import type { ProductId } from "../products/types";
import { Lru } from "../util/lru";
import * as clock from "../util/clock";
import { whereBuilder } from "./sql-where";
import { lastUses } from "../usage/usage-history";

/**
 * Key records in D1 (the source of truth for listings) and the hash -> key reference
 * cache in KV. Both hold the key's SHA-256 only. Whether a key may be used right now is
 * never decided here: that is the account guard's job (see guard/account-guard.ts).
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
  /** The key this one replaced (rotation or roll). */
  rotatedFrom?: string | null;
  /**
   * `roll`: made by an admin roll (its plaintext shown only to the admin); `replace`: issued
   * by an admin for a key that could no longer be rolled (revoked or expired); null: a
   * rotation made with the old key.
   */
  replacedVia?: "roll" | "replace" | null;
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
  revokedBy: string | null;
  /** Why it was revoked and the ticket tracking it, as the revoking admin (or intake) gave them. */
  revokeReason?: string | null;
  revokeTicket?: string | null;
  /** The key's last call the guard admitted, from its account's usage log (`withLastUse`). */
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
  replaced_via: "roll" | "replace" | null;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
  revoked_by: string | null;
  revoke_reason: string | null;
  revoke_ticket: string | null;
  last_used_at: number | null;
}

const kvKey = (hash: string) => `key:${hash}`;

/** The columns of a KeyRow, from `api_keys` named `keys`. */
const KEY_COLUMNS = `keys.id, keys.product, keys.account_id, keys.owner_user_id, keys.label, keys.prefix, keys.last4, keys.scopes, keys.plan,
  keys.limit_override, keys.imported, keys.rotated_from, keys.replaced_via, keys.created_at, keys.expires_at, keys.revoked_at, keys.revoked_by,
  keys.revoke_reason, keys.revoke_ticket, keys.last_used_at`;

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
    replacedVia: row.replaced_via,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    revokedBy: row.revoked_by,
    revokeReason: row.revoke_reason,
    revokeTicket: row.revoke_ticket,
    lastUsedAt: row.last_used_at,
  };
}

export function keyStatus(record: KeyRecord, now = clock.now()): "active" | "revoked" | "expired" {
  if (record.revokedAt !== null) return "revoked";
  if (record.expiresAt !== null && now >= record.expiresAt) return "expired";
  return "active";
}

/**
 * Stores a new key record, then its hash -> owner mapping in KV. A key that would take its
 * account past MAX_ACTIVE_KEYS_PER_ACCOUNT (or a ZakGT user past MAX_ACTIVE_KEYS_PER_USER)
 * is refused with 409: the count and the insert are one statement, and D1 runs statements
 * one at a time, so racing creations cannot overshoot. A rotation or a roll adds no key
 * for long (the old one stops now or after its grace period) and is not capped; a
 * replacement of a dead key is a key more, and is.
 */
export async function insertKey(env: Env, record: KeyRecord, hash: string): Promise<void> {
  const { columns, values, placeholders } = keyRow(record, hash);
  if (record.rotatedFrom && record.replacedVia !== "replace") {
    await env.DB.prepare(`INSERT INTO api_keys (${columns}) VALUES (${placeholders})`)
      .bind(...values)
      .run();
  } else {
    const cap = activeKeyCap(loadSettings(env), record);
    const inserted = await env.DB.prepare(
      `INSERT INTO api_keys (${columns}) SELECT ${placeholders}
       WHERE (SELECT COUNT(*) FROM api_keys WHERE product = ? AND account_id = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)) < ?`,
    )
      .bind(...values, record.product, record.accountId, record.createdAt, cap.limit)
      .run();
    if (inserted.meta.changes === 0) {
      throw new GatewayError(
        "CONFLICT",
        `This ${cap.of} already has ${cap.limit} active keys, the most allowed; revoke one to create another`,
      );
    }
  }
  await publishKey(env, record, hash);
}

/**
 * A rotated or rolled key's record, inserted only if the statement just before it in the
 * same batch changed a row (guard-birth.ts: a roll decided in D1). Published with publishKey once inserted.
 */
export function successorInsertAfterChange(env: Env, record: KeyRecord, hash: string): D1PreparedStatement {
  const { columns, values, placeholders } = keyRow(record, hash);
  return env.DB.prepare(`INSERT INTO api_keys (${columns}) SELECT ${placeholders} WHERE changes() > 0`).bind(...values);
}

/** The hash -> owner mapping in KV, once the record is in D1. */
export async function publishKey(env: Env, record: KeyRecord, hash: string): Promise<void> {
  // This isolate may have seen the hash as unknown (see `unknownHashes`).
  unknownHashes.delete(hash);
  const ref: KeyRef = { keyId: record.keyId, product: record.product, accountId: record.accountId };
  await env.KEYS_KV.put(kvKey(hash), JSON.stringify(ref));
}

function keyRow(record: KeyRecord, hash: string) {
  const values = [
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
    record.replacedVia ?? null,
  ];
  const columns =
    "id, key_hash, product, account_id, owner_user_id, label, prefix, last4, scopes, plan, limit_override, imported, created_at, expires_at, rotated_from, replaced_via";
  return { columns, values, placeholders: values.map(() => "?").join(", ") };
}

/**
 * The most active keys the record's account may hold. A ZakGT user's keys all live in the
 * user's own account (account = owner user, for developer keys and admin-made ZakGT keys
 * alike), so counting the account counts the user.
 */
function activeKeyCap(settings: Settings, record: KeyRecord): { limit: number; of: "user" | "account" } {
  const perAccount = settings.MAX_ACTIVE_KEYS_PER_ACCOUNT;
  const perUser = settings.MAX_ACTIVE_KEYS_PER_USER;
  return record.ownerUserId !== null && perUser <= perAccount ? { limit: perUser, of: "user" } : { limit: perAccount, of: "account" };
}

// hash -> owner, per isolate. The mapping never changes and says nothing about whether
// the key may be used (the guard decides that on every request), so caching it is safe.
const refs = new Lru<string, KeyRef>(10_000);

/**
 * Hashes found neither in KV nor in D1, per isolate, until the time stored (ms). Only for
 * checksum-valid zgate keys: zgate generates those and refuses to import them by
 * plaintext, so such a hash cannot have been presented before its key existed, and
 * forgeries (the CRC32 is public) cost one lookup per isolate, not one per request.
 * Entries expire all the same: a zgate-shaped key imported by its SHA-256 (from another
 * zgate deployment, say) clears its entry only in the isolate that imports it.
 */
const unknownHashes = new Lru<string, number>(10_000);
const UNKNOWN_HASH_TTL_MS = 60_000;

/** Whether this isolate found the hash in neither KV nor D1 within the last minute (checksum-valid zgate keys only). */
export function isKnownUnknown(hash: string): boolean {
  return (unknownHashes.get(hash) ?? 0) > clock.now();
}

/** The owner of a hash this isolate has already found (no storage read): what identification asks first. */
export function knownKeyRef(hash: string): KeyRef | undefined {
  return refs.get(hash);
}

export interface LookupOptions {
  /** The hash is of a checksum-valid zgate key: remember it if it is unknown (see `unknownHashes`). */
  rememberUnknown?: boolean;
  /**
   * Read KV only, never D1 (a caller over its failed-authentication limit): every key is
   * written to KV when it is made, so a flood of guesses costs a KV read each and never
   * reaches D1. A miss is not remembered as unknown: only a full lookup says so.
   */
  kvOnly?: boolean;
}

/** Isolate caches, then KV (the mapping never changes), then D1, refilling KV in the background. */
export async function findKeyByHash(
  env: Env,
  hash: string,
  waitUntil: (p: Promise<unknown>) => void,
  options: LookupOptions = {},
): Promise<KeyRef | null> {
  const known = knownKeyRef(hash);
  if (known) return known;
  if (isKnownUnknown(hash)) return null;
  const ref = options.kvOnly ? await readKv(env, hash) : await lookupKeyByHash(env, hash, waitUntil);
  if (ref) refs.set(hash, ref);
  else if (options.rememberUnknown && !options.kvOnly) unknownHashes.set(hash, clock.now() + UNKNOWN_HASH_TTL_MS);
  return ref;
}

const readKv = (env: Env, hash: string) => env.KEYS_KV.get<KeyRef>(kvKey(hash), "json");

/** KV, then D1 (refilling KV in the background), past the isolate caches: for admin lookups, which must see a key imported anywhere. */
export async function lookupKeyByHash(env: Env, hash: string, waitUntil: (p: Promise<unknown>) => void): Promise<KeyRef | null> {
  const cached = await readKv(env, hash);
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
  const row = await env.DB.prepare(`SELECT ${KEY_COLUMNS} FROM api_keys keys WHERE keys.id = ?`).bind(keyId).first<KeyRow>();
  return row ? (await withLastUse(env, [fromRow(row)]))[0]! : null;
}

/**
 * Records with their last use: the per-call history is in each account's usage log, not in
 * D1, so a listing asks once per account it shows (`api_keys.last_used_at` stays for keys
 * imported with one).
 */
async function withLastUse(env: Env, records: KeyRecord[]): Promise<KeyRecord[]> {
  const used = await lastUses(env, records);
  return records.map((r) => {
    const at = Math.max(r.lastUsedAt ?? 0, used.get(r.keyId) ?? 0);
    return { ...r, lastUsedAt: at > 0 ? at : null };
  });
}

export interface KeyFilter {
  product?: ProductId;
  accountId?: string;
  ownerUserId?: string;
  status?: "active" | "revoked" | "expired";
  /** The last 4 characters, exactly. */
  last4?: string;
  /** Part of the label, any case. */
  label?: string;
  /** Created at or after / before this time (ms). */
  createdAfter?: number;
  createdBefore?: number;
  /** Keyset pagination: records created before this (created_at, id). */
  after?: { createdAt: number; keyId: string };
  limit: number;
}

/** Newest first. Returns one extra record when there are more, for the caller's cursor. */
export async function listKeys(env: Env, filter: KeyFilter, now = clock.now()): Promise<KeyRecord[]> {
  const where = whereBuilder();
  if (filter.product) where.add("product = ?", filter.product);
  if (filter.accountId) where.add("account_id = ?", filter.accountId);
  if (filter.ownerUserId) where.add("owner_user_id = ?", filter.ownerUserId);
  if (filter.status === "revoked") where.add("revoked_at IS NOT NULL");
  if (filter.status === "active") where.add("revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)", now);
  if (filter.status === "expired") where.add("revoked_at IS NULL AND expires_at <= ?", now);
  if (filter.last4 !== undefined) where.add("last4 = ?", filter.last4);
  if (filter.label !== undefined) where.add("label LIKE ? ESCAPE '\\'", `%${filter.label.replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`);
  if (filter.createdAfter !== undefined) where.add("created_at >= ?", filter.createdAfter);
  if (filter.createdBefore !== undefined) where.add("created_at < ?", filter.createdBefore);
  if (filter.after) {
    const { createdAt, keyId } = filter.after;
    where.add("(created_at < ? OR (created_at = ? AND id < ?))", createdAt, createdAt, keyId);
  }
  const sql = `SELECT ${KEY_COLUMNS} FROM api_keys keys ${where.sql} ORDER BY keys.created_at DESC, keys.id DESC LIMIT ?`;
  const { results } = await env.DB.prepare(sql)
    .bind(...where.args, filter.limit + 1)
    .all<KeyRow>();
  return withLastUse(env, results.map(fromRow));
}

/** Why a key was revoked, as the revoking admin (or intake) gave it. */
export interface RevokeContext {
  reason?: string | null;
  ticket?: string | null;
}

export async function markRevoked(env: Env, keyIds: string[], by: string, context: RevokeContext = {}, at = Date.now()): Promise<void> {
  if (keyIds.length === 0) return;
  await env.DB.batch(
    keyIds.map((id) =>
      env.DB.prepare(
        "UPDATE api_keys SET revoked_at = ?, revoked_by = ?, revoke_reason = ?, revoke_ticket = ? WHERE id = ? AND revoked_at IS NULL",
      ).bind(at, by, context.reason ?? null, context.ticket ?? null, id),
    ),
  );
}

export async function updateKeyLimits(env: Env, keyId: string, plan: string | null, override: KeyLimitOverride | null): Promise<void> {
  await env.DB.prepare("UPDATE api_keys SET plan = ?, limit_override = ? WHERE id = ?")
    .bind(plan, override ? JSON.stringify(override) : null, keyId)
    .run();
}

/** Keys made by rotating `keyId` (with the key itself, not an admin roll), and by rotating those, and so on. */
export async function rotatedDescendants(env: Env, keyId: string): Promise<KeyRecord[]> {
  const { results } = await env.DB.prepare(
    `WITH RECURSIVE chain(id) AS (
       SELECT id FROM api_keys WHERE rotated_from = ?1 AND replaced_via IS NULL
       UNION SELECT k.id FROM api_keys k JOIN chain c ON k.rotated_from = c.id AND k.replaced_via IS NULL)
     SELECT ${KEY_COLUMNS} FROM api_keys keys WHERE keys.id IN (SELECT id FROM chain)`,
  )
    .bind(keyId)
    .all<KeyRow>();
  return results.map(fromRow);
}

/** Keys an admin rolled `keyIds` to. */
export async function rolledSuccessors(env: Env, keyIds: string[]): Promise<KeyRecord[]> {
  if (keyIds.length === 0) return [];
  const { results } = await env.DB.prepare(
    `SELECT ${KEY_COLUMNS} FROM api_keys keys WHERE keys.replaced_via = 'roll' AND keys.rotated_from IN (${keyIds.map(() => "?").join(", ")})`,
  )
    .bind(...keyIds)
    .all<KeyRow>();
  return results.map(fromRow);
}

/** A rolled key's new end (its grace period), as the guard set it. Writes nothing when D1 has it already. */
export async function setExpiry(env: Env, keyId: string, expiresAt: number | null): Promise<void> {
  await env.DB.prepare("UPDATE api_keys SET expires_at = ?1 WHERE id = ?2 AND expires_at IS NOT ?1").bind(expiresAt, keyId).run();
}
