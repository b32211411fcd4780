import type { Env } from "../../../env";
import type { GenerationKind } from "../../../limits/types";

/**
 * ZSky jobs recorded in D1 (`zsky_jobs`) before a job's home became its account's guard
 * (guard schema step 4; nothing writes new rows). Read for what the guard of such a job
 * does not know: its store mode at a completed poll, its account for a download link
 * signed before links named the account; and drained by retention (job-state.ts). Once
 * no live row is left (7 days after the upgrade), this module and the table can go.
 */
export interface JobRecord {
  jobId: string;
  accountId: string;
  keyId: string;
  kind: GenerationKind;
  store: boolean;
  createdAt: number;
  resultKey: string | null;
  contentType: string | null;
  size: number | null;
  completedAt: number | null;
  purgedAt: number | null;
}

interface JobRow {
  job_id: string;
  account_id: string;
  key_id: string;
  kind: GenerationKind;
  store: number;
  created_at: number;
  result_key: string | null;
  content_type: string | null;
  size: number | null;
  completed_at: number | null;
  purged_at: number | null;
}

/** R2 object key of a job's result. */
export const resultObjectKey = (accountId: string, jobId: string) => `zsky/${encodeURIComponent(accountId)}/${encodeURIComponent(jobId)}`;

export async function getJob(env: Env, jobId: string): Promise<JobRecord | null> {
  const r = await env.DB.prepare("SELECT * FROM zsky_jobs WHERE job_id = ?").bind(jobId).first<JobRow>();
  if (!r) return null;
  return {
    jobId: r.job_id,
    accountId: r.account_id,
    keyId: r.key_id,
    kind: r.kind,
    store: r.store === 1,
    createdAt: r.created_at,
    resultKey: r.result_key,
    contentType: r.content_type,
    size: r.size,
    completedAt: r.completed_at,
    purgedAt: r.purged_at,
  };
}

export async function markPurged(env: Env, jobIds: string[], reason: "owner" | "retention", now: number) {
  if (jobIds.length === 0) return;
  await env.DB.batch(
    jobIds.map((id) =>
      env.DB.prepare("UPDATE zsky_jobs SET purged_at = ?, purge_reason = ? WHERE job_id = ? AND purged_at IS NULL").bind(now, reason, id),
    ),
  );
}

/**
 * Stored results of jobs submitted before `cutoff`, oldest first. Counted from the
 * submission, not from when zgate first stored the result (a late first poll must not
 * stretch the 7 days).
 */
export async function expiredResults(
  env: Env,
  cutoff: number,
  limit: number,
): Promise<{ jobId: string; accountId: string; resultKey: string }[]> {
  const { results } = await env.DB.prepare(
    "SELECT job_id, account_id, result_key FROM zsky_jobs WHERE result_key IS NOT NULL AND purged_at IS NULL AND created_at < ? ORDER BY created_at LIMIT ?",
  )
    .bind(cutoff, limit)
    .all<{ job_id: string; account_id: string; result_key: string }>();
  return results.map((r) => ({ jobId: r.job_id, accountId: r.account_id, resultKey: r.result_key }));
}
