import { Lru } from "../util/lru";

/**
 * Exact sliding windows, kept in the guard's memory and covered in its SQLite storage.
 *
 * Decisions read memory only: every admission's time, per subject, sorted. A request at
 * `now` is admitted while fewer than `limit` times of its subject lie in
 * `(now - window, now]`, so no interval of length `window` ever holds more than `limit`
 * admissions, whatever the concurrency (the guard is single-threaded and `inspect` +
 * `record` run in one synchronous turn). The guard is the only writer of its storage,
 * so memory stays exact.
 *
 * Storage only has to make a restart safe, and is written per cover, not per admission
 * (rows written are what a request costs). Each subject is one row holding an upper
 * bound of its admissions: the ones made, with their times rounded up to a grid, plus a
 * *cover*, tokens stored ahead of use at the cover's end time. An admission spends a
 * token of the live cover and writes nothing; when the cover runs out or ends, the row
 * is rewritten once, from memory, with a new cover sized to the subject's recent rate.
 * After a restart the row is read back as admissions: every real admission is in it at
 * or after its real time, so nothing can be over-admitted; what it over-counts (a
 * cover's unspent tokens, at most half the window's room when it was stored, and times
 * rounded up) is counted until it leaves the window. That is the price of not writing a
 * row per request, paid only after a restart. Each row also says when nothing in it
 * counts any more (`expires_at`), so the rows of subjects gone quiet can be deleted (`sweep`).
 *
 * Memory holds at most MAX_SUBJECTS subjects (an address guard serves many addresses):
 * past that, the least recently used is forgotten and read back from its row when asked
 * again, which counts as after a restart (it can only count more, never less).
 */
export interface WindowState {
  used: number;
  /** ms until one more request would be admitted (0 when there is room now). */
  retryAfterMs: number;
  /** ms until the oldest counted request leaves the window (0 when none is counted). */
  resetMs: number;
}

interface SubjectLog {
  /** Admission times, ascending; the ones that left the window are dropped on inspection. */
  times: number[];
  /** The window length the times were loaded for: a longer window reloads. */
  windowMs: number;
  /** Tokens already in storage, counted at `at`, that admissions up to `at` may spend without a write. */
  cover: { at: number; left: number } | null;
}

/** A stored entry: `count` admissions counted at `at` (ms). */
type Entry = [at: number, count: number];

/** Most subjects whose admission times are kept in memory. */
export const MAX_SUBJECTS = 4_096;
/** Most tokens one cover stores ahead. */
const MAX_COVER = 4_096;
/** Stored times are rounded up to 1/64 of the window, so a row holds at most ~64 entries (plus the cover). */
const GRID_PARTS = 64;

/**
 * How long a cover lasts: long enough to spare writes (a quarter of the window: a minute
 * window's subject at a request every few seconds writes its row every 15 s, not 7.5),
 * short enough that a restart over-counts briefly.
 */
export function coverMs(windowMs: number): number {
  return Math.min(15_000, Math.max(1_000, Math.floor(windowMs / 4)));
}

export class SlidingLog {
  private readonly logs = new Lru<string, SubjectLog>(MAX_SUBJECTS);

  // Its table is created by the guard's migrations (schema.ts).
  constructor(private readonly sql: SqlStorage) {}

  private log(subject: string, windowMs: number, now: number): SubjectLog {
    let log = this.logs.get(subject);
    if (!log || log.windowMs < windowMs) {
      const row = this.sql.exec<{ entries: string }>("SELECT entries FROM windows WHERE subject = ?", subject).toArray()[0];
      const times: number[] = [];
      for (const [at, count] of row ? (JSON.parse(row.entries) as Entry[]) : []) {
        if (at > now - windowMs) for (let i = 0; i < count; i++) times.push(at);
      }
      times.sort((a, b) => a - b);
      log = { times, windowMs, cover: null };
      this.logs.set(subject, log);
    }
    return log;
  }

  inspect(subject: string, limit: number, windowMs: number, now: number): WindowState {
    const { times } = this.log(subject, windowMs, now);
    const cutoff = now - windowMs;
    let gone = 0;
    while (gone < times.length && times[gone]! <= cutoff) gone++;
    // Memory only: the stored row sheds them the next time it is written.
    if (gone > 0) times.splice(0, gone);
    const used = times.length;
    // Room opens when enough of the oldest have left for `used` to drop below `limit`.
    const retryAfterMs = used >= limit ? times[used - limit]! + windowMs - now : 0;
    return { used, retryAfterMs, resetMs: used === 0 ? 0 : times[0]! + windowMs - now };
  }

  /**
   * Counts `count` admissions at `at` (after `inspect` for the same subject and window).
   * `at` may lie ahead of `now`: a lease's tokens are counted at its expiry, the latest
   * moment any of them can be spent, which keeps every window exact (see lease-registry.ts).
   * Writes the subject's row only when its cover cannot take them.
   */
  record(subject: string, limit: number, windowMs: number, now: number, count = 1, at = now): void {
    const log = this.log(subject, windowMs, now);
    const { times } = log;
    let index = times.length;
    while (index > 0 && times[index - 1]! > at) index--; // leases and a clock set back (tests) insert mid-log
    times.splice(index, 0, ...Array<number>(count).fill(at));
    const cover = log.cover;
    if (cover && cover.at >= at && cover.left >= count) {
      cover.left -= count;
      return;
    }
    // A new cover: as many tokens as the subject used in the last cover's time (its rate),
    // never more than half the room left, so a restart can cost at most half of it.
    const span = coverMs(windowMs);
    let recent = 0;
    for (let i = times.length - 1; i >= 0 && times[i]! > now - span; i--) if (times[i]! <= now) recent++;
    const extra = Math.max(0, Math.min(recent, Math.floor((limit - times.length) / 2), MAX_COVER));
    log.cover = { at: Math.max(at, now + span), left: extra };
    this.store(subject, log, now);
  }

  /** Takes back up to `count` admissions counted at `at` (a lease's unspent tokens): in memory; the row catches up when next written. */
  unrecord(subject: string, at: number, count: number): void {
    const log = this.logs.get(subject);
    if (!log) return;
    const first = log.times.indexOf(at);
    if (first < 0) return;
    let n = 0;
    while (n < count && log.times[first + n] === at) n++;
    log.times.splice(first, n);
  }

  /**
   * Moves up to `count` admissions counted at `from` to the earlier `to` (a lease's spent
   * tokens, to when they were spent at the latest): in memory; the stored row keeps them
   * at `from`, still an upper bound.
   */
  move(subject: string, from: number, to: number, count: number): void {
    const log = this.logs.get(subject);
    if (!log || to >= from) return;
    const first = log.times.indexOf(from);
    if (first < 0) return;
    let n = 0;
    while (n < count && log.times[first + n] === from) n++;
    log.times.splice(first, n);
    let index = log.times.length;
    while (index > 0 && log.times[index - 1]! > to) index--;
    log.times.splice(index, 0, ...Array<number>(n).fill(to));
  }

  /** Moves the windows counted for one subject id (`<policy>:<from>`) to another (a rotated key). */
  rename(from: string, to: string): void {
    this.sql.exec(
      "UPDATE windows SET subject = substr(subject, 1, length(subject) - length(?)) || ? WHERE subject LIKE ?",
      from,
      to,
      `%:${from}`,
    );
    for (const [subject, log] of [...this.logs]) {
      const renamed = renamedSubject(subject, from, to);
      if (renamed === undefined) continue;
      this.logs.delete(subject);
      this.logs.set(renamed, log);
    }
  }

  /**
   * Deletes the rows (and memory) of subjects nothing is counted for any more; returns when
   * the next remaining row expires (ms), or null when none is left. Every admission in
   * memory is in its row at or after its real time, so a row that expired leaves nothing
   * in memory to count either.
   */
  sweep(now: number): number | null {
    for (const { subject } of this.sql.exec<{ subject: string }>("DELETE FROM windows WHERE expires_at <= ? RETURNING subject", now)) {
      this.logs.delete(subject);
    }
    return this.sql.exec<{ next: number | null }>("SELECT MIN(expires_at) AS next FROM windows").one().next;
  }

  /** The subject's row, rewritten from memory: admissions within the window rounded up to the grid, the cover, and when the last of them leaves the window. */
  private store(subject: string, log: SubjectLog, now: number): void {
    const grid = Math.max(1, Math.floor(log.windowMs / GRID_PARTS));
    const counts = new Map<number, number>();
    for (const t of log.times) {
      if (t <= now - log.windowMs) continue;
      const at = Math.ceil(t / grid) * grid;
      counts.set(at, (counts.get(at) ?? 0) + 1);
    }
    if (log.cover && log.cover.left > 0) counts.set(log.cover.at, (counts.get(log.cover.at) ?? 0) + log.cover.left);
    const entries: Entry[] = [...counts].sort((a, b) => a[0] - b[0]);
    this.sql.exec(
      `INSERT INTO windows (subject, entries, expires_at) VALUES (?, ?, ?)
       ON CONFLICT (subject) DO UPDATE SET entries = excluded.entries, expires_at = excluded.expires_at`,
      subject,
      JSON.stringify(entries),
      (entries.at(-1)?.[0] ?? now) + log.windowMs,
    );
  }
}

/** `<policy>:<from>` as `<policy>:<to>`; undefined for a subject of another id. */
export function renamedSubject(subject: string, from: string, to: string): string | undefined {
  return subject.endsWith(`:${from}`) ? subject.slice(0, -from.length) + to : undefined;
}
