import { loadSettings } from "./config/settings";
import type { Env } from "./env";
import { pruneUsage } from "./keys/usage-log";

/** Cron trigger: retention of the per-key usage log (USAGE_RETENTION_DAYS). Safe to run twice. */
export async function scheduled(_controller: ScheduledController, env: Env): Promise<void> {
  const settings = loadSettings(env);
  const cutoff = Date.now() - settings.USAGE_RETENTION_DAYS * 86_400_000;
  const deleted = await pruneUsage(env, cutoff);
  console.log(JSON.stringify({ msg: "retention", usage_rows_deleted: deleted }));
}
