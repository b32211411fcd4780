import type { Context, MiddlewareHandler } from "hono";
import type { AppEnv } from "../http/context";
import { GatewayError } from "../http/errors";
import { originJson } from "../http/origin-json";
import { replaceResponse } from "../http/response";
import { guardFor } from "../edge/guard-client";
import { getJob, markPurged, markStored, recordJob, resultObjectKey, type JobRecord } from "./job-store";
import { bufferResult, MAX_BUFFERED_RESULT_BYTES, openResult } from "./origin-result";
import { presignConfigured, presignResultUrl } from "./presign";
import { putResult } from "./put-result";
import { resultDisposition } from "./result-media";
import { RESULT_URL_SECONDS, signResultUrl } from "./signed-url";

/**
 * What zgate owns of ZSky's asynchronous jobs:
 * - submit: the accepted job is recorded with its owning account and key;
 * - poll: another account's (or an unknown, or a purged) job is a 404; a completed
 *   result is pulled once from the origin into R2 and handed out as a signed URL valid
 *   24 h, or, for `X-ZSky-Store: 0` jobs, returned inline and never persisted;
 * - purge: the origin is told, then the R2 object and the job's result are gone, so
 *   old signed URLs stop working at once.
 * How results reach R2 is a pull: the gateway fetches the origin's `result_url` with
 * its signed identity headers (docs/storage.md says why).
 */
export const zskyJobs: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (c.get("target").product.id !== "zsky" || !c.get("identity")) return next();
  switch (c.get("route").name) {
    case "images.generate":
    case "videos.generate":
      return recordSubmission(c, next);
    case "jobs.get":
      return materializeResult(c, next);
    case "jobs.purge":
      return purge(c, next);
    default:
      return next();
  }
};

async function recordSubmission(c: Context<AppEnv>, next: () => Promise<void>) {
  await next();
  if (c.res.status !== 200) return;
  const body = await originJson(c);
  const kind = c.get("admission")?.generation?.routes[c.get("route").name];
  if (typeof body?.job_id !== "string" || !kind) return;
  const identity = c.get("identity");
  await recordJob(c.env, {
    jobId: body.job_id,
    accountId: identity.accountId,
    keyId: identity.keyId!,
    kind,
    store: c.req.header("x-zsky-store")?.trim() !== "0",
    now: Date.now(),
  });
}

/**
 * The job's record. The guard has already refused (404) a job this account did not
 * submit or has purged; D1 also knows about retention purges and where the result is.
 */
async function ownedJob(c: Context<AppEnv>): Promise<JobRecord> {
  const job = await getJob(c.env, c.get("params").id ?? "");
  if (!job || job.accountId !== c.get("identity").accountId || job.purgedAt !== null) throw new GatewayError("NOT_FOUND", "Job not found");
  return job;
}

async function materializeResult(c: Context<AppEnv>, next: () => Promise<void>) {
  await next();
  if (c.res.status !== 200) return;
  const body = await originJson(c);
  if (body?.status !== "completed") return;
  // Only a completed poll needs the record (store mode, stored result): queued and running polls cost no D1 read.
  const job = await ownedJob(c);
  const settings = c.get("settings");
  const { result_url: originUrl, expires_in: _originExpiry, ...rest } = body;
  if (!job.store) {
    const limit = Math.min(settings.MAX_RESULT_BYTES, MAX_BUFFERED_RESULT_BYTES);
    const result = await openResult(c, originUrl, limit);
    const data = toBase64(await bufferResult(result, limit));
    replaceResponse(c, Response.json({ ...rest, result_inline: { content_type: result.contentType, encoding: "base64", data } }));
    return;
  }
  const now = Date.now();
  const stored = job.resultKey ? { key: job.resultKey, contentType: job.contentType } : await storeResult(c, job, originUrl, now);
  const url = presignConfigured(settings)
    ? await presignResultUrl(settings, stored.key, resultDisposition(stored.contentType), now)
    : await signResultUrl(settings, publicBase(c), job.jobId, now);
  replaceResponse(c, Response.json({ ...rest, result_url: url, expires_in: RESULT_URL_SECONDS }));
}

/** Base64 in chunks: a string per byte would cost far more memory than the result itself. */
function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

/** Scheme, host and any local prefix the caller used, so the link works where it was asked. */
function publicBase(c: Context<AppEnv>): string {
  const url = new URL(c.req.url);
  return url.origin + url.pathname.slice(0, url.pathname.length - c.get("target").originPath.length);
}

/** Pulls the result into R2 (refused above MAX_RESULT_BYTES) and records it; a failed pull records nothing, and the next poll tries again. */
async function storeResult(c: Context<AppEnv>, job: JobRecord, originUrl: unknown, now: number): Promise<{ key: string; contentType: string }> {
  const maxBytes = c.get("settings").MAX_RESULT_BYTES;
  const result = await openResult(c, originUrl, maxBytes);
  const key = resultObjectKey(job.accountId, job.jobId);
  const size = await putResult(c.env.RESULTS, key, result, maxBytes, { job_id: job.jobId, kind: job.kind });
  await markStored(c.env, job.jobId, { resultKey: key, contentType: result.contentType, size, now });
  return { key, contentType: result.contentType };
}

async function purge(c: Context<AppEnv>, next: () => Promise<void>) {
  const job = await ownedJob(c);
  await next();
  // The origin may already have let it go (404); anything else from it is passed on, so the caller retries.
  if (!(c.res.ok || c.res.status === 404)) return;
  if (job.resultKey) await c.env.RESULTS.delete(job.resultKey);
  await markPurged(c.env, [job.jobId], "owner", Date.now());
  // A job purged before it ended will never be polled to its end: its slot is free now.
  const generation = c.get("admission")?.generation;
  if (generation) await guardFor(c.env, c.get("identity")).finishJob(job.jobId, "purged", generation);
  replaceResponse(c, new Response(null, { status: 204 }));
}
