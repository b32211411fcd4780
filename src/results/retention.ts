import type { Env } from "../env";
import { expiredResults } from "./job-store";
import { purgedByRetention } from "./job-state";

/** Results live 7 days after they are stored (zsky-api.txt "Storage & Retention"). */
export const RESULT_RETENTION_MS = 7 * 86_400_000;
const BATCH = 100;
// Each batch calls the guard of every account in it. One run stays well within the
// subrequests a Worker invocation may make; what is left waits for the next hourly run.
const GUARD_CALLS_PER_RUN = 900;

/**
 * Deletes stored results older than 7 days, in batches, and purges their jobs (R2, the
 * accounts' guards, D1: job-state.ts). Safe to run twice or concurrently: deleting a
 * missing object is a no-op, a guard purges a job once, and D1 marks it once.
 */
export async function sweepResults(env: Env, now: number): Promise<number> {
  let total = 0;
  let guardCalls = 0;
  while (guardCalls + BATCH <= GUARD_CALLS_PER_RUN) {
    const batch = await expiredResults(env, now - RESULT_RETENTION_MS, BATCH);
    guardCalls += await purgedByRetention(env, batch, now);
    total += batch.length;
    if (batch.length < BATCH) break;
  }
  return total;
}
