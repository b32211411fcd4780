import { loadSettings } from "./config/settings";
import type { Env } from "./env";
import { products } from "./products/index";
import { pruneUsage } from "./usage/usage-batches";

/**
 * Cron trigger: retention. Each product's own (`hooks.retention`: ZSky results older than
 * 7 days leave R2), then per-key usage batches whose last call is older than
 * USAGE_RETENTION_DAYS leave D1. All are safe to run twice. The controller's scheduled
 * time is "now", so a run can be replayed for any moment.
 */
export async function scheduled(controller: ScheduledController, env: Env, _ctx?: ExecutionContext): Promise<void> {
  const settings = loadSettings(env);
  const now = controller.scheduledTime;
  const counts: Record<string, number> = {};
  for (const product of products()) Object.assign(counts, await product.hooks?.retention?.(env, now));
  const usage = await pruneUsage(env, now - settings.USAGE_RETENTION_DAYS * 86_400_000);
  console.log(JSON.stringify({ msg: "retention", ...counts, usage_batches_deleted: usage }));
}
