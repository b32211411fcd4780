-- Per-call usage moved out of D1: each account's calls are in its own usage log Durable
-- Object (src/usage/usage-log-object.ts; docs/scale.md), so D1's size and write rate no
-- longer grow with traffic. `api_keys.last_used_at` stays (keys imported with a last use).
DROP TABLE key_usage_batches;
