/**
 * The account guard's SQLite schema, as ordered migrations: `GUARD_MIGRATIONS[i]` takes
 * an object's storage from version i to version i + 1.
 *
 * Why versions: a Durable Object's storage lives as long as the object, and there is no
 * deploy-time migration for DO SQLite (D1 has `migrations/`; these objects do not). Each
 * object brings its own storage up to date when new code first opens it, and
 * `schema_version` records how far it got. Each step and its version bump commit in one
 * transaction, so a step that fails leaves the object at the version before it, and the
 * next open tries again. Step 1 is the starting schema; to change the schema, append a
 * step, never edit a released one.
 */
export type Migration = (sql: SqlStorage) => void;

// The two tables every guard has, an address guard's too (sliding-log.ts, lease-registry.ts).
const WINDOWS = "CREATE TABLE windows (subject TEXT PRIMARY KEY, entries TEXT NOT NULL) WITHOUT ROWID";
const LEASE_HORIZON = "CREATE TABLE lease_horizon (id INTEGER PRIMARY KEY CHECK (id = 1), ends_at INTEGER NOT NULL)";
// When nothing in a window row counts any more (ms), so the rows of subjects gone quiet can
// be found and deleted (an address guard's alarm: many addresses share one guard).
const WINDOW_EXPIRY = "ALTER TABLE windows ADD COLUMN expires_at INTEGER; CREATE INDEX windows_by_expiry ON windows (expires_at)";

/** An account guard's steps (and the `admin` object's). Every table is described in docs/storage.md. */
export const GUARD_MIGRATIONS: readonly Migration[] = [
  // 1: the starting schema.
  (sql) =>
    sql.exec(`
      CREATE TABLE keys (
        key_id TEXT PRIMARY KEY, scopes TEXT NOT NULL, plan TEXT, owner_user_id TEXT,
        expires_at INTEGER, revoked_at INTEGER, limit_override TEXT
      );
      CREATE TABLE revoked_tokens (jti TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);
      CREATE TABLE session_epochs (user_id TEXT PRIMARY KEY, revoked_before_ms INTEGER NOT NULL);
      ${WINDOWS};
      ${LEASE_HORIZON};
      CREATE TABLE account_plan (id INTEGER PRIMARY KEY CHECK (id = 1), plan TEXT, windows TEXT);
      CREATE TABLE gen_usage (
        month TEXT NOT NULL, kind TEXT NOT NULL, key_id TEXT NOT NULL, day TEXT NOT NULL,
        day_used INTEGER NOT NULL, month_used INTEGER NOT NULL, month_overage INTEGER NOT NULL,
        pending TEXT NOT NULL DEFAULT '[]',
        PRIMARY KEY (month, kind, key_id)
      ) WITHOUT ROWID;
      CREATE TABLE owned_jobs (
        job_id TEXT PRIMARY KEY, key_id TEXT NOT NULL, kind TEXT NOT NULL, created_at INTEGER NOT NULL,
        finished_at INTEGER, purged_at INTEGER, reservation TEXT NOT NULL, result_key TEXT,
        rejected INTEGER NOT NULL DEFAULT 0
      ) WITHOUT ROWID;
      CREATE TABLE overage_months (month TEXT PRIMARY KEY, budget_cents INTEGER NOT NULL, spent_cents INTEGER NOT NULL);
      CREATE TABLE account_settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE safety_events (key_id TEXT NOT NULL, at INTEGER NOT NULL);
      CREATE TABLE suspensions (key_id TEXT PRIMARY KEY, until INTEGER NOT NULL);
      CREATE TABLE key_outbox (id TEXT PRIMARY KEY, at INTEGER NOT NULL, entry TEXT NOT NULL) WITHOUT ROWID;
    `),
  // 2: window rows say when they expire.
  (sql) => sql.exec(WINDOW_EXPIRY),
  // 3: no index on when they expire: only an address guard's alarm deletes rows by it, and
  // each index entry is a row written more by every window write (twice the window's cost).
  (sql) => sql.exec("DROP INDEX windows_by_expiry"),
];

/**
 * An address guard's steps (`ip|…`, ADDRESS_GUARD_SHARDS objects per scope, each holding
 * the windows of many client addresses): it keeps only sliding windows and its lease
 * horizon, and deletes each address's row once its windows have passed, so every other
 * table would only cost rows written to create. Its versions count in the same
 * `schema_version` row, separately from GUARD_MIGRATIONS.
 */
export const ADDRESS_GUARD_MIGRATIONS: readonly Migration[] = [
  // 1: the starting schema.
  (sql) => sql.exec(`${WINDOWS}; ${LEASE_HORIZON};`),
  // 2: window rows say when they expire.
  (sql) => sql.exec(WINDOW_EXPIRY),
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
 * Run when the guard opens its storage, in its constructor. A storage at a later version than `migrations` knows
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
