/**
 * Exact sliding windows over the guard's SQLite storage: every admitted request is a
 * row (subject, time). A request at `now` is admitted while fewer than `limit` rows of
 * its subject have `at > now - window`, so no interval of length `window` ever holds
 * more than `limit` admissions, whatever the concurrency (the guard is single-threaded
 * and `inspect` + `record` run in one synchronous turn). Rows survive restarts.
 *
 * The guard is the only writer of its storage, so each subject's times are also kept
 * in memory (sorted), loaded from SQLite on first use: checks read no rows, and rows
 * that left the window are deleted only when a check finds some.
 */
export interface WindowState {
  used: number;
  /** ms until one more request would be admitted (0 when there is room now). */
  retryAfterMs: number;
  /** ms until the oldest counted request leaves the window (0 when none is counted). */
  resetMs: number;
}

interface SubjectLog {
  /** Admission times inside the window, ascending. */
  times: number[];
  /** The window length the times were loaded for: a longer window reloads. */
  windowMs: number;
}

export class SlidingLog {
  private readonly logs = new Map<string, SubjectLog>();

  // Its table is created by the guard's migrations (schema.ts).
  constructor(private readonly sql: SqlStorage) {}

  private log(subject: string, windowMs: number, now: number): SubjectLog {
    let log = this.logs.get(subject);
    if (!log || log.windowMs < windowMs) {
      const times = this.sql
        .exec<{ at: number }>("SELECT at FROM hits WHERE subject = ? AND at > ? ORDER BY at", subject, now - windowMs)
        .toArray()
        .map((r) => r.at);
      log = { times, windowMs };
      this.logs.set(subject, log);
    }
    return log;
  }

  inspect(subject: string, limit: number, windowMs: number, now: number): WindowState {
    const { times } = this.log(subject, windowMs, now);
    const cutoff = now - windowMs;
    let gone = 0;
    while (gone < times.length && times[gone]! <= cutoff) gone++;
    if (gone > 0) {
      times.splice(0, gone);
      this.sql.exec("DELETE FROM hits WHERE subject = ? AND at <= ?", subject, cutoff);
    }
    const used = times.length;
    // Room opens when enough of the oldest have left for `used` to drop below `limit`.
    const retryAfterMs = used >= limit ? times[used - limit]! + windowMs - now : 0;
    return { used, retryAfterMs, resetMs: used === 0 ? 0 : times[0]! + windowMs - now };
  }

  /**
   * Counts `count` admissions at `at` (after `inspect` for the same subject and window).
   * `at` may lie ahead of `now`: a lease's tokens are counted at its expiry, the latest
   * moment any of them can be spent, which keeps every window exact (see lease-registry.ts).
   */
  record(subject: string, windowMs: number, now: number, count = 1, at = now): void {
    const { times } = this.log(subject, windowMs, now);
    let index = times.length;
    while (index > 0 && times[index - 1]! > at) index--; // leases and a clock set back (tests) insert mid-log
    times.splice(index, 0, ...Array<number>(count).fill(at));
    for (let i = 0; i < count; i++) this.sql.exec("INSERT INTO hits (subject, at) VALUES (?, ?)", subject, at);
  }

  /** Takes back up to `count` admissions counted at `at` (a lease's unspent tokens). */
  unrecord(subject: string, at: number, count: number): void {
    const log = this.logs.get(subject);
    if (log) {
      const first = log.times.indexOf(at);
      if (first >= 0) {
        let n = 0;
        while (n < count && log.times[first + n] === at) n++;
        log.times.splice(first, n);
      }
    }
    this.sql.exec("DELETE FROM hits WHERE rowid IN (SELECT rowid FROM hits WHERE subject = ? AND at = ? LIMIT ?)", subject, at, count);
  }

  /** Moves the windows counted for one subject id (`<policy>:<from>`) to another (a rotated key). */
  rename(from: string, to: string): void {
    this.sql.exec("UPDATE hits SET subject = substr(subject, 1, length(subject) - length(?)) || ? WHERE subject LIKE ?", from, to, `%:${from}`);
    for (const [subject, log] of [...this.logs]) {
      const renamed = renamedSubject(subject, from, to);
      if (renamed === undefined) continue;
      this.logs.delete(subject);
      this.logs.set(renamed, log);
    }
  }
}

/** `<policy>:<from>` as `<policy>:<to>`; undefined for a subject of another id. */
export function renamedSubject(subject: string, from: string, to: string): string | undefined {
  return subject.endsWith(`:${from}`) ? subject.slice(0, -from.length) + to : undefined;
}
