import type { KeyOutboxEntry, KeyOutboxFacts } from "../limits/guard-protocol";

/**
 * How long a key decision's outbox entry waits for its caller's acknowledgement before the
 * guard's alarm delivers it (the caller is taken to have died): well past what a call
 * takes to deliver it. A failed delivery is tried again as long after.
 */
export const OUTBOX_GRACE_MS = 30_000;

/** An outbox entry as kept: what the caller handed over and what the guard decided. */
export interface KeptDecision {
  id: string;
  entry: KeyOutboxEntry;
  facts: KeyOutboxFacts;
}

/**
 * The account guard's outbox of key decisions (`key_outbox` in schema.ts) whose
 * record in D1 and the audit log no caller has acknowledged yet (KeyOutboxEntry in
 * guard-protocol.ts; keys/key-outbox.ts delivers them). Times are on the guard's clock.
 */
export class DecisionOutbox {
  /** Entries there when this instance opened: kept by calls that may have died with the previous one, so due at once. */
  private readonly inherited: Set<string>;

  // Its table is created by the guard's migrations (schema.ts).
  constructor(private readonly sql: SqlStorage) {
    this.inherited = new Set(this.ids());
  }

  /** Whether this instance found entries it did not keep itself (its alarm should come at once). */
  get inheritedAny(): boolean {
    return this.inherited.size > 0;
  }

  /** Keeps an entry; true when the outbox was empty (nothing has asked for an alarm yet). */
  keep(entry: KeyOutboxEntry, facts: KeyOutboxFacts, now: number): boolean {
    const empty = this.sql.exec("SELECT 1 FROM key_outbox LIMIT 1").toArray().length === 0;
    this.sql.exec("INSERT OR REPLACE INTO key_outbox (id, at, entry) VALUES (?, ?, ?)", entry.id, now, JSON.stringify({ entry, facts }));
    return empty;
  }

  has(id: string): boolean {
    return this.sql.exec("SELECT 1 FROM key_outbox WHERE id = ?", id).toArray().length > 0;
  }

  delivered(id: string): void {
    this.sql.exec("DELETE FROM key_outbox WHERE id = ?", id);
    this.inherited.delete(id);
  }

  /** The entries no caller acknowledged within the grace period, and the inherited ones. */
  due(now: number): KeptDecision[] {
    return this.sql
      .exec<{ id: string; at: number; entry: string }>("SELECT id, at, entry FROM key_outbox")
      .toArray()
      .filter((row) => row.at <= now - OUTBOX_GRACE_MS || this.inherited.has(row.id))
      .map((row) => ({ id: row.id, ...(JSON.parse(row.entry) as Omit<KeptDecision, "id">) }));
  }

  /** When (ms) the alarm should come back for what is left, after `failed` deliveries; Infinity: nothing is left. */
  next(now: number, failed: boolean): number {
    const oldest = this.sql.exec<{ at: number | null }>("SELECT MIN(at) AS at FROM key_outbox").one().at;
    if (oldest === null) return Infinity;
    return Math.max(failed ? now + OUTBOX_GRACE_MS : now, oldest + OUTBOX_GRACE_MS);
  }

  private ids(): string[] {
    return this.sql
      .exec<{ id: string }>("SELECT id FROM key_outbox")
      .toArray()
      .map((r) => r.id);
  }
}
