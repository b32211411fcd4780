import { loadSettings } from "./config/settings";
import type { Env } from "./env";
import { pruneUsage } from "./usage/usage-batches";

/**
 * Cron trigger: retention of per-key usage batches whose last call is older than
 * USAGE_RETENTION_DAYS (D1). ZSky results are not the cron's: each account's guard
 * retires its jobs, and their results, 7 days after submission. Safe to run twice. The
 * controller's scheduled time is "now", so a run can be replayed for any moment.
 */
export async function scheduled(controller: ScheduledController, env: Env, _ctx?: ExecutionContext): Promise<void> {
  const settings = loadSettings(env);
  const usage = await pruneUsage(env, controller.scheduledTime - settings.USAGE_RETENTION_DAYS * 86_400_000);
  console.log(JSON.stringify({ msg: "retention", usage_batches_deleted: usage }));
}
