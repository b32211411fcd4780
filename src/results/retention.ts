import type { Env } from "../env";
import { expiredResults, markPurged } from "./job-store";

/** Results live 7 days after they are stored (zsky-api.txt "Storage & Retention"). */
export const RESULT_RETENTION_MS = 7 * 86_400_000;
const BATCH = 100;

/**
 * Deletes stored results older than 7 days, in batches, and marks their jobs purged.
 * Safe to run twice or concurrently: deleting a missing object is a no-op and a job is
 * only marked once.
 */
export async function sweepResults(env: Env, now: number): Promise<number> {
  let total = 0;
  for (;;) {
    const batch = await expiredResults(env, now - RESULT_RETENTION_MS, BATCH);
    if (batch.length === 0) return total;
    await env.RESULTS.delete(batch.map((r) => r.resultKey));
    await markPurged(env, batch.map((r) => r.jobId), "retention", now);
    total += batch.length;
    if (batch.length < BATCH) return total;
  }
}
