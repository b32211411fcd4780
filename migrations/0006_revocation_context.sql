-- Revocations carry their context: why, and the ticket that tracks it (admin revoke,
-- revoke-leaked, secret-scanning intake, public reports). See docs/storage.md.
ALTER TABLE api_keys ADD COLUMN revoke_reason TEXT;
ALTER TABLE api_keys ADD COLUMN revoke_ticket TEXT;
-- Result links of a job issued at or before this time (ms) are refused: a revoked key's
-- outstanding download links stop working (src/results/link-revocation.ts).
ALTER TABLE zsky_jobs ADD COLUMN links_revoked_at INTEGER;
