-- zgate's starting D1 schema: key records, per-call usage in batches and the audit log.
-- Every table is described in docs/storage.md. Times are milliseconds since the Unix
-- epoch (UTC). A change of schema is a new file after this one; never edit an applied one.

CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  key_hash TEXT NOT NULL UNIQUE,          -- hex SHA-256 of the key; the plaintext is never stored
  product TEXT NOT NULL,                  -- a registered product's id (src/products/): no list here, so a new product needs no migration
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
  revoke_reason TEXT,                     -- why, as the first revocation gave it
  revoke_ticket TEXT,                     -- the ticket that tracks it
  last_used_at INTEGER,                   -- the last admitted call of usage batches already pruned
  rotated_from TEXT,                      -- the key this one replaced (a rotation, a roll or a replacement)
  replaced_via TEXT                       -- how: 'roll', 'replace', or NULL for a ZSky rotation
);
CREATE INDEX api_keys_by_account ON api_keys (product, account_id, created_at);
CREATE INDEX api_keys_by_rotated_from ON api_keys (rotated_from) WHERE rotated_from IS NOT NULL;

-- Per-call key usage: one row per key per flush of an isolate, its calls a JSON array
-- (src/usage/usage-batches.ts).
CREATE TABLE key_usage_batches (
  key_id TEXT NOT NULL,
  first_at INTEGER NOT NULL,              -- the batch's first call
  batch TEXT NOT NULL,                    -- random id: two batches of a key may start in the same ms
  last_at INTEGER NOT NULL,               -- its last call, at most 60 s after first_at (MAX_BATCH_SPAN_MS)
  last_admitted_at INTEGER,               -- its last call the guard admitted (NULL: none)
  -- JSON array, oldest first, one array per call: [at - first_at, method, path (no query),
  -- status, request id, client address, country, asn, user agent (256 chars), outcome]
  calls TEXT NOT NULL,
  PRIMARY KEY (key_id, first_at, batch)
) WITHOUT ROWID;

CREATE TABLE audit_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  actor TEXT NOT NULL,                    -- admin:token, admin:<access email>, user:<id>, key:<id>, zgate, ...
  action TEXT NOT NULL,                   -- key.create, key.import, key.revoke, key.rotate, sessions.revoke, ...
  target TEXT,                            -- key id or user id
  product TEXT,
  account_id TEXT,
  request_id TEXT NOT NULL,
  detail TEXT                             -- JSON, never a secret
);
CREATE INDEX audit_log_by_target ON audit_log (target, id);
