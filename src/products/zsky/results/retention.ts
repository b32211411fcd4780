import type { Env } from "../../../env";
import { JOB_RETENTION_MS } from "../../../limits/bounds";
import { expiredResults } from "./job-store";
import { purgedByRetention } from "./job-state";
const BATCH = 100;
// Each batch calls the guard of every account in it. One run stays well within the
// subrequests a Worker invocation may make; what is left waits for the next hourly run.
const GUARD_CALLS_PER_RUN = 900;

/**
 * Deletes stored results of jobs recorded in D1 (before guard schema step 4) older than 7
 * days, in batches, and purges their jobs (R2, the accounts' guards, D1: job-state.ts).
 * Safe to run twice or concurrently: deleting a missing object is a no-op, a guard purges
 * a job once, and D1 marks it once. Jobs recorded since are retired by their guard's alarm.
 */
export async function sweepResults(env: Env, now: number): Promise<number> {
  let total = 0;
  let guardCalls = 0;
  while (guardCalls + BATCH <= GUARD_CALLS_PER_RUN) {
    const batch = await expiredResults(env, now - JOB_RETENTION_MS, BATCH);
    guardCalls += await purgedByRetention(env, batch, now);
    total += batch.length;
    if (batch.length < BATCH) break;
  }
  return total;
}
