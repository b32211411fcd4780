import { loadSettings } from "./config/settings";
import type { Env } from "./env";
import { pruneUsage } from "./usage/usage-batches";
import { sweepResults } from "./products/zsky/results/retention";

/**
 * Cron trigger: retention. ZSky results older than 7 days leave R2; per-key usage
 * batches whose last call is older than USAGE_RETENTION_DAYS leave D1. Both are safe to
 * run twice. The controller's scheduled time is "now", so a run can be replayed for any moment.
 */
export async function scheduled(controller: ScheduledController, env: Env, _ctx?: ExecutionContext): Promise<void> {
  const settings = loadSettings(env);
  const now = controller.scheduledTime;
  const results = await sweepResults(env, now);
  const usage = await pruneUsage(env, now - settings.USAGE_RETENTION_DAYS * 86_400_000);
  console.log(JSON.stringify({ msg: "retention", results_deleted: results, usage_batches_deleted: usage }));
}
