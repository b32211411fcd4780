-- Key records, per-call usage and the audit log. Every table is described in docs/storage.md.
-- Times are milliseconds since the Unix epoch (UTC).

CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  key_hash TEXT NOT NULL UNIQUE,          -- hex SHA-256 of the key; the plaintext is never stored
  product TEXT NOT NULL CHECK (product IN ('zakgt', 'zsky', 'zappway')),
  account_id TEXT NOT NULL,
  owner_user_id TEXT,                     -- ZakGT: the user whose session created it
  label TEXT,
  prefix TEXT NOT NULL,                   -- e.g. zsky_live_ ('' for imported keys)
  last4 TEXT NOT NULL,                    -- last 4 characters, for recognising a key in listings
  scopes TEXT NOT NULL DEFAULT '["*"]',   -- JSON array of scope names
  plan TEXT,
  limit_override TEXT,                    -- JSON per-key limit override, or NULL
  imported INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  expires_at INTEGER,
  revoked_at INTEGER,
  revoked_by TEXT,
  last_used_at INTEGER
);
CREATE INDEX api_keys_by_account ON api_keys (product, account_id, created_at);

CREATE TABLE key_usage (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  key_id TEXT NOT NULL,
  at INTEGER NOT NULL,
  method TEXT NOT NULL,
  path TEXT NOT NULL,                     -- without the query string
  status INTEGER NOT NULL,
  request_id TEXT NOT NULL
);
CREATE INDEX key_usage_by_key ON key_usage (key_id, id);
CREATE INDEX key_usage_by_time ON key_usage (at);

CREATE TABLE audit_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  actor TEXT NOT NULL,                    -- admin:token, admin:<access email>, user:<id>, key:<id>
  action TEXT NOT NULL,                   -- key.create, key.import, key.revoke, key.rotate, sessions.revoke, ...
  target TEXT,                            -- key id or user id
  product TEXT,
  account_id TEXT,
  request_id TEXT NOT NULL,
  detail TEXT                             -- JSON, never a secret
);
CREATE INDEX audit_log_by_target ON audit_log (target, id);
