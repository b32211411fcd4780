import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../http/context";
import { originJson } from "../http/origin-json";
import { guardFor } from "./guard-client";

/** A job status after which the job never runs again: its slot is released. */
export type TerminalStatus = "completed" | "failed" | "blocked";
const TERMINAL = new Set<unknown>(["completed", "failed", "blocked"] satisfies TerminalStatus[]);

/** The terminal status the origin's answer to `GET /v1/jobs/{jobId}` reports, if it reports one for that job. */
export function terminalStatus(body: Record<string, unknown> | null | undefined, jobId: string): TerminalStatus | null {
  return body?.job_id === jobId && TERMINAL.has(body.status) ? (body.status as TerminalStatus) : null;
}

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
    const jobId = c.get("params").id ?? "";
    const status = terminalStatus(await originJson(c), jobId);
    if (status) await guardFor(c.env, identity).finishJob(jobId, status, generation);
  }
};
