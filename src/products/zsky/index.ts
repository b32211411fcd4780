import { z } from "@hono/zod-openapi";
import { ok } from "../../openapi/operation-doc";
import { defineProduct } from "../define";
import type { Product, RouteDef } from "../types";
import { releaseFinishedJobs } from "./job-recheck";
import { settlePoll, settlePurge, settleSubmission } from "./jobs";
import { ZskyError, ZskyJob, ZskyJobAccepted, ZskyRotated, ZskyUsage } from "./openapi";
import { checkLink, downloadResult } from "./results/download";
import { rotateZskyKey } from "./rotate";
import { zskySettings } from "./settings";
import { zskyUsage } from "./usage";

/** ZSky (`zsky-api.txt`, docs/contracts.md): `X-API-Key` keys, `{"error"}` errors. */

// Generate parameters exactly as the reference gives them; unknown fields are refused.
const prompt = z.string().min(1).max(2000).openapi({ description: "The prompt (1 to 2000 characters)" });
const dimension = (max: number, fallback: number) => z.int().min(256).max(max).optional().openapi({ default: fallback });
export const ImageRequest = z
  .object({
    prompt,
    width: dimension(2048, 1024),
    height: dimension(2048, 1024),
    seed: z.int().optional().openapi({ description: "For reproducible outputs" }),
    negative: z.string().max(2000).optional().openapi({ description: "Negative prompt" }),
  })
  .strict()
  .openapi("ZskyImageRequest");
export const VideoRequest = z
  .object({
    prompt,
    width: dimension(2560, 1280),
    height: dimension(2560, 720),
    length: z.int().min(25).max(241).optional().openapi({ default: 121, description: "Frames; ~5 seconds at the default" }),
    seed: z.int().optional(),
  })
  .strict()
  .openapi("ZskyVideoRequest");

const routes: RouteDef[] = [
  {
    name: "images.generate",
    method: "POST",
    path: "/v1/images/generate",
    auth: "required",
    json: true,
    body: ImageRequest,
    generates: "image",
    settle: settleSubmission,
    doc: ok("Create an image (text-to-image).", ZskyJobAccepted, ImageRequest),
  },
  {
    name: "videos.generate",
    method: "POST",
    path: "/v1/videos/generate",
    auth: "required",
    json: true,
    body: VideoRequest,
    generates: "video",
    settle: settleSubmission,
    doc: ok("Create a video (text-to-video).", ZskyJobAccepted, VideoRequest),
  },
  {
    name: "jobs.get",
    method: "GET",
    path: "/v1/jobs/{id}",
    auth: "required",
    jobParam: "id",
    settle: settlePoll,
    doc: ok("Poll job status; a completed job carries a signed result URL valid 24 hours.", ZskyJob),
  },
  {
    name: "jobs.purge",
    method: "DELETE",
    path: "/v1/jobs/{id}",
    auth: "required",
    jobParam: "id",
    settle: settlePurge,
    doc: { summary: "Purge the result from storage.", success: { status: 204 } },
  },
  {
    name: "usage.get",
    method: "GET",
    path: "/v1/usage",
    auth: "required",
    readsAllowance: true,
    serve: zskyUsage,
    doc: ok("Current-month allowance counters.", ZskyUsage),
  },
  {
    name: "keys.rotate",
    method: "POST",
    path: "/v1/keys/rotate",
    auth: "required",
    serve: rotateZskyKey,
    doc: ok("Issue a new key (shown once) and invalidate the current one.", ZskyRotated),
  },
  // zgate's own: where a completed job's signed `result_url` points (see results/).
  {
    name: "results.download",
    method: "GET",
    path: "/v1/results/{job_id}",
    auth: "signed-url",
    serve: downloadResult,
    alongsideAdmission: (c) => void checkLink(c),
    doc: {
      summary: "Download a result through its signed URL (supports Range and If-None-Match).",
      success: { status: 200, binary: "image/png or video/mp4" },
    },
  },
];

// zsky-api.txt "Rate Limits & Allowances" and "Safety". The burst counts submissions and
// account calls. Polls of one's own jobs have their own, generous window: the reference's
// own client polls every 2 s, and a video takes about a minute. Result downloads carry no
// key: they are bounded per client address instead, generously (a page of results, retried ranges).
const polls = ["jobs.get"];
const keyed = routes.filter((r) => r.auth === "required").map((r) => r.name);
const limits: Product["limits"] = {
  windows: [
    { name: "burst", subject: "key", limit: 20, windowSeconds: 60, routes: keyed.filter((name) => !polls.includes(name)) },
    // Three running jobs polled every second, with room to spare.
    { name: "poll", subject: "key", limit: 300, windowSeconds: 60, routes: polls },
    { name: "download_ip", subject: "ip", limit: 600, windowSeconds: 60, routes: ["results.download"] },
  ],
  generation: {
    concurrentJobsPerKey: 3,
    dailyPerKey: { image: 200, video: 50 },
    monthlyPerAccount: { image: 1000, video: 300 },
    overagePriceCents: { image: 5, video: 50 },
    suspension: { windowMinutes: 30, minAttempts: 10, rejectedShare: 0.5, hours: 24 },
    // "Videos take ~60 seconds to render"; the reference gives no image time: zgate's estimate.
    typicalJobSeconds: { image: 10, video: 60 },
    concurrencyRetryAfterSeconds: 5,
  },
};

export const zsky = defineProduct({
  id: "zsky",
  name: "ZSky",
  describes: "image and video jobs",
  pathPrefix: "/zsky",
  defaultHosts: ["zsky.ai"],
  keyPrefixes: { live: "zsky_live_" },
  credential: "x-api-key",
  acceptsJwt: false,
  resultLinks: true,
  invalidInput: "BAD_REQUEST",
  // ZSky's error table has no 415: a body that is not JSON is a "malformed request body".
  wrongMediaType: "BAD_REQUEST",
  unauthorized: { missing: "Missing API key", invalid: "Invalid API key" },
  envelope: (_code, message) => ({ error: message }),
  errorSchema: ZskyError,
  referenceStatuses: [400, 401, 403, 404, 429, 451, 500, 503],
  securitySchemes: { ZskyApiKey: { type: "apiKey", in: "header", name: "X-API-Key", description: "`zsky_live_…`" } },
  routes,
  limits,
  settings: zskySettings,
  hooks: {
    onConcurrencyRefusal: releaseFinishedJobs,
  },
});
