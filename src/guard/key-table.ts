import type { GuardedKey } from "../limits/guard-protocol";
import type { KeyLimitOverride } from "../limits/types";

/** A key's stored columns (the guard's `keys` table; D1's `api_keys` read with `id AS key_id`). */
export interface KeyRow {
  key_id: string;
  scopes: string;
  plan: string | null;
  owner_user_id: string | null;
  expires_at: number | null;
  revoked_at: number | null;
  limit_override: string | null;
  [column: string]: SqlStorageValue;
}

/** A key as its guard stores it: what admission reads of it, and when it was revoked (null: it was not). */
export type StoredKey = GuardedKey & { revokedAt: number | null };

/**
 * The account's keys in its guard's storage (the `keys` table), the one place their SQL
 * is written. The guard changes them only inside its mutations (account-guard.ts
 * `mutate`), which drop the parsed rows it keeps in memory.
 */
export class KeyTable {
  // Its table is created by the guard's migrations (schema.ts).
  constructor(private readonly sql: SqlStorage) {}

  get(keyId: string): StoredKey | undefined {
    const row = this.sql.exec<KeyRow>("SELECT * FROM keys WHERE key_id = ?", keyId).toArray()[0];
    return row && storedKey(row);
  }

  has(keyId: string): boolean {
    return this.get(keyId) !== undefined;
  }

  /** Adds a usable key (not revoked). */
  insert(key: GuardedKey): void {
    this.sql.exec(
      "INSERT INTO keys (key_id, scopes, plan, owner_user_id, expires_at, revoked_at, limit_override) VALUES (?, ?, ?, ?, ?, NULL, ?)",
      key.keyId,
      JSON.stringify(key.scopes),
      key.plan,
      key.ownerUserId,
      key.expiresAt,
      key.limitOverride ? JSON.stringify(key.limitOverride) : null,
    );
  }

  /** Revokes the key at `at`; false when it was already revoked or is unknown. */
  revoke(keyId: string, at: number): boolean {
    return this.sql.exec("UPDATE keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL", at, keyId).rowsWritten > 0;
  }

  /** Revokes every key not revoked yet, at `at`; their ids. */
  revokeAll(at: number): string[] {
    return this.sql
      .exec<{ key_id: string }>("UPDATE keys SET revoked_at = ? WHERE revoked_at IS NULL RETURNING key_id", at)
      .toArray()
      .map((r) => r.key_id);
  }

  setExpiry(keyId: string, expiresAt: number): void {
    this.sql.exec("UPDATE keys SET expires_at = ? WHERE key_id = ?", expiresAt, keyId);
  }

  /** false when the key is unknown. */
  setLimits(keyId: string, plan: string | null, override: KeyLimitOverride | null): boolean {
    const written = this.sql.exec(
      "UPDATE keys SET plan = ?, limit_override = ? WHERE key_id = ?",
      plan,
      override ? JSON.stringify(override) : null,
      keyId,
    ).rowsWritten;
    return written > 0;
  }

  /** The ids of a user's own keys (ZakGT). */
  ownedBy(userId: string): string[] {
    return this.sql
      .exec<{ key_id: string }>("SELECT key_id FROM keys WHERE owner_user_id = ?", userId)
      .toArray()
      .map((r) => r.key_id);
  }
}

export function storedKey(row: KeyRow): StoredKey {
  return {
    keyId: row.key_id,
    scopes: JSON.parse(row.scopes) as string[],
    plan: row.plan,
    ownerUserId: row.owner_user_id,
    expiresAt: row.expires_at,
    limitOverride: row.limit_override ? (JSON.parse(row.limit_override) as KeyLimitOverride) : null,
    revokedAt: row.revoked_at,
  };
}
