-- Which products exist is the gateway's registry (src/products/index.ts), checked by the
-- admin API before a key is made: api_keys no longer lists them, so adding a product is
-- its folder alone. SQLite drops a CHECK only by rebuilding the table. See docs/storage.md.
CREATE TABLE api_keys_rebuilt (
  id TEXT PRIMARY KEY,
  key_hash TEXT NOT NULL UNIQUE,
  product TEXT NOT NULL,
  account_id TEXT NOT NULL,
  owner_user_id TEXT,
  label TEXT,
  prefix TEXT NOT NULL,
  last4 TEXT NOT NULL,
  scopes TEXT NOT NULL DEFAULT '["*"]',
  plan TEXT,
  limit_override TEXT,
  imported INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  expires_at INTEGER,
  revoked_at INTEGER,
  revoked_by TEXT,
  last_used_at INTEGER,
  rotated_from TEXT,
  revoke_reason TEXT,
  revoke_ticket TEXT,
  replaced_via TEXT
);
INSERT INTO api_keys_rebuilt (id, key_hash, product, account_id, owner_user_id, label, prefix, last4, scopes, plan, limit_override,
  imported, created_at, expires_at, revoked_at, revoked_by, last_used_at, rotated_from, revoke_reason, revoke_ticket, replaced_via)
SELECT id, key_hash, product, account_id, owner_user_id, label, prefix, last4, scopes, plan, limit_override,
  imported, created_at, expires_at, revoked_at, revoked_by, last_used_at, rotated_from, revoke_reason, revoke_ticket, replaced_via
FROM api_keys;
DROP TABLE api_keys;
ALTER TABLE api_keys_rebuilt RENAME TO api_keys;
CREATE INDEX api_keys_by_account ON api_keys (product, account_id, created_at);
CREATE INDEX api_keys_by_rotated_from ON api_keys (rotated_from) WHERE rotated_from IS NOT NULL;
