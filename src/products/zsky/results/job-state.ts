import type { Identity } from "../../../identify/identity";
import type { Env } from "../../../env";
import { guardFor } from "../../../admit/guard-client";
import type { JobView } from "../../../limits/guard-protocol";
import type { GenerationKind, GenerationLimits } from "../../../limits/types";

/**
 * Every change to a ZSky job's state, one function per event. The job has one home, its
 * account's guard: whose job it is (admission answers 404 for another account's, an
 * unknown, a purged or a retired job before the origin is asked), its store mode and R2
 * key, and the key's job slot; the guard's alarm retires it 7 days after submission. R2
 * holds the result itself, and is the truth for "is it stored": a download reads the
 * object and nothing else. Every guard change here is safe to repeat.
 */

type Owner = Pick<Identity, "product" | "accountId">;

/** R2 object key of a job's result: the account and job id a signed link names are all a download needs. */
export const resultObjectKey = (accountId: string, jobId: string) => `zsky/${encodeURIComponent(accountId)}/${encodeURIComponent(jobId)}`;

/** A job status after which the job never runs again. */
export type TerminalStatus = "completed" | "failed" | "blocked";
const TERMINAL = new Set<unknown>(["completed", "failed", "blocked"] satisfies TerminalStatus[]);

/** The terminal status the origin's answer to `GET /v1/jobs/{jobId}` reports, if it reports one for that job. */
export function terminalStatus(body: Record<string, unknown> | null | undefined, jobId: string): TerminalStatus | null {
  return body?.job_id === jobId && TERMINAL.has(body.status) ? (body.status as TerminalStatus) : null;
}

/**
 * How the origin answered a generate call: a job was created, the safety filter
 * blocked it (451), or anything else (invalid, failed, timed out, unreadable).
 */
export type SubmissionAnswer =
  { outcome: "accepted"; jobId: string; kind: GenerationKind; store: boolean } | { outcome: "blocked" | "refused" };

/** What the origin's answer to a generate call (its status and JSON object body) says it did. */
export function submissionAnswer(
  status: number,
  body: Record<string, unknown> | null,
  kind: GenerationKind,
  store: boolean,
): SubmissionAnswer {
  if (status === 451) return { outcome: "blocked" };
  if (status !== 200 || typeof body?.job_id !== "string") return { outcome: "refused" };
  return { outcome: "accepted", jobId: body.job_id, kind, store };
}

/**
 * The origin answered a generate call admitted with `reservationId`: the reservation is
 * settled (accepted and blocked count against the allowances, refused gives quota and
 * slot back), and an accepted job becomes the account's, with its result record.
 */
export async function submissionAnswered(
  env: Env,
  identity: Identity,
  reservationId: string,
  answer: SubmissionAnswer,
  limits: GenerationLimits,
): Promise<void> {
  const job =
    answer.outcome === "accepted"
      ? { jobId: answer.jobId, resultKey: answer.store ? resultObjectKey(identity.accountId, answer.jobId) : null }
      : null;
  await guardFor(env, identity).settleGeneration(reservationId, answer.outcome, job, limits);
}

/**
 * A poll, or the edge's re-check of a full pool, saw the job end at the origin: its slot
 * is free (`finished`: this call freed it). `job` is its record, null when it is not the account's.
 */
export function jobEnded(
  env: Env,
  owner: Owner,
  jobId: string,
  status: TerminalStatus,
  limits: GenerationLimits,
): Promise<{ finished: boolean; job: JobView | null }> {
  return guardFor(env, owner).finishJob(jobId, status, limits);
}

/** `DELETE /v1/jobs/{id}`, once the origin has let the job go: the result leaves R2 and the job is the account's no more. */
export async function purgedByOwner(env: Env, owner: Owner, jobId: string): Promise<void> {
  await env.RESULTS.delete(resultObjectKey(owner.accountId, jobId));
  await guardFor(env, owner).purgeJobs([jobId]);
}

/**
 * The keys were revoked as leaked (or an admin asked): every download link they were
 * handed so far is refused from now on, the very next download included; a later poll by
 * a live key of the account signs a new one. One mark per key in the account's guard
 * (whatever the number of results), which every download of a link naming the key asks
 * about. Returns how many stored results the keys' jobs hold (what those links could open).
 */
export function resultLinksRevoked(env: Env, owner: Owner, keyIds: string[]): Promise<number> {
  return guardFor(env, owner).refuseResultLinks(keyIds);
}
