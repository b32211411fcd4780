import { z } from "@hono/zod-openapi";
import type { Product, RouteDef } from "../types";

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
  { name: "images.generate", method: "POST", path: "/v1/images/generate", auth: "required", json: true, body: ImageRequest },
  { name: "videos.generate", method: "POST", path: "/v1/videos/generate", auth: "required", json: true, body: VideoRequest },
  { name: "jobs.get", method: "GET", path: "/v1/jobs/{id}", auth: "required", jobParam: "id" },
  { name: "jobs.purge", method: "DELETE", path: "/v1/jobs/{id}", auth: "required", jobParam: "id" },
  { name: "usage.get", method: "GET", path: "/v1/usage", auth: "required", gateway: true, readsAllowance: true },
  { name: "keys.rotate", method: "POST", path: "/v1/keys/rotate", auth: "required", gateway: true },
  // zgate's own: where a completed job's signed `result_url` points (see src/results/).
  { name: "results.download", method: "GET", path: "/v1/results/{job_id}", auth: "signed-url", gateway: true },
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
    routes: { "images.generate": "image", "videos.generate": "video" },
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

export const zsky: Product = {
  id: "zsky",
  pathPrefix: "/zsky",
  hostsSetting: "ZSKY_HOSTS",
  originSetting: "ORIGIN_ZSKY",
  keyPrefixes: { live: "zsky_live_" },
  credential: "x-api-key",
  acceptsJwt: false,
  invalidInput: "BAD_REQUEST",
  // ZSky's error table has no 415: a body that is not JSON is a "malformed request body".
  wrongMediaType: "BAD_REQUEST",
  unauthorized: { missing: "Missing API key", invalid: "Invalid API key" },
  envelope: (_code, message) => ({ error: message }),
  routes,
  limits,
};
