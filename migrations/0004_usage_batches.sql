-- Per-call key usage in batches: one row per key per flush of an isolate, its calls a
-- JSON array (src/keys/usage-batches.ts), instead of one row per call with two indexes
-- and AUTOINCREMENT (about 4 D1 rows written per call). See docs/storage.md.

CREATE TABLE key_usage_batches (
  key_id TEXT NOT NULL,
  first_at INTEGER NOT NULL,              -- the batch's first call
  batch TEXT NOT NULL,                    -- random id: two batches of a key may start in the same ms
  last_at INTEGER NOT NULL,               -- its last call, at most 60 s after first_at (MAX_BATCH_SPAN_MS)
  last_admitted_at INTEGER,               -- its last call the guard admitted (NULL: none): the key's last_used_at
  -- JSON array, oldest first, one array per call: [at - first_at, method, path (no query),
  -- status, request id, client address, country, asn, user agent (256 chars), outcome]
  calls TEXT NOT NULL,
  PRIMARY KEY (key_id, first_at, batch)
) WITHOUT ROWID;

-- The per-call rows move into batches: per key and UTC minute (so no batch spans more
-- than 60 s), at most 64 calls each. Calls answered below 400 were admitted; the old
-- rows do not say who refused the others, so their outcome is null. Fields the old log
-- did not keep are null too.
INSERT INTO key_usage_batches (key_id, first_at, batch, last_at, last_admitted_at, calls)
SELECT key_id, MIN(at), lower(hex(randomblob(8))), MAX(at), MAX(CASE WHEN status < 400 THEN at END),
       json_group_array(json_array(at - first_at, method, path, status, request_id, NULL, NULL, NULL, NULL, CASE WHEN status < 400 THEN 'admitted' END))
FROM (
  SELECT *, MIN(at) OVER (PARTITION BY key_id, minute, chunk) AS first_at
  FROM (
    SELECT *, at / 60000 AS minute, (ROW_NUMBER() OVER (PARTITION BY key_id, at / 60000 ORDER BY at, id) - 1) / 64 AS chunk
    FROM key_usage
  )
  ORDER BY key_id, minute, chunk, at, id
)
GROUP BY key_id, minute, chunk;

-- api_keys.last_used_at now holds only the last admitted use from batches already
-- pruned (src/keys/usage-batches.ts). It used to count refused calls too; for a key
-- with calls in the old log it was the last of them, which the batches now know
-- better. Keys without such calls keep it: nothing else knows of their last use.
UPDATE api_keys SET last_used_at = NULL WHERE id IN (SELECT key_id FROM key_usage);

-- Apply right before deploying the code that writes batches: calls the previous
-- version records in between fail to write (it logs usage_write_failed).
DROP TABLE key_usage;
