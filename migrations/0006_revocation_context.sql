-- Revocations carry their context: why, and the ticket that tracks it (admin revoke,
-- revoke-leaked, secret-scanning intake, public reports). See docs/storage.md.
ALTER TABLE api_keys ADD COLUMN revoke_reason TEXT;
ALTER TABLE api_keys ADD COLUMN revoke_ticket TEXT;
-- How a key replaced the one in rotated_from: 'roll' (an admin roll, its plaintext shown
-- only to the admin) or NULL (a ZSky rotation made with the old key itself). A leak of
-- the old key reaches the rotations made from it, not an admin's roll.
ALTER TABLE api_keys ADD COLUMN replaced_via TEXT;
