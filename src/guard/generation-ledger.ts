import { JOB_RETENTION_MS } from "../limits/bounds";
import { nextUtcDay, nextUtcMonth, previousUtcMonth, utcDay, utcMonth } from "../limits/calendar";
import type { AcceptedJob, JobStatus, JobView, OverageSettings, UsageSnapshot } from "../limits/guard-protocol";
import type { GenerationKind, GenerationLimits } from "../limits/types";

/**
 * ZSky's allowances, kept in the account guard's SQLite storage:
 * - daily soft caps per key and the monthly base allowance per account (UTC calendar,
 *   no rollover), with opt-in overage priced per item up to a monthly budget whose
 *   unused part rolls over;
 * - at most N running jobs per key (a job runs from the origin accepting it until zgate
 *   sees it end: on a poll, or when the edge re-checks a full pool with the origin);
 * - the safety suspension rule;
 * - the account's jobs themselves (owned_jobs): whose they are, where a stored result
 *   lives, for 7 days from submission (JOB_RETENTION_MS; the guard's alarm retires them).
 * A generate call counts against its quota and takes a job slot at admission (so racing
 * calls can never overshoot) and settles once the origin has answered: accepted or
 * blocked keeps the count, anything else gives it back. The reservation itself lives in
 * memory only (no row written and deleted per job): its id carries what settling needs,
 * and the key's counter row lists it for its slot (lostHolders), so one lost to a restart
 * still holds its count and slot until the origin's answer settles it (listedReservation).
 * Unsettled reservations expire (their count stays).
 *
 * Rows written per job are what a job costs: the reservation's counter row, the job's row
 * and its retirement. A job's end is kept in memory only (`ended`): a restart forgets it,
 * and the job then holds its slot until the edge re-checks the full pool with the origin
 * (job-recheck.ts), which is a few origin calls after a restart instead of a row per job.
 * A rejection by the safety filter is written (the suspension rule must survive restarts).
 */
const RESERVATION_TTL_MS = 5 * 60_000;
// A job zgate never sees end (never polled, the origin unreachable when re-checked) would
// hold its slot forever; past this age it no longer counts as running (the reference's
// videos take about a minute).
const MAX_JOB_RUNTIME_MS = 30 * 60_000;
// How often one key's running jobs may be re-checked with the origin: a caller retrying a
// refused submit in a loop must not turn every retry into origin calls.
const RECHECK_INTERVAL_MS = 1000;

interface SlotHolder {
  job_id: string | null;
  kind: GenerationKind;
  created_at: number;
  [column: string]: SqlStorageValue;
}

/**
 * When a full pool should next have a free slot: when its first holder reaches its
 * kind's typical run time. A holder already past it (still running when the edge last
 * asked the origin) could end any moment: a short fixed retry.
 */
function slotExpectedFree(holders: SlotHolder[], limits: GenerationLimits, now: number): number {
  const first = Math.min(...holders.map((h) => h.created_at + limits.typicalJobSeconds[h.kind] * 1000));
  return first > now ? first : now + limits.concurrencyRetryAfterSeconds * 1000;
}

/** A generate call admitted and not yet settled. */
interface Reservation {
  uuid: string;
  keyId: string;
  kind: GenerationKind;
  day: string;
  month: string;
  overageCents: number;
  createdAt: number;
}

// What settling needs from a reservation, in its id: a restart between admission and the
// origin's answer must not lose the accepted job (its polls would answer 404), nor keep
// the count and slot of a call the origin refused (a guard evicted while a slow origin
// thinks loses its memory).
const reservationId = (r: Reservation) => JSON.stringify([r.uuid, r.keyId, r.kind, r.createdAt, r.overageCents]);
function reservationOf(id: string): Pick<Reservation, "uuid" | "keyId" | "kind" | "createdAt" | "overageCents"> | null {
  try {
    const [uuid, keyId, kind, createdAt, overageCents] = JSON.parse(id) as [unknown, unknown, unknown, unknown, unknown];
    if (typeof uuid !== "string" || typeof keyId !== "string" || (kind !== "image" && kind !== "video")) return null;
    if (typeof createdAt !== "number" || typeof overageCents !== "number") return null;
    return { uuid, keyId, kind, createdAt, overageCents };
  } catch {
    return null;
  }
}

export type Refusal = { reason: "quota" | "concurrency"; message: string; retryAt: number };

export class GenerationLedger {
  /** Key -> when its running jobs were last handed out for a re-check (memory only: losing it costs one early re-check). */
  private readonly recheckedAt = new Map<string, number>();
  /** Reservation id -> reservation, until settled or expired. */
  private readonly reservations = new Map<string, Reservation>();
  /** When this object first used the ledger: reservations made before it were lost with the memory that held them. */
  private startedAt: number | null = null;
  /** Job id -> when zgate saw it end (completed or failed), oldest first; entries older than MAX_JOB_RUNTIME_MS are dropped. */
  private readonly ended = new Map<string, number>();
  /** Polls of a job not yet the account's, waiting for the settlements in flight (nextSettlement). */
  private settlementWaiters: (() => void)[] = [];

  // Its tables are created by the guard's migrations (schema.ts).
  constructor(private readonly sql: SqlStorage) {}

  // ------------------------------------------------------------------ admission

  /** When the key is suspended: the time it lifts. */
  suspendedUntil(keyId: string, now: number): number | null {
    const row = this.sql.exec<{ until: number }>("SELECT until FROM suspensions WHERE key_id = ?", keyId).toArray()[0];
    return row && row.until > now ? row.until : null;
  }

  /** Every refusal that applies right now (empty: the call may go ahead). */
  check(keyId: string, kind: GenerationKind, limits: GenerationLimits, dailyCap: number, now: number): Refusal[] {
    for (const [id, r] of this.reservations) if (r.createdAt < now - RESERVATION_TTL_MS) this.reservations.delete(id);
    const refusals: Refusal[] = [];
    const holders = this.slotHolders(keyId, now);
    if (holders.length >= limits.concurrentJobsPerKey) {
      refusals.push({
        reason: "concurrency",
        message: `Concurrent job limit reached (${limits.concurrentJobsPerKey} per API key)`,
        retryAt: slotExpectedFree(holders, limits, now),
      });
    }
    if (this.usedToday(keyId, kind, now) >= dailyCap) {
      refusals.push({ reason: "quota", message: `Daily ${kind} cap reached (${dailyCap} per UTC day)`, retryAt: nextUtcDay(now) });
    }
    if (this.overageNeeded(kind, limits, now) && !this.overagePriceFits(kind, limits, now)) {
      refusals.push({
        reason: "quota",
        message: `Monthly ${kind} allowance reached`,
        retryAt: nextUtcMonth(now),
      });
    }
    return refusals;
  }

  /** Counts the call now (one upserted row, plus the overage spent if it is past the base allowance); settle may give it back. */
  reserve(keyId: string, kind: GenerationKind, limits: GenerationLimits, now: number): string {
    const r: Reservation = {
      uuid: crypto.randomUUID(),
      keyId,
      kind,
      day: utcDay(now),
      month: utcMonth(now),
      overageCents: this.overageNeeded(kind, limits, now) ? limits.overagePriceCents[kind] : 0,
      createdAt: now,
    };
    this.count(r, 1);
    const id = reservationId(r);
    this.reservations.set(id, r);
    return id;
  }

  // ------------------------------------------------------------------ settlement

  /**
   * The origin's answer to a reserved generate call. `accepted` (a job was created) and
   * `blocked` (refused by the safety filter) count against the allowances; `refused`
   * (invalid, failed, timed out) gives the reservation back. Idempotent. Returns the key
   * this settlement suspended, if it did.
   */
  settle(
    reservationId: string,
    outcome: "accepted" | "blocked" | "refused",
    job: AcceptedJob | null,
    limits: GenerationLimits,
    now: number,
  ): string | null {
    const r = this.reservations.get(reservationId) ?? this.listedReservation(reservationId, now);
    this.reservations.delete(reservationId);
    // Run after this turn, once the job below is recorded.
    const waiters = this.settlementWaiters.splice(0);
    if (waiters.length > 0) queueMicrotask(() => waiters.forEach((resolve) => resolve()));
    if (!r) {
      // Settled already or expired: its count stays (never over-admits), but an accepted
      // job must still be the account's.
      const lost = reservationOf(reservationId);
      if (lost && outcome === "accepted" && job) this.recordJob(job, lost.keyId, lost.kind, lost.uuid, now);
      return null;
    }
    if (outcome === "refused") {
      this.count(r, -1);
      return null;
    }
    // An accepted job's row is also its safety attempt; a blocked call holds no slot and
    // has no job, so it leaves the pending list and is an attempt row of its own (rare).
    if (outcome === "accepted" && job) this.recordJob(job, r.keyId, r.kind, r.uuid, now);
    else {
      this.setPending(
        r,
        this.pendingOf(r).filter(([uuid]) => uuid !== r.uuid),
      );
      this.sql.exec("INSERT INTO safety_events (key_id, at) VALUES (?, ?)", r.keyId, now);
    }
    // Every attempt moves the ratio, so the rule is checked after each one.
    return this.evaluateSuspension(r.keyId, limits, now) ? r.keyId : null;
  }

  /**
   * A job reached a terminal state: its slot is released exactly once (in memory; see the
   * header). A job that ended `blocked` turns its submission into a safety rejection,
   * written. `finished` is false if the job is not this account's or had already ended
   * here; `suspended` names the key the rejection suspended, if it did; `job` is the
   * record (null when the job is not this account's).
   */
  finishJob(
    jobId: string,
    status: "completed" | "failed" | "blocked",
    limits: GenerationLimits,
    now: number,
  ): { finished: boolean; suspended: string | null; job: JobView | null } {
    const row = this.liveJob(jobId, now);
    if (!row) return { finished: false, suspended: null, job: null };
    const job: JobView = { resultKey: row.result_key };
    if (row.finished_at !== null || this.ended.has(jobId)) return { finished: false, suspended: null, job };
    if (status !== "blocked") {
      this.ended.set(jobId, now);
      for (const [id, at] of this.ended) {
        if (at > now - MAX_JOB_RUNTIME_MS) break;
        this.ended.delete(id);
      }
      return { finished: true, suspended: null, job };
    }
    this.sql.exec("UPDATE owned_jobs SET finished_at = ?, rejected = 1 WHERE job_id = ?", now, jobId);
    return { finished: true, suspended: this.evaluateSuspension(row.key_id, limits, now) ? row.key_id : null, job };
  }

  /**
   * Jobs purged by their owner: none is the account's any more
   * (jobRetiresAt), and one that still held a slot frees it. Safe to repeat.
   */
  purge(jobIds: string[], now: number): void {
    for (const jobId of jobIds) {
      this.sql.exec(
        "UPDATE owned_jobs SET purged_at = ?, finished_at = COALESCE(finished_at, ?) WHERE job_id = ? AND purged_at IS NULL",
        now,
        now,
        jobId,
      );
    }
  }

  /**
   * The key's running jobs, for the edge to ask the origin whether they have ended (a
   * finished job nobody polled still holds its slot here). Empty if they were handed
   * out less than RECHECK_INTERVAL_MS ago.
   */
  jobsToRecheck(keyId: string, now: number): string[] {
    const last = this.recheckedAt.get(keyId);
    if (last !== undefined && now - last < RECHECK_INTERVAL_MS) return [];
    this.recheckedAt.set(keyId, now);
    return this.slotHolders(keyId, now).flatMap((h) => (h.job_id === null ? [] : [h.job_id]));
  }

  /**
   * For a job this account submitted through zgate and has not purged: when it stops
   * being the account's (7 days after submission, JOB_RETENTION_MS). Null otherwise.
   */
  jobRetiresAt(jobId: string, now: number): number | null {
    return this.liveJobStatus(jobId, now)?.retiresAt ?? null;
  }

  /** A live job of the account's: when it retires, its record, and whether zgate saw it end. Null otherwise. */
  liveJobStatus(jobId: string, now: number): (JobStatus & { retiresAt: number }) | null {
    const row = this.liveJob(jobId, now);
    if (!row) return null;
    return {
      retiresAt: row.created_at + JOB_RETENTION_MS,
      resultKey: row.result_key,
      ended: row.finished_at !== null || this.ended.has(jobId),
    };
  }

  /** Whether a generate call admitted here awaits its settlement (its job, if the origin made one, is not the account's yet). */
  awaitsSettlement(now: number): boolean {
    for (const [id, r] of this.reservations) if (r.createdAt < now - RESERVATION_TTL_MS) this.reservations.delete(id);
    return this.reservations.size > 0;
  }

  /** Resolves at the next settlement (of any reservation). */
  nextSettlement(): Promise<void> {
    return new Promise((resolve) => this.settlementWaiters.push(resolve));
  }

  /** How many of the keys' live jobs store their results (whether or not stored yet). */
  storedResultCount(keyIds: string[], now: number): number {
    if (keyIds.length === 0) return 0;
    return this.sql
      .exec<{ n: number }>(
        `SELECT COUNT(*) AS n FROM owned_jobs WHERE key_id IN (${keyIds.map(() => "?").join(", ")})
         AND result_key IS NOT NULL AND purged_at IS NULL AND created_at > ?`,
        ...keyIds,
        now - JOB_RETENTION_MS,
      )
      .one().n;
  }

  /** Jobs past retention, oldest first, at most `limit`, with the R2 keys of their stored results. */
  jobsToRetire(now: number, limit: number): { jobId: string; resultKey: string | null }[] {
    return this.sql
      .exec<{ job_id: string; result_key: string | null }>(
        "SELECT job_id, result_key FROM owned_jobs WHERE created_at <= ? ORDER BY created_at LIMIT ?",
        now - JOB_RETENTION_MS,
        limit,
      )
      .toArray()
      .map((r) => ({ jobId: r.job_id, resultKey: r.result_key }));
  }

  /** Retired jobs' rows go (their results have left R2 already). */
  forgetJobs(jobIds: string[]): void {
    for (const jobId of jobIds) this.sql.exec("DELETE FROM owned_jobs WHERE job_id = ?", jobId);
  }

  /** When the oldest job left reaches the end of its retention, if any job is left. */
  nextRetirement(): number | null {
    const oldest = this.sql.exec<{ at: number | null }>("SELECT MIN(created_at) AS at FROM owned_jobs").one().at;
    return oldest === null ? null : oldest + JOB_RETENTION_MS;
  }

  /** Everything counted for one key moves to its replacement (rotation). */
  transfer(from: string, to: string): void {
    for (const table of ["gen_usage", "owned_jobs", "safety_events", "suspensions"]) {
      this.sql.exec(`UPDATE ${table} SET key_id = ? WHERE key_id = ?`, to, from);
    }
    for (const r of this.reservations.values()) if (r.keyId === from) r.keyId = to;
  }

  liftSuspension(keyId: string): boolean {
    const lifted = this.sql.exec("DELETE FROM suspensions WHERE key_id = ?", keyId).rowsWritten > 0;
    // The rejections that caused it are forgiven too, or the next one would re-suspend at once.
    this.sql.exec("DELETE FROM safety_events WHERE key_id = ?", keyId);
    this.sql.exec("UPDATE owned_jobs SET rejected = 0 WHERE key_id = ? AND rejected = 1", keyId);
    return lifted;
  }

  // ------------------------------------------------------------------ account

  usage(limits: GenerationLimits, now: number): UsageSnapshot {
    const month = utcMonth(now);
    const image = this.countedThisMonth(month, "image");
    const video = this.countedThisMonth(month, "video");
    const spent = this.sql.exec<{ spent_cents: number }>("SELECT spent_cents FROM overage_months WHERE month = ?", month).toArray()[0];
    return {
      videos_used: video.used,
      videos_overage: video.overage,
      images_used: image.used,
      images_overage: image.overage,
      overage_charged_cents: spent?.spent_cents ?? 0,
      base_videos_allowance: limits.monthlyPerAccount.video,
      base_images_allowance: limits.monthlyPerAccount.image,
      month_start: `${month}-01`,
    };
  }

  overageSettings(): OverageSettings {
    const row = this.sql.exec<{ value: string }>("SELECT value FROM account_settings WHERE name = 'overage'").toArray()[0];
    return row ? (JSON.parse(row.value) as OverageSettings) : { enabled: false, monthlyCapCents: 0 };
  }

  setOverage(settings: OverageSettings, now: number): void {
    const month = utcMonth(now);
    const since = settings.enabled ? (this.overageSettings().since ?? month) : undefined;
    this.sql.exec("INSERT OR REPLACE INTO account_settings (name, value) VALUES ('overage', ?)", JSON.stringify({ ...settings, since }));
    // This month's budget follows the new cap at once (plus whatever rolled over).
    const current = this.sql.exec("SELECT 1 FROM overage_months WHERE month = ?", month).toArray().length > 0;
    if (current)
      this.sql.exec(
        "UPDATE overage_months SET budget_cents = ? WHERE month = ?",
        settings.monthlyCapCents + this.rolledOver(month, settings),
        month,
      );
  }

  // ------------------------------------------------------------------ internals

  /** What holds the key's job slots, oldest first: running jobs, and submits the origin has not answered yet (job_id null). */
  private slotHolders(keyId: string, now: number): SlotHolder[] {
    const running = this.sql
      .exec<SlotHolder>(
        "SELECT job_id, kind, created_at FROM owned_jobs WHERE key_id = ? AND finished_at IS NULL AND purged_at IS NULL AND created_at > ?",
        keyId,
        now - MAX_JOB_RUNTIME_MS,
      )
      .toArray()
      .filter((h) => !this.ended.has(h.job_id!));
    const pending = [...this.reservations.values()]
      .filter((r) => r.keyId === keyId)
      .map((r): SlotHolder => ({ job_id: null, kind: r.kind, created_at: r.createdAt }));
    return [...running, ...pending, ...this.lostHolders(keyId, now)].sort((a, b) => a.created_at - b.created_at);
  }

  /**
   * Reservations this object's memory lost (a restart, less than RESERVATION_TTL_MS ago)
   * that may still be waiting for the origin: each key's rows list the reservations of
   * the last RESERVATION_TTL_MS (written with the count, no extra row); an accepted one
   * names its reservation in its job row, a refused or blocked one left the list.
   */
  private lostHolders(keyId: string, now: number): SlotHolder[] {
    this.startedAt ??= now;
    if (now - this.startedAt >= RESERVATION_TTL_MS) return [];
    const rows = this.sql
      .exec<{ kind: GenerationKind; pending: string }>(
        "SELECT kind, pending FROM gen_usage WHERE month IN (?, ?) AND key_id = ?",
        utcMonth(now),
        previousUtcMonth(utcMonth(now)),
        keyId,
      )
      .toArray();
    const settled = new Set(
      this.sql
        .exec<{ reservation: string }>(
          "SELECT reservation FROM owned_jobs WHERE key_id = ? AND created_at > ?",
          keyId,
          now - 2 * RESERVATION_TTL_MS,
        )
        .toArray()
        .map((j) => j.reservation),
    );
    const known = new Set([...this.reservations.values()].map((r) => r.uuid));
    return rows.flatMap(({ kind, pending }) =>
      (JSON.parse(pending) as [string, number][])
        .filter(([uuid, at]) => at < this.startedAt! && at > now - RESERVATION_TTL_MS && !settled.has(uuid) && !known.has(uuid))
        .map(([, at]): SlotHolder => ({ job_id: null, kind, created_at: at })),
    );
  }

  /**
   * A reservation this object's memory lost (a restart) that is still unsettled: its
   * key's row lists it as pending and no job names it. Settled like one in memory, once
   * (settling takes it off the list, or a job row names it).
   */
  private listedReservation(id: string, now: number): Reservation | null {
    const lost = reservationOf(id);
    if (!lost || now - lost.createdAt >= RESERVATION_TTL_MS) return null;
    const r: Reservation = { ...lost, day: utcDay(lost.createdAt), month: utcMonth(lost.createdAt) };
    if (!this.pendingOf(r).some(([uuid]) => uuid === r.uuid)) return null;
    const settled = this.sql.exec("SELECT 1 FROM owned_jobs WHERE key_id = ? AND reservation = ?", r.keyId, r.uuid).toArray();
    return settled.length === 0 ? r : null;
  }

  private recordJob(job: AcceptedJob, keyId: string, kind: GenerationKind, reservation: string, now: number): void {
    this.sql.exec(
      "INSERT OR IGNORE INTO owned_jobs (job_id, key_id, kind, created_at, reservation, result_key) VALUES (?, ?, ?, ?, ?, ?)",
      job.jobId,
      keyId,
      kind,
      now,
      reservation,
      job.resultKey,
    );
  }

  /** The job's row while it is the account's: submitted here, not purged, within its retention. */
  private liveJob(jobId: string, now: number) {
    return (
      this.sql
        .exec<{ key_id: string; created_at: number; finished_at: number | null; result_key: string | null }>(
          "SELECT key_id, created_at, finished_at, result_key FROM owned_jobs WHERE job_id = ? AND purged_at IS NULL AND created_at > ?",
          jobId,
          now - JOB_RETENTION_MS,
        )
        .toArray()[0] ?? null
    );
  }

  /** The reservations of the last RESERVATION_TTL_MS listed in the reservation's row, [uuid, created_at] each. */
  private pendingOf(r: Reservation): [string, number][] {
    const row = this.sql
      .exec<{ pending: string }>("SELECT pending FROM gen_usage WHERE month = ? AND kind = ? AND key_id = ?", r.month, r.kind, r.keyId)
      .toArray()[0];
    return row ? (JSON.parse(row.pending) as [string, number][]).filter(([, at]) => at > r.createdAt - RESERVATION_TTL_MS) : [];
  }

  private setPending(r: Reservation, pending: [string, number][]): void {
    this.sql.exec(
      "UPDATE gen_usage SET pending = ? WHERE month = ? AND kind = ? AND key_id = ?",
      JSON.stringify(pending),
      r.month,
      r.kind,
      r.keyId,
    );
  }

  /** The key's calls of this kind counted today (admitted ones included). */
  private usedToday(keyId: string, kind: GenerationKind, now: number): number {
    const row = this.sql
      .exec<{ day_used: number }>(
        "SELECT day_used FROM gen_usage WHERE month = ? AND kind = ? AND key_id = ? AND day = ?",
        utcMonth(now),
        kind,
        keyId,
        utcDay(now),
      )
      .toArray()[0];
    return row?.day_used ?? 0;
  }

  /** The account's calls of this kind counted this month: the sum of its keys' rows. */
  private countedThisMonth(month: string, kind: GenerationKind): { used: number; overage: number } {
    return this.sql
      .exec<{ used: number; overage: number }>(
        "SELECT COALESCE(SUM(month_used), 0) AS used, COALESCE(SUM(month_overage), 0) AS overage FROM gen_usage WHERE month = ? AND kind = ?",
        month,
        kind,
      )
      .one();
  }

  /**
   * Counts a reserved call (by +1) or gives it back (by -1): the key's one row per month
   * and kind holds both its day count (restarted on a new day) and its month count, so
   * one upsert covers the daily cap and the account's allowance.
   */
  private count(r: Reservation, by: 1 | -1): void {
    const overage = r.overageCents > 0 ? 1 : 0;
    // The row also lists the reservation while it may hold a slot (see lostHolders).
    const others = this.pendingOf(r).filter(([uuid]) => uuid !== r.uuid);
    if (by === 1) {
      this.sql.exec(
        `INSERT INTO gen_usage (month, kind, key_id, day, day_used, month_used, month_overage, pending) VALUES (?, ?, ?, ?, 1, 1, ?, ?)
         ON CONFLICT (month, kind, key_id) DO UPDATE SET
           day = excluded.day,
           day_used = CASE WHEN day = excluded.day THEN day_used + 1 ELSE 1 END,
           month_used = month_used + 1,
           month_overage = month_overage + excluded.month_overage,
           pending = excluded.pending`,
        r.month,
        r.kind,
        r.keyId,
        r.day,
        overage,
        JSON.stringify([...others, [r.uuid, r.createdAt]]),
      );
    } else {
      // A day that has already moved on keeps its count.
      this.sql.exec(
        `UPDATE gen_usage SET day_used = day_used - (day = ?), month_used = month_used - 1, month_overage = month_overage - ?, pending = ?
         WHERE month = ? AND kind = ? AND key_id = ?`,
        r.day,
        overage,
        JSON.stringify(others),
        r.month,
        r.kind,
        r.keyId,
      );
    }
    if (overage) this.sql.exec("UPDATE overage_months SET spent_cents = spent_cents + ? WHERE month = ?", by * r.overageCents, r.month);
  }

  /** True when the next call of this kind is past the month's base allowance. */
  private overageNeeded(kind: GenerationKind, limits: GenerationLimits, now: number): boolean {
    const month = utcMonth(now);
    return this.countedThisMonth(month, kind).used >= limits.monthlyPerAccount[kind];
  }

  /** Whether the account opted in and one more item fits this month's budget (spent includes admitted calls). */
  private overagePriceFits(kind: GenerationKind, limits: GenerationLimits, now: number): boolean {
    const settings = this.overageSettings();
    if (!settings.enabled) return false;
    const month = utcMonth(now);
    const budget = this.monthBudget(month, settings);
    return budget.spent_cents + limits.overagePriceCents[kind] <= budget.budget_cents;
  }

  /**
   * A month's overage budget: the cap plus what the previous month left unspent. Months
   * with no overage use still carry their budget forward, so rows are made for every
   * month since overage was switched on.
   */
  private monthBudget(month: string, settings: OverageSettings): { budget_cents: number; spent_cents: number } {
    const row = this.sql
      .exec<{ budget_cents: number; spent_cents: number }>("SELECT budget_cents, spent_cents FROM overage_months WHERE month = ?", month)
      .toArray()[0];
    if (row) return row;
    const budget = settings.monthlyCapCents + this.rolledOver(month, settings);
    this.sql.exec("INSERT INTO overage_months (month, budget_cents, spent_cents) VALUES (?, ?, 0)", month, budget);
    return { budget_cents: budget, spent_cents: 0 };
  }

  private rolledOver(month: string, settings: OverageSettings): number {
    if (!settings.since || month <= settings.since) return 0;
    const prev = this.monthBudget(previousUtcMonth(month), settings);
    return Math.max(0, prev.budget_cents - prev.spent_cents);
  }

  /** Suspends the key if the rule says so; true when this call suspended it. */
  private evaluateSuspension(keyId: string, limits: GenerationLimits, now: number): boolean {
    const rule = limits.suspension;
    const since = now - rule.windowMinutes * 60_000;
    // Attempts are blocked calls (safety_events, each a rejection) and accepted jobs (their own rows).
    const { attempts, rejected } = this.sql
      .exec<{ attempts: number; rejected: number }>(
        `SELECT COUNT(*) AS attempts, COALESCE(SUM(rejected), 0) AS rejected FROM (
           SELECT 1 AS rejected FROM safety_events WHERE key_id = ? AND at > ?
           UNION ALL SELECT rejected FROM owned_jobs WHERE key_id = ? AND created_at > ?)`,
        keyId,
        since,
        keyId,
        since,
      )
      .one();
    // "more than 50% of the last 30 minutes' attempts, minimum 10 events"
    const suspend = attempts >= rule.minAttempts && rejected > attempts * rule.rejectedShare;
    if (suspend) this.sql.exec("INSERT OR REPLACE INTO suspensions (key_id, until) VALUES (?, ?)", keyId, now + rule.hours * 3_600_000);
    this.sql.exec("DELETE FROM safety_events WHERE key_id = ? AND at <= ?", keyId, since);
    return suspend;
  }
}
