import type { AccountGuard } from "./guard/account-guard";
import type { UsageAddressIndex } from "./usage/address-index";
import type { UsageLog } from "./usage/usage-log-object";

/**
 * Bindings the Worker receives. Vars and secrets arrive as strings (or numbers from
 * wrangler.toml) and are validated by `src/config/settings.ts` before any use.
 */
export interface Env {
  KEYS_KV: KVNamespace;
  DB: D1Database;
  RESULTS: R2Bucket;
  ACCOUNT_GUARD: DurableObjectNamespace<AccountGuard>;
  /** One per account: its per-call usage (src/usage/usage-log-object.ts). */
  USAGE_LOG: DurableObjectNamespace<UsageLog>;
  /** Client address -> accounts it called, sharded by address (src/usage/address-index.ts). */
  USAGE_ADDRESSES: DurableObjectNamespace<UsageAddressIndex>;
  [setting: string]: unknown;
}
