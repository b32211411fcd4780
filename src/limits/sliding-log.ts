/**
 * Exact sliding windows over the guard's SQLite storage: every admitted request is a
 * row (subject, time). A request at `now` is admitted while fewer than `limit` rows of
 * its subject have `at > now - window`, so no interval of length `window` ever holds
 * more than `limit` admissions, whatever the concurrency (the guard is single-threaded
 * and `inspect` + `record` run in one synchronous turn). Rows survive restarts.
 */
export interface WindowState {
  used: number;
  /** ms until one more request would be admitted (0 when there is room now). */
  retryAfterMs: number;
  /** ms until the oldest counted request leaves the window (0 when none is counted). */
  resetMs: number;
}

export class SlidingLog {
  constructor(private readonly sql: SqlStorage) {
    sql.exec(`
      CREATE TABLE IF NOT EXISTS hits (subject TEXT NOT NULL, at INTEGER NOT NULL);
      CREATE INDEX IF NOT EXISTS hits_by_subject ON hits (subject, at);
    `);
  }

  inspect(subject: string, limit: number, windowMs: number, now: number): WindowState {
    const cutoff = now - windowMs;
    const { used, oldest } = this.sql
      .exec<{ used: number; oldest: number | null }>("SELECT COUNT(*) AS used, MIN(at) AS oldest FROM hits WHERE subject = ? AND at > ?", subject, cutoff)
      .one();
    let retryAfterMs = 0;
    if (used >= limit) {
      // Room opens when enough of the oldest rows have left for `used` to drop below `limit`.
      const freeing = this.sql
        .exec<{ at: number }>("SELECT at FROM hits WHERE subject = ? AND at > ? ORDER BY at LIMIT 1 OFFSET ?", subject, cutoff, used - limit)
        .one().at;
      retryAfterMs = freeing + windowMs - now;
    }
    return { used, retryAfterMs, resetMs: oldest === null ? 0 : oldest + windowMs - now };
  }

  /** Moves the windows counted for one subject id (`<policy>:<from>`) to another (a rotated key). */
  rename(from: string, to: string): void {
    this.sql.exec("UPDATE hits SET subject = substr(subject, 1, length(subject) - length(?)) || ? WHERE subject LIKE ?", from, to, `%:${from}`);
  }

  /** Counts an admission and forgets the subject's rows that no window of this length can see. */
  record(subject: string, windowMs: number, now: number): void {
    this.sql.exec("INSERT INTO hits (subject, at) VALUES (?, ?)", subject, now);
    this.sql.exec("DELETE FROM hits WHERE subject = ? AND at <= ?", subject, now - windowMs);
  }
}
