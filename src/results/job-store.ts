import type { Env } from "../env";
import type { GenerationKind } from "../limits/types";

/**
 * ZSky jobs in D1 (`zsky_jobs`): the owning account, store mode and where the stored
 * result lives, for completed polls, downloads and retention. Whose job it is, as
 * admission decides it, is the account guard's. Only job-state.ts calls the writers here.
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
  /** Links to the result issued at or before this time (ms) are refused (the submitting key was revoked). */
  linksRevokedAt: number | null;
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
  links_revoked_at: number | null;
}

/** R2 object key of a job's result. */
export const resultObjectKey = (accountId: string, jobId: string) => `zsky/${encodeURIComponent(accountId)}/${encodeURIComponent(jobId)}`;

export async function recordJob(
  env: Env,
  job: { jobId: string; accountId: string; keyId: string; kind: GenerationKind; store: boolean; now: number },
) {
  await env.DB.prepare("INSERT OR IGNORE INTO zsky_jobs (job_id, account_id, key_id, kind, store, created_at) VALUES (?, ?, ?, ?, ?, ?)")
    .bind(job.jobId, job.accountId, job.keyId, job.kind, job.store ? 1 : 0, job.now)
    .run();
}

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
    linksRevokedAt: r.links_revoked_at,
  };
}

export async function markStored(env: Env, jobId: string, stored: { resultKey: string; contentType: string; size: number; now: number }) {
  await env.DB.prepare(
    "UPDATE zsky_jobs SET result_key = ?, content_type = ?, size = ?, completed_at = ? WHERE job_id = ? AND purged_at IS NULL",
  )
    .bind(stored.resultKey, stored.contentType, stored.size, stored.now, jobId)
    .run();
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
 * Refuses every link issued so far to the stored results of jobs the keys submitted;
 * returns how many results that covers. A scan of zsky_jobs (no index by key: revoking
 * is rare, and an index would cost a row written per job).
 */
export async function revokeLinks(env: Env, keyIds: string[], now: number): Promise<number> {
  if (keyIds.length === 0) return 0;
  const results = await env.DB.batch(
    keyIds.map((id) =>
      env.DB.prepare("UPDATE zsky_jobs SET links_revoked_at = ? WHERE key_id = ? AND result_key IS NOT NULL AND purged_at IS NULL").bind(
        now,
        id,
      ),
    ),
  );
  return results.reduce((n, r) => n + r.meta.changes, 0);
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
