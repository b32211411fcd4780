import { applyD1Migrations, env } from "cloudflare:test";

// The local D1 starts empty: give it the same schema `wrangler d1 migrations apply` would.
await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
