import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../http/context";
import { originJson } from "../http/origin-json";
import { guardFor } from "./guard-client";

const TERMINAL = new Set(["completed", "failed", "blocked"]);

/**
 * ZSky bookkeeping once the origin has answered, before the caller sees the answer (so
 * a caller who reacts at once finds its slot free):
 * - a generate call settles its reservation: accepted (job slot held until the job
 *   ends) or blocked by the safety filter (451) count against the allowances; any other
 *   answer (invalid, failed, timed out) gives quota and slot back;
 * - a poll that shows a terminal state releases the job's slot, exactly once.
 */
export const settleGeneration: MiddlewareHandler<AppEnv> = async (c, next) => {
  await next();
  const admission = c.get("admission");
  const identity = c.get("identity");
  const generation = admission?.generation;
  if (!generation || !identity) return;

  if (admission.reservationId) {
    const reservationId = admission.reservationId;
    // An answer that could not be read created no job the caller knows of: give the reservation back.
    const body = c.res.status === 200 ? await originJson(c).catch(async (err: unknown) => {
      await guardFor(c.env, identity).settleGeneration(reservationId, "refused", null, generation);
      throw err;
    }) : null;
    const jobId = typeof body?.job_id === "string" ? body.job_id : null;
    const outcome = c.res.status === 451 ? "blocked" : c.res.status === 200 && jobId ? "accepted" : "refused";
    await guardFor(c.env, identity).settleGeneration(admission.reservationId, outcome, jobId, generation);
    return;
  }
  if (c.get("route").name === "jobs.get" && c.res.status === 200) {
    const body = await originJson(c);
    if (typeof body?.job_id === "string" && typeof body.status === "string" && TERMINAL.has(body.status)) {
      await guardFor(c.env, identity).finishJob(body.job_id, body.status as "completed" | "failed" | "blocked", generation);
    }
  }
};
