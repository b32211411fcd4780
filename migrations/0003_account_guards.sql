-- The account guards that exist (src/keys/guard-birth.ts, docs/architecture.md "Where a
-- guard lives"): a Durable Object is placed near its first caller, so admin actions on an
-- account whose guard does not exist yet are decided here, not by calling (and so
-- creating) the guard near the operator; the guard's first call, a request of the
-- account's own traffic, inserts its row and reads the account's keys in one batch.
CREATE TABLE account_guards (
  name TEXT PRIMARY KEY,                  -- the guard's name, <product>:<account>
  born_at INTEGER NOT NULL                -- when its first call created it (0: before this table)
);
-- Until now a key's registration created its account's guard: every account with a key has one.
INSERT OR IGNORE INTO account_guards (name, born_at) SELECT DISTINCT product || ':' || account_id, 0 FROM api_keys;
-- Keys an admin rolled to while their account had no guard: the guard's birth reads them
-- (and counts the old key as its successor); every other rolled or rotated key is made by
-- the guard itself, and one being made as the guard is born must not look made.
CREATE TABLE rolls_before_guard (
  key_id TEXT PRIMARY KEY                 -- the successor's id (api_keys.id)
);
-- Account settings an admin made while the account had no guard (guard-birth.ts,
-- settingBeforeGuard): its plan, ZSky overage, and a ZakGT user's "sessions revoked
-- before"; the guard applies them at its birth. Kept afterwards (one row per setting
-- and account): a birth cut short is repeated by the guard's next instance and reads
-- them again.
CREATE TABLE guard_settings_before_birth (
  name TEXT NOT NULL,                     -- the guard's name, <product>:<account>
  setting TEXT NOT NULL,                  -- 'plan', 'overage' or 'sessions'
  value TEXT NOT NULL,                    -- its JSON (SettingBeforeGuard)
  PRIMARY KEY (name, setting)
);
