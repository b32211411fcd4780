import type { AccountGuard } from "./guard/account-guard";

/**
 * Bindings the Worker receives. Vars and secrets arrive as strings (or numbers from
 * wrangler.toml) and are validated by `src/config/settings.ts` before any use.
 */
export interface Env {
  KEYS_KV: KVNamespace;
  DB: D1Database;
  RESULTS: R2Bucket;
  ACCOUNT_GUARD: DurableObjectNamespace<AccountGuard>;
  [setting: string]: unknown;
}
