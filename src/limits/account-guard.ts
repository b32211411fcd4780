import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";

/** What the edge tells the guard about one request. */
export interface AdmitRequest {
  via: "jwt" | "key";
  userId?: string;
  tokenId?: string;
  /** Access token `iat`, seconds. */
  issuedAt?: number;
}

export type AdmitDecision = { allow: true } | { allow: false; reason: "revoked" };

/**
 * One SQLite-backed Durable Object per account: everything mutable about the account's
 * credentials lives here, so the answer to "may this request proceed?" comes from one
 * single-threaded place and a revocation is seen by the very next request, wherever it
 * lands. Every authenticated request makes exactly one `admit` call.
 */
export class AccountGuard extends DurableObject<Env> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS revoked_tokens (jti TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS session_epochs (user_id TEXT PRIMARY KEY, revoked_before_ms INTEGER NOT NULL);
    `);
  }

  admit(request: AdmitRequest): AdmitDecision {
    if (request.tokenId !== undefined) {
      const revoked = this.sql.exec("SELECT 1 FROM revoked_tokens WHERE jti = ?", request.tokenId).toArray();
      if (revoked.length > 0) return { allow: false, reason: "revoked" };
    }
    if (request.userId !== undefined && request.issuedAt !== undefined) {
      const epoch = this.sql
        .exec<{ revoked_before_ms: number }>("SELECT revoked_before_ms FROM session_epochs WHERE user_id = ?", request.userId)
        .toArray()[0];
      // `iat` has whole-second resolution: a token from the same second as the
      // revocation is refused, erring on the side of the revocation.
      if (epoch && request.issuedAt * 1000 <= epoch.revoked_before_ms) return { allow: false, reason: "revoked" };
    }
    return { allow: true };
  }

  /** Refuses one access token (by `jti`) until it would have expired anyway. */
  async revokeToken(tokenId: string, expiresAt: number): Promise<void> {
    this.sql.exec("INSERT OR REPLACE INTO revoked_tokens (jti, expires_at) VALUES (?, ?)", tokenId, expiresAt);
    await this.schedulePrune(expiresAt * 1000);
  }

  /** Refuses every access token of `userId` issued up to now (logout everywhere). */
  revokeSessions(userId: string): void {
    this.sql.exec(
      "INSERT OR REPLACE INTO session_epochs (user_id, revoked_before_ms) VALUES (?, ?)",
      userId,
      Date.now(),
    );
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
