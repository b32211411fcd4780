import type { StageContext } from "../../http/context";
import { GatewayError } from "../../http/errors";
import { originJson } from "../../http/origin-json";
import { replaceResponse } from "../../http/response";
import type { JobView } from "../../limits/guard-protocol";
import { jobEnded, purgedByOwner, submissionAnswer, submissionAnswered, terminalStatus, type SubmissionAnswer } from "./results/job-state";
import { bufferResult, MAX_BUFFERED_RESULT_BYTES, openResult } from "./results/origin-result";
import { presignConfigured, presignResultUrl } from "./results/presign";
import { putResult } from "./results/put-result";
import { resultDisposition } from "./results/result-media";
import { RESULT_URL_SECONDS, signResultUrl } from "./results/signed-url";
import { requestUrl } from "../../http/request-url";
import * as clock from "../../util/clock";

/**
 * What zgate does around ZSky's asynchronous jobs, once the origin has answered: each is
 * the `settle` step of its route (src/products/zsky/index.ts). One guard round trip is on
 * an answer's path at most (its admission): what can follow the answer does.
 * - submit: the guard's reservation is settled from the origin's answer, and an
 *   accepted job becomes the submitting account's (after the answer: a poll that reaches
 *   the guard first waits there for it; a refused or blocked call before, so a caller
 *   retrying at once finds its slot back, or its suspension in force);
 * - poll: a terminal status frees the job's slot (after the answer, from the job's record
 *   the poll's admission brought; a blocked job before, as it may suspend the key;
 *   a submit meeting the slot still held has the pool re-checked); then a completed result is pulled
 *   once from the origin into R2 and handed out as a signed URL valid 24 h, or, for
 *   `X-ZSky-Store: 0` jobs, returned inline and never persisted. Another account's (or
 *   an unknown, or a purged) job never gets here: its guard refuses it (404);
 * - purge: the origin is told, then the R2 object and the job are gone, so old signed
 *   URLs stop working at once (a download reads the object and nothing else).
 * Every state change goes through job-state.ts. How results reach R2 is a pull: the
 * gateway fetches the origin's `result_url` with its signed identity headers
 * (docs/storage.md says why).
 */
export async function settleSubmission(c: StageContext) {
  const { reservationId, generation } = c.get("admission") ?? {};
  const kind = c.get("route").generates;
  if (!reservationId || !generation || !kind) return;
  const identity = c.get("identity");
  const store = c.req.header("x-zsky-store")?.trim() !== "0";
  const settle = (answer: SubmissionAnswer) => submissionAnswered(c.env, identity, reservationId, answer, generation);
  const late = c.get("lateAnswer");
  if (late) {
    // The caller has its 504, and the origin may still make the job: the reservation keeps
    // its slot and count until the origin's answer says (or LATE_ANSWER_MS passes: refused).
    c.executionCtx.waitUntil(settleLate(c, late, (status, body) => settle(submissionAnswer(status, body, kind, store))));
    return;
  }
  // An answer that could not be read created no job the caller knows of: the reservation goes back.
  const body =
    c.res.status === 200
      ? await originJson(c).catch(async (err: unknown) => {
          await settle({ outcome: "refused" });
          throw err;
        })
      : null;
  const answer = submissionAnswer(c.res.status, body, kind, store);
  if (answer.outcome !== "accepted") return settle(answer);
  // An accepted job is settled after the answer, off its path (one guard round trip less):
  // a poll that reaches the guard first waits there for it (AccountGuard.admit). A refused
  // or blocked call is settled before, so a caller retrying at once finds its slot and
  // allowance back, and a suspension in force.
  c.executionCtx.waitUntil(settleAfterAnswer(c, () => settle(answer)));
  prefixPollUrl(c, body!);
}

/** A settlement made after the answer: a failure is logged (the reservation then expires with its count kept). */
async function settleAfterAnswer(c: StageContext, settle: () => Promise<void>): Promise<void> {
  await settle().catch((err: unknown) =>
    console.error(JSON.stringify({ msg: "settlement_failed", request_id: c.get("requestId"), error: String(err).slice(0, 200) })),
  );
}

/** Settles from a late answer (null: none came, taken as no job made); a failure is logged, the reservation then expires. */
async function settleLate(
  c: StageContext,
  late: Promise<Response | null>,
  settle: (status: number, body: Record<string, unknown> | null) => Promise<void>,
): Promise<void> {
  const response = await late;
  const body = response?.status === 200 ? await response.json<unknown>().catch(() => null) : null;
  const object = body && typeof body === "object" && !Array.isArray(body) ? (body as Record<string, unknown>) : null;
  await settle(response?.status ?? 504, object).catch((err: unknown) =>
    console.error(JSON.stringify({ msg: "late_settlement_failed", request_id: c.get("requestId"), error: String(err).slice(0, 200) })),
  );
}

/**
 * The origin's `poll_url` is a path on its own host (`/v1/jobs/<id>`): right on zsky.ai,
 * but through a prefix (`/zsky` locally or on a gateway host) it must carry the prefix,
 * like `result_url`, or following it reaches zgate's own 404. On the product host the
 * answer is left as the origin sent it.
 */
function prefixPollUrl(c: StageContext, body: Record<string, unknown>) {
  const prefix = c.get("target").publicPrefix;
  const pollUrl = body.poll_url;
  if (!prefix || typeof pollUrl !== "string" || !pollUrl.startsWith("/") || pollUrl.startsWith("//")) return;
  const headers = new Headers(c.res.headers);
  headers.delete("content-length");
  replaceResponse(c, new Response(JSON.stringify({ ...body, poll_url: prefix + pollUrl }), { status: c.res.status, headers }));
}

/**
 * The slot is freed first, from the origin's own answer: whatever the result's pull
 * then does (refused, failed), the job has ended. The same guard call hands back the
 * job's record, so a completed poll needs no other lookup.
 */
export async function settlePoll(c: StageContext) {
  if (c.res.status !== 200) return;
  const jobId = c.get("params").id ?? "";
  const body = await originJson(c);
  const status = terminalStatus(body, jobId);
  const { generation, job } = c.get("admission") ?? {};
  if (!status || !generation) return;
  if (job && status !== "blocked") {
    // The admission named the job: its slot is freed after the answer, off its path. A
    // blocked job is settled before it, since it may suspend the key.
    const ending = jobEnded(c.env, c.get("identity"), jobId, status, generation);
    c.executionCtx.waitUntil(settleAfterAnswer(c, async () => void (await ending)));
    if (status === "completed") await materializeResult(c, body!, jobId, job, !job.ended);
    return;
  }
  const ended = await jobEnded(c.env, c.get("identity"), jobId, status, generation);
  // The guard admitted the poll; a purge or retirement since is a 404 too.
  if (!ended.job) throw new GatewayError("NOT_FOUND", "Job not found");
  if (status === "completed") await materializeResult(c, body!, jobId, ended.job, ended.finished);
}

/**
 * `firstEnd`: this poll is the one that saw the job end, so its result is pulled; a later
 * poll (a re-fetch) finds it in R2, or pulls it again if that first pull failed.
 */
async function materializeResult(c: StageContext, body: Record<string, unknown>, jobId: string, job: JobView, firstEnd: boolean) {
  const settings = c.get("settings");
  const { accountId, keyId } = c.get("identity");
  const { result_url: originUrl, expires_in: _originExpiry, ...rest } = body;
  const key = job.resultKey;
  // `X-ZSky-Store: 0`: the bytes go back inline and are never persisted.
  if (key === null) {
    const limit = Math.min(settings.MAX_RESULT_BYTES, MAX_BUFFERED_RESULT_BYTES);
    const result = await openResult(c, originUrl, limit);
    const data = toBase64(await bufferResult(result, limit));
    replaceResponse(c, Response.json({ ...rest, result_inline: { content_type: result.contentType, encoding: "base64", data } }));
    return;
  }
  const now = clock.now();
  const found = firstEnd ? null : await c.env.RESULTS.head(key);
  const contentType = found ? (found.httpMetadata?.contentType ?? "application/octet-stream") : await storeResult(c, key, jobId, originUrl);
  const url = presignConfigured(settings)
    ? await presignResultUrl(settings, key, resultDisposition(contentType), now)
    : await signResultUrl(settings, publicBase(c), { account: accountId, keyId: keyId! }, jobId, now);
  replaceResponse(c, Response.json({ ...rest, result_url: url, expires_in: RESULT_URL_SECONDS }));
}

/** Base64 in chunks: a string per byte would cost far more memory than the result itself. */
function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

/** Scheme, host and any local prefix the caller used, so the link works where it was asked. */
function publicBase(c: StageContext): string {
  const url = requestUrl(c.req.raw);
  return url.origin + url.pathname.slice(0, url.pathname.length - c.get("target").originPath.length);
}

/** Pulls the result into R2 under `key` (refused above MAX_RESULT_BYTES); returns its content type. A failed pull stores nothing. */
async function storeResult(c: StageContext, key: string, jobId: string, originUrl: unknown): Promise<string> {
  const maxBytes = c.get("settings").MAX_RESULT_BYTES;
  const result = await openResult(c, originUrl, maxBytes);
  await putResult(c.env.RESULTS, key, result, maxBytes, { job_id: jobId });
  return result.contentType;
}

/** Admission refused (404) a job this account did not submit, has purged or has retired, before this runs. */
export async function settlePurge(c: StageContext) {
  // The origin may already have let it go (404); anything else from it is passed on, so the caller retries.
  if (!(c.res.ok || c.res.status === 404)) return;
  await purgedByOwner(c.env, c.get("identity"), c.get("params").id ?? "");
  replaceResponse(c, new Response(null, { status: 204 }));
}
