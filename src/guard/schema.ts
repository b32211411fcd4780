/**
 * The account guard's SQLite schema, as ordered migrations: `GUARD_MIGRATIONS[i]` takes
 * an object's storage from version i to version i + 1.
 *
 * Why versions: a Durable Object's storage lives as long as the object, and there is no
 * deploy-time migration for DO SQLite (D1 has `migrations/`; these objects do not). Each
 * object brings its own storage up to date when new code first opens it, and
 * `schema_version` records how far it got. Each step and its version bump commit in one
 * transaction, so a step that fails leaves the object at the version before it, and the
 * next open tries again. To change the schema, append a step; never edit a released one.
 */
export type Migration = (sql: SqlStorage) => void;

export const GUARD_MIGRATIONS: readonly Migration[] = [
  // 1: the tables guards had before versions existed. Such an object has them but no
  // version row; IF NOT EXISTS makes this step a no-op over them, so it is recognised as
  // version 1 with its rows kept. (Later steps need no IF NOT EXISTS.)
  (sql) =>
    sql.exec(`
      CREATE TABLE IF NOT EXISTS keys (
        key_id TEXT PRIMARY KEY, scopes TEXT NOT NULL, plan TEXT, owner_user_id TEXT,
        expires_at INTEGER, revoked_at INTEGER, limit_override TEXT
      );
      CREATE TABLE IF NOT EXISTS revoked_tokens (jti TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS session_epochs (user_id TEXT PRIMARY KEY, revoked_before_ms INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS hits (subject TEXT NOT NULL, at INTEGER NOT NULL);
      CREATE INDEX IF NOT EXISTS hits_by_subject ON hits (subject, at);
      CREATE TABLE IF NOT EXISTS gen_counts (
        scope TEXT NOT NULL, period TEXT NOT NULL, kind TEXT NOT NULL,
        used INTEGER NOT NULL DEFAULT 0, overage INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (scope, period, kind)
      );
      CREATE TABLE IF NOT EXISTS reservations (
        id TEXT PRIMARY KEY, key_id TEXT NOT NULL, kind TEXT NOT NULL, day TEXT NOT NULL,
        month TEXT NOT NULL, overage_cents INTEGER NOT NULL, created_at INTEGER NOT NULL
      );
      CREATE TABLE IF NOT EXISTS jobs (
        job_id TEXT PRIMARY KEY, key_id TEXT NOT NULL, kind TEXT NOT NULL,
        created_at INTEGER NOT NULL, finished_at INTEGER
      );
      CREATE TABLE IF NOT EXISTS overage_months (month TEXT PRIMARY KEY, budget_cents INTEGER NOT NULL, spent_cents INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS account_settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS safety_events (key_id TEXT NOT NULL, job_id TEXT, at INTEGER NOT NULL, rejected INTEGER NOT NULL);
      CREATE INDEX IF NOT EXISTS safety_by_key ON safety_events (key_id, at);
      CREATE TABLE IF NOT EXISTS suspensions (key_id TEXT PRIMARY KEY, until INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS purged_jobs (job_id TEXT PRIMARY KEY);
      CREATE TABLE IF NOT EXISTS account_plan (id INTEGER PRIMARY KEY CHECK (id = 1), plan TEXT, windows TEXT);
      CREATE TABLE IF NOT EXISTS lease_horizon (id INTEGER PRIMARY KEY CHECK (id = 1), ends_at INTEGER NOT NULL);
    `),
  // 2: sliding windows as one row per subject, rewritten per cover instead of a row (and
  // an index entry, and a later delete) per admission (sliding-log.ts). The admissions in
  // `hits` move over as (time, count) entries. `hits` stays, empty, so code rolled back to
  // version 1 still runs (its windows start empty once).
  (sql) =>
    sql.exec(`
      CREATE TABLE IF NOT EXISTS windows (subject TEXT PRIMARY KEY, entries TEXT NOT NULL) WITHOUT ROWID;
      INSERT OR IGNORE INTO windows (subject, entries)
        SELECT subject, json_group_array(json_array(at, n))
        FROM (SELECT subject, at, COUNT(*) AS n FROM hits GROUP BY subject, at)
        GROUP BY subject;
      DELETE FROM hits;
    `),
  // 3: fewer rows written per ZSky job (docs/storage.md). Reservations move to the guard's
  // memory (generation-ledger.ts). `gen_usage` holds one row per key, month and kind with
  // both its day and month counts (the account's month is their sum) instead of a key/day
  // and an account/month row; the account's counts from before move to one row with an
  // empty key_id. `owned_jobs` marks a purge in the job's own row instead of `purged_jobs`.
  // Both are WITHOUT ROWID (the primary key is the row, no second b-tree to write), and
  // safety_events loses its index (its rows are pruned to the last 30 minutes). The old
  // tables keep their rows, so code rolled back to version 2 still runs on them. Safe to
  // repeat over storage that already has the new tables (tests fake older versions so).
  (sql) =>
    sql.exec(`
      CREATE TABLE IF NOT EXISTS gen_usage (
        month TEXT NOT NULL, kind TEXT NOT NULL, key_id TEXT NOT NULL, day TEXT NOT NULL,
        day_used INTEGER NOT NULL, month_used INTEGER NOT NULL, month_overage INTEGER NOT NULL,
        pending TEXT NOT NULL DEFAULT '[]',
        PRIMARY KEY (month, kind, key_id)
      ) WITHOUT ROWID;
      INSERT OR IGNORE INTO gen_usage (month, kind, key_id, day, day_used, month_used, month_overage)
        SELECT period, kind, '', '', 0, used, overage FROM gen_counts WHERE scope = 'account';
      INSERT OR IGNORE INTO gen_usage (month, kind, key_id, day, day_used, month_used, month_overage)
        SELECT substr(period, 1, 7), kind, substr(scope, 5), MAX(period), used, 0, 0
        FROM gen_counts WHERE scope LIKE 'key:%' GROUP BY scope, kind, substr(period, 1, 7);
      CREATE TABLE IF NOT EXISTS owned_jobs (
        job_id TEXT PRIMARY KEY, key_id TEXT NOT NULL, kind TEXT NOT NULL,
        created_at INTEGER NOT NULL, finished_at INTEGER, purged_at INTEGER, reservation TEXT
      ) WITHOUT ROWID;
      INSERT OR IGNORE INTO owned_jobs (job_id, key_id, kind, created_at, finished_at, purged_at)
        SELECT job_id, key_id, kind, created_at, finished_at,
          CASE WHEN job_id IN (SELECT job_id FROM purged_jobs) THEN COALESCE(finished_at, created_at) END
        FROM jobs;
      DROP INDEX IF EXISTS safety_by_key;
    `),
  // 4: a ZSky job has one home, its account's guard (docs/storage.md). `owned_jobs` holds
  // what polls, downloads and retention need: the R2 key of a stored result (NULL for
  // `X-ZSky-Store: 0`), whether the job is stored at all (NULL: recorded before this step,
  // its store mode is in D1 `zsky_jobs`), and whether the safety filter rejected it, so an
  // accepted job's attempt is its own row instead of a `safety_events` row more. Added
  // columns only: code rolled back to version 3 still runs. Each is added only where it is
  // missing, so the step is safe to repeat (tests fake older versions over today's tables).
  (sql) => {
    const have = new Set(
      sql
        .exec<{ name: string }>("SELECT name FROM pragma_table_info('owned_jobs')")
        .toArray()
        .map((c) => c.name),
    );
    const columns = { store: "INTEGER", result_key: "TEXT", rejected: "INTEGER NOT NULL DEFAULT 0" };
    for (const [name, type] of Object.entries(columns)) if (!have.has(name)) sql.exec(`ALTER TABLE owned_jobs ADD COLUMN ${name} ${type}`);
  },
  // 5: the outbox of key decisions (a revoke, a rotation, a roll) whose record in D1 and
  // the audit log has not been acknowledged yet: written in the decision's own turn,
  // deleted once delivered (KeyOutboxEntry in guard-protocol.ts). A new table only.
  (sql) => sql.exec("CREATE TABLE IF NOT EXISTS key_outbox (id TEXT PRIMARY KEY, at INTEGER NOT NULL, entry TEXT NOT NULL) WITHOUT ROWID"),
];

/**
 * An address guard's schema (`ip|…`, one object per client address that ever called): it
 * keeps only sliding windows and its lease horizon, and deletes all its storage once its
 * windows have passed, so every other table would only cost rows written to create, in
 * each of many objects. Its versions count in the same `schema_version` row, separately
 * from GUARD_MIGRATIONS: an address object made before this list (the full schema, at
 * version 4 or more) has every table this list makes, and is gone within a window of its
 * last call. Tables are defined exactly as in GUARD_MIGRATIONS.
 */
export const ADDRESS_GUARD_MIGRATIONS: readonly Migration[] = [
  (sql) =>
    sql.exec(`
      CREATE TABLE windows (subject TEXT PRIMARY KEY, entries TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE lease_horizon (id INTEGER PRIMARY KEY CHECK (id = 1), ends_at INTEGER NOT NULL);
    `),
];

/**
 * Whether the object's storage was made by ADDRESS_GUARD_MIGRATIONS (versioned, and no
 * `keys` table, which every account guard's first step makes): how a guard whose name is
 * not known (an alarm after a restart) tells it is an address guard. Empty storage is not.
 */
export function hasAddressSchema(sql: SqlStorage): boolean {
  const tables = sql
    .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('schema_version', 'keys')")
    .toArray()
    .map((t) => t.name);
  return tables.length === 1 && tables[0] === "schema_version";
}

/**
 * Brings the object's storage to the latest version; returns the version it ends at.
 * Run when the guard opens its storage: in its constructor, and again after an address
 * guard's alarm deleted everything. A storage at a later version than `migrations` knows
 * (code rolled back) is left as it is: steps must keep the previous release working.
 */
export function migrate(storage: DurableObjectStorage, migrations: readonly Migration[] = GUARD_MIGRATIONS): number {
  const { sql } = storage;
  sql.exec("CREATE TABLE IF NOT EXISTS schema_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)");
  const from = sql.exec<{ version: number }>("SELECT version FROM schema_version").toArray()[0]?.version ?? 0;
  migrations.slice(from).forEach((step, i) =>
    storage.transactionSync(() => {
      step(sql);
      sql.exec("INSERT OR REPLACE INTO schema_version (id, version) VALUES (1, ?)", from + i + 1);
    }),
  );
  return Math.max(from, migrations.length);
}
