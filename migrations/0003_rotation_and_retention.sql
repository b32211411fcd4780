-- A rotated key remembers the key it replaced, so revoking a leaked key can follow
-- the rotations made from it. See docs/storage.md.
ALTER TABLE api_keys ADD COLUMN rotated_from TEXT;
CREATE INDEX api_keys_by_rotated_from ON api_keys (rotated_from) WHERE rotated_from IS NOT NULL;

-- Result retention counts from submission (see src/results/job-store.ts).
DROP INDEX zsky_jobs_retention;
CREATE INDEX zsky_jobs_retention ON zsky_jobs (created_at) WHERE result_key IS NOT NULL AND purged_at IS NULL;
