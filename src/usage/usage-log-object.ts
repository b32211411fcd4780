import { DurableObject } from "cloudflare:workers";
import { loadSettings } from "../config/settings";
import type { Env } from "../env";
import { migrate, type Migration } from "../guard/schema";
import type { ProductId } from "../products/types";
import * as clock from "../util/clock";
import { rowsOfSlice, segmentOf, type Slice, type SliceIndex } from "./usage-archive";
import { addressIndexFor, olderFirst, usageHour, type SeenAddress } from "./usage-client";
import { decodeCall, MAX_BATCH_SPAN_MS, STORED_CALL_FIELD, type StoredCall, type UsageBatchRow } from "./usage-batches";

/**
 * One account's per-call usage log: a SQLite Durable Object per account (`<product>:<account>`,
 * binding USAGE_LOG), apart from the account's guard so that recording usage never adds to
 * the object admission waits for, and each hibernates on its own. Isolates append each
 * account's calls to its object (src/usage/usage-log.ts); every read of calls comes here
 * (src/usage/usage-history.ts). No database or object holds or writes every account's calls:
 * docs/scale.md has the model.
 *
 * Rows are the D1 shape the log had (src/usage/usage-batches.ts): one per key per append,
 * the calls as a JSON array, primary key (key_id, first_at, batch), the only index. They
 * are open for at most COMPACT_AFTER_MS (or until COMPACT_BYTES of them gathered): then the
 * alarm moves them to R2 (src/usage/usage-archive.ts), in segments of at most
 * SEGMENT_BYTES, keeping an index row per key per segment here, so an account's object
 * stays far below a Durable Object's 10 GB whatever its traffic and retention.
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
      CREATE TABLE segments (segment TEXT PRIMARY KEY, object TEXT NOT NULL, first_at INTEGER NOT NULL, last_at INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE key_segments (
        key_id TEXT NOT NULL, max_first_at INTEGER NOT NULL, segment TEXT NOT NULL, min_first_at INTEGER NOT NULL,
        last_at INTEGER NOT NULL, last_admitted_at INTEGER, start INTEGER NOT NULL, end INTEGER NOT NULL,
        PRIMARY KEY (key_id, max_first_at, segment)
      ) WITHOUT ROWID;
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
/** Rows are moved to R2 at most this long after their first call (the alarm). */
export const COMPACT_AFTER_MS = 3_600_000;
/** ...or once this much call text is open, whichever comes first. */
const COMPACT_BYTES = 1_000_000_000;
/** One R2 object of a compaction holds at most about this much (an object has 128 MB of memory). */
const SEGMENT_BYTES = 16_000_000;
/** Rows read at a time while compacting. */
const COMPACT_READ = 256;
/** Addresses told to the index this hour (per object, in memory): an address is told once an hour, not once a call. */
const NOTED_MAX = 10_000;

export class UsageLog extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private noted = new Set<string>();
  /** When the alarm is set for (null: none; undefined: not known since this object started). */
  private alarmAt: number | null | undefined;
  /** Call text appended since the last compaction (as far as this object has run). */
  private openBytes = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    migrate(ctx.storage, MIGRATIONS);
  }

  /**
   * An isolate's flush of this account's calls: one row per key, written before the answer
   * leaves (so an acknowledged append survives this object's restarts). Then each client
   * address of the calls (`seen`, usage-client.ts seenAddresses) not yet told this hour goes
   * to its address index object, for the search across accounts; a failure there is logged
   * and told again with the address's next call.
   */
  async append(account: UsageAccount, rows: UsageBatchRow[], seen: SeenAddress[]): Promise<void> {
    for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) {
      const chunk = rows.slice(i, i + ROWS_PER_INSERT);
      this.sql.exec(
        `INSERT OR IGNORE INTO key_usage_batches (key_id, first_at, batch, last_at, last_admitted_at, calls)
         VALUES ${chunk.map(() => "(?, ?, ?, ?, ?, ?)").join(", ")}`,
        ...chunk.flatMap((r) => [r.key_id, r.first_at, r.batch, r.last_at, r.last_admitted_at, r.calls]),
      );
    }
    this.openBytes += rows.reduce((n, r) => n + r.calls.length, 0);
    if (rows.length > 0)
      await this.wakeBy(this.openBytes > COMPACT_BYTES ? clock.now() : Math.min(...rows.map((r) => r.first_at)) + COMPACT_AFTER_MS);
    await this.noteAddresses(account, seen);
  }

  /** Sets the alarm for `at` unless it is set for earlier. */
  private async wakeBy(at: number): Promise<void> {
    if (this.alarmAt === undefined) this.alarmAt = await this.ctx.storage.getAlarm();
    if (this.alarmAt !== null && this.alarmAt <= at) return;
    this.alarmAt = at;
    await this.ctx.storage.setAlarm(at);
  }

  private retentionEnd(lastAt: number): number {
    return lastAt + loadSettings(this.env).USAGE_RETENTION_DAYS * 86_400_000;
  }

  private async noteAddresses(account: UsageAccount, seen: SeenAddress[]): Promise<void> {
    const fresh = new Map<string, SeenAddress>();
    for (const [address, hour] of seen) {
      const key = `${hour}|${address}`;
      if (!this.noted.has(key)) fresh.set(key, [address, hour]);
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

  /**
   * A key's batches in a range, newest start first (see src/usage/usage-history.ts
   * `callsNewestFirst`): its open rows, and its archived ones from each slice that may hold
   * one of the first `limit`, read from R2 by their byte range.
   */
  async keyBatches(keyId: string, range: BatchRange): Promise<StoredBatch[]> {
    const found = this.openBatches(keyId, range);
    const slices = this.sql
      .exec<SliceIndex & { object: string }>(
        `SELECT s.start, s.end, s.max_first_at, g.object FROM key_segments s JOIN segments g ON g.segment = s.segment
         WHERE s.key_id = ? AND s.min_first_at <= ? AND s.max_first_at >= ? AND s.last_at >= ? AND s.min_first_at <= ?
         ORDER BY s.max_first_at DESC`,
        keyId,
        range.newest,
        range.oldest,
        range.since,
        range.read.f,
      )
      .toArray();
    const cutoff = this.retentionCutoff();
    const newerFirst = (a: StoredBatch, b: StoredBatch) => b.first_at - a.first_at || (a.batch < b.batch ? 1 : a.batch > b.batch ? -1 : 0);
    for (const slice of slices) {
      if (found.length >= range.limit) {
        found.sort(newerFirst);
        if (slice.max_first_at < found[range.limit - 1]!.first_at) break;
      }
      for (const row of rowsOfSlice(await this.readSlice(slice.object, slice))) {
        const { first_at: f, batch: b } = row;
        if (f > range.newest || f < range.oldest || row.last_at < range.since || row.last_at < cutoff) continue;
        if (f < range.read.f || (f === range.read.f && b < range.read.b)) found.push({ first_at: f, batch: b, calls: row.calls });
      }
    }
    return found.sort(newerFirst).slice(0, range.limit);
  }

  private openBatches(keyId: string, range: BatchRange): StoredBatch[] {
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

  private async readSlice(object: string, range: { start: number; end: number }): Promise<Slice> {
    const got = await this.env.RESULTS.get(object, { range: { offset: range.start, length: range.end - range.start } });
    if (!got) throw new Error(`usage archive ${object} is missing`);
    return (await got.json()) as Slice;
  }

  /** Before this, calls are past USAGE_RETENTION_DAYS. */
  private retentionCutoff(): number {
    return clock.now() - loadSettings(this.env).USAGE_RETENTION_DAYS * 86_400_000;
  }

  /** Every archived call of the account between `since` and `until` (and from `address`), as a search matches them. */
  private async archivedCalls(search: AccountSearch): Promise<(MatchedCall & { at: number; admitted: boolean })[]> {
    const segments = this.sql
      .exec<{ object: string }>(
        "SELECT object FROM segments WHERE first_at <= ? AND last_at >= ?",
        search.until,
        Math.max(0, search.since - MAX_BATCH_SPAN_MS),
      )
      .toArray();
    const cutoff = this.retentionCutoff();
    const out: (MatchedCall & { at: number; admitted: boolean })[] = [];
    for (const { object } of segments) {
      const got = await this.env.RESULTS.get(object);
      if (!got) throw new Error(`usage archive ${object} is missing`);
      for (const slice of (await got.json()) as Slice[]) {
        for (const row of rowsOfSlice(slice)) {
          if (row.last_at < cutoff || row.last_at < search.since || row.first_at > search.until) continue;
          (JSON.parse(row.calls) as StoredCall[]).forEach((stored, i) => {
            const call = decodeCall(row.first_at, stored);
            if (call.at < search.since || call.at > search.until) return;
            if (search.address !== undefined && call.clientAddress !== search.address) return;
            out.push({
              key_id: row.key_id,
              first_at: row.first_at,
              batch: row.batch,
              i,
              call: JSON.stringify(stored),
              at: call.at,
              admitted: call.outcome === "admitted",
            });
          });
        }
      }
    }
    return out;
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
  async searchCalls(search: AccountSearch, after: CallPosition | undefined, limit: number): Promise<MatchedCall[]> {
    const open = this.openSearch(search, after, limit).map((m) => ({
      ...m,
      at: m.first_at + (JSON.parse(m.call) as StoredCall)[STORED_CALL_FIELD.dt],
    }));
    const position = (m: MatchedCall & { at: number }): CallPosition => ({ t: m.at, k: m.key_id, f: m.first_at, b: m.batch, i: m.i });
    const archived = (await this.archivedCalls(search)).filter((m) => !after || olderFirst(position(m), after) > 0);
    return [...open, ...archived]
      .sort((a, b) => olderFirst(position(a), position(b)))
      .slice(0, limit)
      .map(({ key_id, first_at, batch, i, call }) => ({ key_id, first_at, batch, i, call }));
  }

  private openSearch(search: AccountSearch, after: CallPosition | undefined, limit: number): MatchedCall[] {
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
  async summariseKeys(search: AccountSearch, limit: number): Promise<KeyCalls[]> {
    const { sql, args } = this.matching(search, search.until);
    const byKey = new Map<string, KeyCalls>();
    const add = (k: KeyCalls) => {
      const had = byKey.get(k.key_id);
      byKey.set(
        k.key_id,
        had
          ? {
              key_id: k.key_id,
              first_seen: Math.min(had.first_seen, k.first_seen),
              last_seen: Math.max(had.last_seen, k.last_seen),
              calls: had.calls + k.calls,
              admitted: had.admitted + k.admitted,
            }
          : k,
      );
    };
    for (const k of this.sql
      .exec<KeyCalls>(
        `SELECT key_id, MIN(at) AS first_seen, MAX(at) AS last_seen, COUNT(*) AS calls,
                SUM(json_extract(call, '$[${STORED_CALL_FIELD.outcome}]') = 'admitted') AS admitted
         FROM (${sql}) GROUP BY key_id`,
        ...args,
      )
      .toArray())
      add(k);
    for (const m of await this.archivedCalls(search))
      add({ key_id: m.key_id, first_seen: m.at, last_seen: m.at, calls: 1, admitted: m.admitted ? 1 : 0 });
    return [...byKey.values()]
      .sort((a, b) => b.last_seen - a.last_seen || (a.key_id < b.key_id ? 1 : a.key_id > b.key_id ? -1 : 0))
      .slice(0, limit);
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
          `SELECT MAX(COALESCE((SELECT at FROM last_use WHERE key_id = ?1), 0),
             COALESCE((SELECT MAX(last_admitted_at) FROM key_segments WHERE key_id = ?1), 0), COALESCE((
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
   * Retention, then compaction. Retention deletes whole batches whose last call is older
   * than USAGE_RETENTION_DAYS, and archived slices (and R2 objects) once their last call
   * is, folding each key's last admitted call into `last_use` first, so a key's last use
   * outlives its history (reads leave out an archived batch past retention at once).
   * Compaction moves every open row to R2. Then it sleeps until the next of those is due.
   */
  override async alarm(): Promise<void> {
    this.alarmAt = null;
    const cutoff = this.retentionCutoff();
    this.ctx.storage.transactionSync(() => {
      this.sql.exec(
        `INSERT INTO last_use (key_id, at)
         SELECT key_id, MAX(at) FROM (
           SELECT key_id, last_admitted_at AS at FROM key_usage_batches WHERE last_at < ?1 AND last_admitted_at IS NOT NULL
           UNION ALL SELECT key_id, last_admitted_at AS at FROM key_segments WHERE last_at < ?1 AND last_admitted_at IS NOT NULL
         ) WHERE true GROUP BY key_id
         ON CONFLICT (key_id) DO UPDATE SET at = MAX(at, excluded.at)`,
        cutoff,
      );
      this.sql.exec("DELETE FROM key_usage_batches WHERE last_at < ?", cutoff);
      this.sql.exec("DELETE FROM key_segments WHERE last_at < ?", cutoff);
    });
    const expired = this.sql
      .exec<{ segment: string; object: string }>("SELECT segment, object FROM segments WHERE last_at < ?", cutoff)
      .toArray();
    if (expired.length > 0) {
      await this.env.RESULTS.delete(expired.map((e) => e.object));
      for (const { segment } of expired) this.sql.exec("DELETE FROM segments WHERE segment = ?", segment);
    }
    await this.compact();
    const next = this.sql
      .exec<{ open: number | null; last: number | null }>(
        `SELECT (SELECT MIN(first_at) FROM key_usage_batches) AS open,
                (SELECT MIN(last_at) FROM (SELECT last_at FROM key_usage_batches UNION ALL SELECT last_at FROM segments)) AS last`,
      )
      .one();
    const lastDue = next.last === null ? Infinity : this.retentionEnd(next.last);
    const openDue = next.open === null ? Infinity : next.open + COMPACT_AFTER_MS;
    const due = Math.min(lastDue, openDue);
    if (due !== Infinity) await this.wakeBy(due);
  }

  /**
   * Moves every open row to R2, SEGMENT_BYTES at a time: each segment's object is written
   * first, then, in one turn, its index rows and the deletion of exactly the rows it holds
   * (appends that came meanwhile stay open for the next compaction).
   */
  private async compact(): Promise<void> {
    let after: { k: string; f: number; b: string } = { k: "", f: -1, b: "" };
    for (;;) {
      const rows: UsageBatchRow[] = [];
      let bytes = 0;
      while (bytes < SEGMENT_BYTES) {
        const page = this.sql
          .exec<UsageBatchRow>(
            `SELECT key_id, first_at, batch, last_at, last_admitted_at, calls FROM key_usage_batches
             WHERE (key_id, first_at, batch) > (?, ?, ?) ORDER BY key_id, first_at, batch LIMIT ?`,
            after.k,
            after.f,
            after.b,
            COMPACT_READ,
          )
          .toArray();
        for (const row of page) (rows.push(row), (bytes += row.calls.length));
        if (page.length === 0) break;
        const last = page[page.length - 1]!;
        after = { k: last.key_id, f: last.first_at, b: last.batch };
        if (page.length < COMPACT_READ) break;
      }
      if (rows.length === 0) break;
      const segment = `${clock.now()}-${crypto.randomUUID()}`;
      const object = `usage/${this.ctx.id.toString()}/${segment}`;
      const { body, slices } = segmentOf(rows);
      await this.env.RESULTS.put(object, body, { httpMetadata: { contentType: "application/json" } });
      this.ctx.storage.transactionSync(() => {
        this.sql.exec(
          "INSERT INTO segments (segment, object, first_at, last_at) VALUES (?, ?, ?, ?)",
          segment,
          object,
          Math.min(...rows.map((r) => r.first_at)),
          Math.max(...rows.map((r) => r.last_at)),
        );
        for (const s of slices)
          this.sql.exec(
            `INSERT INTO key_segments (key_id, max_first_at, segment, min_first_at, last_at, last_admitted_at, start, end)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
            s.key_id,
            s.max_first_at,
            segment,
            s.min_first_at,
            s.last_at,
            s.last_admitted_at,
            s.start,
            s.end,
          );
        for (const r of rows)
          this.sql.exec("DELETE FROM key_usage_batches WHERE key_id = ? AND first_at = ? AND batch = ?", r.key_id, r.first_at, r.batch);
      });
      if (bytes < SEGMENT_BYTES) break;
    }
    this.openBytes = 0;
  }
}
