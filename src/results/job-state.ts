import type { Identity } from "../auth/identity";
import type { Env } from "../env";
import { guardFor } from "../edge/guard-client";
import type { GenerationKind, GenerationLimits } from "../limits/types";
import { markPurged, markStored, recordJob, revokeLinks, type JobRecord } from "./job-store";

/**
 * Every change to a ZSky job's state, one function per event. The state has two homes,
 * each holding only what its readers need:
 * - the account's guard: whose job it is (admission answers 404 for another account's,
 *   an unknown or a purged job before the origin is asked) and the key's job slot;
 * - D1 `zsky_jobs` (job-store.ts): what the result store needs (the owning account,
 *   store mode, the R2 key, purged), read by completed polls, downloads and retention.
 * This module is their only writer. Where an event changes both, the guard is told
 * first and D1 last: the guard's answer decides what a caller may do next, and a purge
 * that fails in between leaves D1 saying "live", so it is simply done again (the
 * owner's next DELETE, the next retention run); every guard change here is safe to repeat.
 */

type Owner = Pick<Identity, "product" | "accountId">;

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
  now: number,
): Promise<void> {
  const jobId = answer.outcome === "accepted" ? answer.jobId : null;
  await guardFor(env, identity).settleGeneration(reservationId, answer.outcome, jobId, limits);
  if (answer.outcome !== "accepted") return;
  await recordJob(env, {
    jobId: answer.jobId,
    accountId: identity.accountId,
    keyId: identity.keyId!,
    kind: answer.kind,
    store: answer.store,
    now,
  });
}

/** A poll, or the edge's re-check of a full pool, saw the job end at the origin: its slot is free. True when this call freed it. */
export function jobEnded(env: Env, owner: Owner, jobId: string, status: TerminalStatus, limits: GenerationLimits): Promise<boolean> {
  return guardFor(env, owner).finishJob(jobId, status, limits);
}

/** The completed result is in R2 under `resultKey`: later polls sign links to it, downloads serve it, retention deletes it. */
export function resultStored(
  env: Env,
  jobId: string,
  stored: { resultKey: string; contentType: string; size: number; now: number },
): Promise<void> {
  return markStored(env, jobId, stored);
}

/**
 * The keys were revoked as leaked (or an admin asked): every result link issued so far
 * for the jobs they submitted is refused from now on; a later poll by a live key of the
 * account signs a new one. Only D1: links are checked at download, never by the guard.
 */
export function resultLinksRevoked(env: Env, keyIds: string[], now: number): Promise<number> {
  return revokeLinks(env, keyIds, now);
}

/** `DELETE /v1/jobs/{id}`, once the origin has let the job go: the result leaves R2 and the job is the account's no more. */
export async function purgedByOwner(env: Env, owner: Owner, job: JobRecord, now: number): Promise<void> {
  if (job.resultKey) await env.RESULTS.delete(job.resultKey);
  await guardFor(env, owner).purgeJobs([job.jobId]);
  await markPurged(env, [job.jobId], "owner", now);
}

/**
 * Results past retention: they leave R2, each account's guard refuses their jobs from
 * now on (one call per account), then D1 marks them purged. If any guard cannot be
 * reached the whole batch stays unmarked in D1 and the next run does it again.
 * Returns how many guards were called.
 */
export async function purgedByRetention(
  env: Env,
  expired: { jobId: string; accountId: string; resultKey: string }[],
  now: number,
): Promise<number> {
  if (expired.length === 0) return 0;
  await env.RESULTS.delete(expired.map((r) => r.resultKey));
  const byAccount = new Map<string, string[]>();
  for (const r of expired) byAccount.set(r.accountId, [...(byAccount.get(r.accountId) ?? []), r.jobId]);
  await Promise.all([...byAccount].map(([accountId, jobIds]) => guardFor(env, { product: "zsky", accountId }).purgeJobs(jobIds)));
  await markPurged(
    env,
    expired.map((r) => r.jobId),
    "retention",
    now,
  );
  return byAccount.size;
}
