-- ZSky jobs submitted through zgate: who owns them and where their result lives.
-- See docs/storage.md. Times are milliseconds since the Unix epoch (UTC).

CREATE TABLE zsky_jobs (
  job_id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL,
  key_id TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('image', 'video')),
  store INTEGER NOT NULL DEFAULT 1,       -- 0: X-ZSky-Store: 0, the result is never persisted
  created_at INTEGER NOT NULL,
  result_key TEXT,                        -- R2 object key once the result is stored
  content_type TEXT,
  size INTEGER,
  completed_at INTEGER,                   -- when the result was stored (retention counts from here)
  purged_at INTEGER,
  purge_reason TEXT                       -- 'owner' (DELETE /v1/jobs/{id}) or 'retention' (cron)
);
CREATE INDEX zsky_jobs_by_account ON zsky_jobs (account_id, created_at);
CREATE INDEX zsky_jobs_retention ON zsky_jobs (completed_at) WHERE result_key IS NOT NULL AND purged_at IS NULL;
