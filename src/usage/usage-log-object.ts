import { DurableObject } from "cloudflare:workers";
import { loadSettings } from "../config/settings";
import type { Env } from "../env";
import { migrate, type Migration } from "../guard/schema";
import type { ProductId } from "../products/types";
import * as clock from "../util/clock";
import { addressIndexFor, usageHour } from "./usage-client";
import { MAX_BATCH_SPAN_MS, STORED_CALL_FIELD, type StoredCall, type UsageBatchRow } from "./usage-batches";

/**
 * One account's per-call usage log: a SQLite Durable Object per account (`<product>:<account>`,
 * binding USAGE_LOG), apart from the account's guard so that recording usage never adds to
 * the object admission waits for, and each hibernates on its own. Isolates append each
 * account's calls to its object (src/usage/usage-log.ts); every read of calls comes here
 * (src/usage/usage-history.ts). No database or object holds or writes every account's calls:
 * docs/scale.md has the model.
 *
 * Rows are the D1 shape the log had (src/usage/usage-batches.ts): one per key per append,
 * the calls as a JSON array, primary key (key_id, first_at, batch), the only index.
 */
const MIGRATIONS: readonly Migration[] = [
  // 1: the starting schema. `last_use`: each key's last admitted call among batches retention deleted.
  (sql) =>
    sql.exec(`
      CREATE TABLE key_usage_batches (
        key_id TEXT NOT NULL, first_at INTEGER NOT NULL, batch TEXT NOT NULL, last_at INTEGER NOT NULL,
        last_admitted_at INTEGER, calls TEXT NOT NULL,
        PRIMARY KEY (key_id, first_at, batch)
      ) WITHOUT ROWID;
      CREATE TABLE last_use (key_id TEXT PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID;
    `),
];

/** Who an append is for: the object's own account (an alarm after a restart may not know its name). */
export interface UsageAccount {
  product: ProductId;
  accountId: string;
}

/** A batch as a read returns it. */
export type StoredBatch = Pick<UsageBatchRow, "first_at" | "batch" | "calls">;

/** A key's batches newest start first, from `newest` back to `oldest`, after the position already read. */
export interface BatchRange {
  newest: number;
  oldest: number;
  /** Only batches whose last call is at or after this. */
  since: number;
  /** The last batch already read: (first_at, batch). */
  read: { f: number; b: string };
  limit: number;
}

/** A search within the account: by client address (as recorded) and time. */
export interface AccountSearch {
  address?: string;
  since: number;
  until: number;
}

/** One matching call, as its batch stores it. */
export type MatchedCall = {
  key_id: string;
  first_at: number;
  batch: string;
  i: number;
  call: string;
};

export type KeyCalls = {
  key_id: string;
  first_seen: number;
  last_seen: number;
  calls: number;
  admitted: number;
};

/** Where a call sits among the account's, newest first: its time, key, batch and index. */
export interface CallPosition {
  t: number;
  k: string;
  f: number;
  b: string;
  i: number;
}

// D1 and Durable Object SQL bind at most 100 parameters per statement: 16 rows of 6.
const ROWS_PER_INSERT = 16;
/** Addresses told to the index this hour (per object, in memory): an address is told once an hour, not once a call. */
const NOTED_MAX = 10_000;

export class UsageLog extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private noted = new Set<string>();
  /** The retention alarm is known to be set (it is never cleared while rows remain). */
  private alarmSet = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    migrate(ctx.storage, MIGRATIONS);
  }

  /**
   * An isolate's flush of this account's calls: one row per key, written before the answer
   * leaves (so an acknowledged append survives this object's restarts). Then each client
   * address not yet told this hour goes to its address index object, for the search across
   * accounts; a failure there is logged and told again with the address's next call.
   */
  async append(account: UsageAccount, rows: UsageBatchRow[]): Promise<void> {
    for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) {
      const chunk = rows.slice(i, i + ROWS_PER_INSERT);
      this.sql.exec(
        `INSERT OR IGNORE INTO key_usage_batches (key_id, first_at, batch, last_at, last_admitted_at, calls)
         VALUES ${chunk.map(() => "(?, ?, ?, ?, ?, ?)").join(", ")}`,
        ...chunk.flatMap((r) => [r.key_id, r.first_at, r.batch, r.last_at, r.last_admitted_at, r.calls]),
      );
    }
    await this.keepRetention(rows);
    await this.noteAddresses(account, rows);
  }

  private async keepRetention(rows: UsageBatchRow[]): Promise<void> {
    if (this.alarmSet || rows.length === 0) return;
    if ((await this.ctx.storage.getAlarm()) === null)
      await this.ctx.storage.setAlarm(this.retentionEnd(Math.min(...rows.map((r) => r.last_at))));
    this.alarmSet = true;
  }

  private retentionEnd(lastAt: number): number {
    return lastAt + loadSettings(this.env).USAGE_RETENTION_DAYS * 86_400_000;
  }

  private async noteAddresses(account: UsageAccount, rows: UsageBatchRow[]): Promise<void> {
    const fresh = new Map<string, [string, number]>();
    for (const row of rows) {
      for (const call of JSON.parse(row.calls) as StoredCall[]) {
        const address = call[STORED_CALL_FIELD.clientAddress];
        if (address === null) continue;
        const hour = usageHour(row.first_at + call[STORED_CALL_FIELD.dt]);
        const key = `${hour}|${address}`;
        if (!this.noted.has(key)) fresh.set(key, [address, hour]);
      }
    }
    if (fresh.size === 0) return;
    if (this.noted.size + fresh.size > NOTED_MAX) this.noted.clear();
    for (const key of fresh.keys()) this.noted.add(key);
    const byIndex = new Map<string, [string, number][]>();
    for (const [address, hour] of fresh.values()) {
      const name = addressIndexFor(address);
      byIndex.set(name, [...(byIndex.get(name) ?? []), [address, hour]]);
    }
    await Promise.all(
      [...byIndex].map(async ([name, seen]) => {
        try {
          await this.env.USAGE_ADDRESSES.getByName(name).note(account, seen);
        } catch (err) {
          for (const [address, hour] of seen) this.noted.delete(`${hour}|${address}`);
          console.error(JSON.stringify({ msg: "usage_address_index_failed", index: name, addresses: seen.length, error: String(err) }));
        }
      }),
    );
  }

  /** A key's batches in a range, newest start first (see src/usage/usage-history.ts `callsNewestFirst`). */
  keyBatches(keyId: string, range: BatchRange): StoredBatch[] {
    return this.sql
      .exec<StoredBatch>(
        `SELECT first_at, batch, calls FROM key_usage_batches
         WHERE key_id = ? AND first_at <= ? AND first_at >= ? AND last_at >= ? AND (first_at < ? OR (first_at = ? AND batch < ?))
         ORDER BY first_at DESC, batch DESC LIMIT ?`,
        keyId,
        range.newest,
        range.oldest,
        range.since,
        range.read.f,
        range.read.f,
        range.read.b,
        range.limit,
      )
      .toArray();
  }

  /** The calls a search matches, one row each, as a subquery with its bound values. */
  private matching(search: AccountSearch, newest: number): { sql: string; args: (string | number)[] } {
    const address = search.address === undefined ? "" : "AND instr(b.calls, ?) > 0";
    const callAddress = search.address === undefined ? "" : `AND json_extract(call, '$[${STORED_CALL_FIELD.clientAddress}]') = ?`;
    return {
      sql: `SELECT * FROM (
          SELECT b.key_id, b.first_at, b.batch, j.key AS i, b.first_at + json_extract(j.value, '$[${STORED_CALL_FIELD.dt}]') AS at, j.value AS call
          FROM key_usage_batches b CROSS JOIN json_each(b.calls) j
          WHERE b.first_at <= ? AND b.first_at >= ? AND b.last_at >= ? ${address}
        ) WHERE at >= ? AND at <= ? ${callAddress}`,
      args: [
        newest,
        Math.max(0, search.since - MAX_BATCH_SPAN_MS),
        search.since,
        ...(search.address === undefined ? [] : [JSON.stringify(search.address)]),
        search.since,
        search.until,
        ...(search.address === undefined ? [] : [search.address]),
      ],
    };
  }

  /** The account's matching calls, newest first (then by key, batch and index), after `after`; `limit` of them. */
  searchCalls(search: AccountSearch, after: CallPosition | undefined, limit: number): MatchedCall[] {
    const { sql, args } = this.matching(search, Math.min(search.until, after?.t ?? Number.MAX_SAFE_INTEGER));
    return this.sql
      .exec<MatchedCall>(
        `SELECT key_id, first_at, batch, i, call FROM (${sql})
         ${after ? "WHERE (at, key_id, first_at, batch, i) < (?, ?, ?, ?, ?)" : ""}
         ORDER BY at DESC, key_id DESC, first_at DESC, batch DESC, i DESC LIMIT ?`,
        ...args,
        ...(after ? [after.t, after.k, after.f, after.b, after.i] : []),
        limit,
      )
      .toArray();
  }

  /** Per key, the search's calls, the most recently used first; `limit` keys. */
  summariseKeys(search: AccountSearch, limit: number): KeyCalls[] {
    const { sql, args } = this.matching(search, search.until);
    return this.sql
      .exec<KeyCalls>(
        `SELECT key_id, MIN(at) AS first_seen, MAX(at) AS last_seen, COUNT(*) AS calls,
                SUM(json_extract(call, '$[${STORED_CALL_FIELD.outcome}]') = 'admitted') AS admitted
         FROM (${sql}) GROUP BY key_id ORDER BY last_seen DESC, key_id DESC LIMIT ?`,
        ...args,
        limit,
      )
      .toArray();
  }

  /**
   * Each key's last admitted call: the newest batch with one, walking the primary key
   * backwards (by MAX_BATCH_SPAN_MS only batches starting at most that much earlier can
   * hold a later one), or what retention folded into `last_use`.
   */
  lastUsed(keyIds: string[]): Record<string, number | null> {
    const out: Record<string, number | null> = {};
    for (const keyId of keyIds) {
      const row = this.sql
        .exec<{ at: number | null }>(
          `SELECT MAX(COALESCE((SELECT at FROM last_use WHERE key_id = ?1), 0), COALESCE((
             SELECT MAX(b.last_admitted_at) FROM key_usage_batches b WHERE b.key_id = ?1 AND b.first_at >= (
               SELECT n.first_at FROM key_usage_batches n WHERE n.key_id = ?1 AND n.last_admitted_at IS NOT NULL ORDER BY n.first_at DESC LIMIT 1
             ) - ${MAX_BATCH_SPAN_MS}), 0)) AS at`,
          keyId,
        )
        .one();
      out[keyId] = row.at ? row.at : null;
    }
    return out;
  }

  /**
   * Retention: deletes whole batches whose last call is older than USAGE_RETENTION_DAYS,
   * folding each key's last admitted call into `last_use` first, so a key's last use
   * outlives its history; then sleeps until the oldest batch left is due.
   */
  override async alarm(): Promise<void> {
    const cutoff = clock.now() - loadSettings(this.env).USAGE_RETENTION_DAYS * 86_400_000;
    this.ctx.storage.transactionSync(() => {
      this.sql.exec(
        `INSERT INTO last_use (key_id, at)
         SELECT key_id, MAX(last_admitted_at) FROM key_usage_batches WHERE last_at < ? AND last_admitted_at IS NOT NULL GROUP BY key_id
         ON CONFLICT (key_id) DO UPDATE SET at = MAX(at, excluded.at)`,
        cutoff,
      );
      this.sql.exec("DELETE FROM key_usage_batches WHERE last_at < ?", cutoff);
    });
    const oldest = this.sql.exec<{ at: number | null }>("SELECT MIN(last_at) AS at FROM key_usage_batches").one().at;
    this.alarmSet = oldest !== null;
    if (oldest !== null) await this.ctx.storage.setAlarm(this.retentionEnd(oldest));
  }
}
