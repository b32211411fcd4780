import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";

/** What the edge tells the guard about one request. */
export interface AdmitRequest {
  via: "jwt" | "key";
  keyId?: string;
  userId?: string;
  tokenId?: string;
  /** Access token `iat`, seconds. */
  issuedAt?: number;
}

/** The mutable facts about a key that only the guard holds. */
export interface GuardedKey {
  keyId: string;
  scopes: string[];
  plan: string | null;
  ownerUserId: string | null;
  /** ms since epoch, or null for no expiry. */
  expiresAt: number | null;
}

export type AdmitDecision =
  | { allow: true; key?: GuardedKey }
  // One reason for every refused credential: callers must not learn which it was.
  | { allow: false; reason: "credential" };

interface KeyRow {
  key_id: string;
  scopes: string;
  plan: string | null;
  owner_user_id: string | null;
  expires_at: number | null;
  revoked_at: number | null;
  [column: string]: SqlStorageValue;
}

const REFUSED: AdmitDecision = { allow: false, reason: "credential" };

/**
 * One SQLite-backed Durable Object per account (`<product>:<account>`): everything
 * mutable about the account's credentials lives here, so "may this request proceed?"
 * is answered in one single-threaded place. A revocation is applied here before the
 * revoke call returns, so the very next request is refused wherever it lands; nothing
 * cached elsewhere (KV, an isolate) can say "valid" on its own. Every authenticated
 * request makes exactly one `admit` call.
 */
export class AccountGuard extends DurableObject<Env> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS keys (
        key_id TEXT PRIMARY KEY, scopes TEXT NOT NULL, plan TEXT, owner_user_id TEXT,
        expires_at INTEGER, revoked_at INTEGER
      );
      CREATE TABLE IF NOT EXISTS revoked_tokens (jti TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS session_epochs (user_id TEXT PRIMARY KEY, revoked_before_ms INTEGER NOT NULL);
    `);
  }

  admit(request: AdmitRequest): AdmitDecision {
    if (request.via === "key") {
      // A key the guard has never registered is refused like a revoked one.
      const row = this.sql.exec<KeyRow>("SELECT * FROM keys WHERE key_id = ?", request.keyId ?? "").toArray()[0];
      if (!row || row.revoked_at !== null) return REFUSED;
      if (row.expires_at !== null && Date.now() >= row.expires_at) return REFUSED;
      return { allow: true, key: toGuardedKey(row) };
    }
    if (request.tokenId !== undefined) {
      const revoked = this.sql.exec("SELECT 1 FROM revoked_tokens WHERE jti = ?", request.tokenId).toArray();
      if (revoked.length > 0) return REFUSED;
    }
    if (request.userId !== undefined && request.issuedAt !== undefined) {
      const epoch = this.sql
        .exec<{ revoked_before_ms: number }>("SELECT revoked_before_ms FROM session_epochs WHERE user_id = ?", request.userId)
        .toArray()[0];
      // `iat` has whole-second resolution: a token from the same second as the
      // revocation is refused, erring on the side of the revocation.
      if (epoch && request.issuedAt * 1000 <= epoch.revoked_before_ms) return REFUSED;
    }
    return { allow: true };
  }

  /** Makes a new key usable. Called before its plaintext is handed to anyone. */
  registerKey(key: GuardedKey): void {
    this.sql.exec(
      "INSERT INTO keys (key_id, scopes, plan, owner_user_id, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, NULL)",
      key.keyId,
      JSON.stringify(key.scopes),
      key.plan,
      key.ownerUserId,
      key.expiresAt,
    );
  }

  /** Refuses the key from now on. Returns false when it was already revoked or unknown. */
  revokeKey(keyId: string): boolean {
    const cursor = this.sql.exec("UPDATE keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL", Date.now(), keyId);
    return cursor.rowsWritten > 0;
  }

  /** Revokes every active key of the account, optionally only those owned by one user. */
  revokeAllKeys(ownerUserId?: string): string[] {
    const rows = this.sql
      .exec<{ key_id: string }>(
        ownerUserId === undefined
          ? "UPDATE keys SET revoked_at = ? WHERE revoked_at IS NULL RETURNING key_id"
          : "UPDATE keys SET revoked_at = ? WHERE revoked_at IS NULL AND owner_user_id = ? RETURNING key_id",
        ...(ownerUserId === undefined ? [Date.now()] : [Date.now(), ownerUserId]),
      )
      .toArray();
    return rows.map((r) => r.key_id);
  }

  /** Refuses one access token (by `jti`) until it would have expired anyway. */
  async revokeToken(tokenId: string, expiresAt: number): Promise<void> {
    this.sql.exec("INSERT OR REPLACE INTO revoked_tokens (jti, expires_at) VALUES (?, ?)", tokenId, expiresAt);
    await this.schedulePrune(expiresAt * 1000);
  }

  /** Refuses every access token of `userId` issued up to now (logout everywhere). */
  revokeSessions(userId: string): void {
    this.sql.exec("INSERT OR REPLACE INTO session_epochs (user_id, revoked_before_ms) VALUES (?, ?)", userId, Date.now());
  }

  /** Drops revoked token ids once their tokens have expired: they can no longer verify. */
  override async alarm(): Promise<void> {
    const now = Math.floor(Date.now() / 1000);
    this.sql.exec("DELETE FROM revoked_tokens WHERE expires_at < ?", now);
    const next = this.sql.exec<{ next: number | null }>("SELECT MIN(expires_at) AS next FROM revoked_tokens").one().next;
    if (next !== null) await this.ctx.storage.setAlarm((next + 1) * 1000);
  }

  private async schedulePrune(atMs: number): Promise<void> {
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > atMs + 1000) await this.ctx.storage.setAlarm(atMs + 1000);
  }
}

function toGuardedKey(row: KeyRow): GuardedKey {
  return {
    keyId: row.key_id,
    scopes: JSON.parse(row.scopes) as string[],
    plan: row.plan,
    ownerUserId: row.owner_user_id,
    expiresAt: row.expires_at,
  };
}
