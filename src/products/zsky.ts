import type { Product, RouteDef } from "./types";

/** ZSky (`../shared/upstream-apis/zsky-api.txt`): `X-API-Key` keys, `{"error"}` errors. */
const routes: RouteDef[] = [
  { name: "images.generate", method: "POST", path: "/v1/images/generate", auth: "required", json: true },
  { name: "videos.generate", method: "POST", path: "/v1/videos/generate", auth: "required", json: true },
  { name: "jobs.get", method: "GET", path: "/v1/jobs/{id}", auth: "required" },
  { name: "jobs.purge", method: "DELETE", path: "/v1/jobs/{id}", auth: "required" },
  { name: "usage.get", method: "GET", path: "/v1/usage", auth: "required", gateway: true, readsAllowance: true },
  { name: "keys.rotate", method: "POST", path: "/v1/keys/rotate", auth: "required", gateway: true },
];

// zsky-api.txt "Rate Limits & Allowances" and "Safety".
const limits: Product["limits"] = {
  windows: [{ name: "burst", subject: "key", limit: 20, windowSeconds: 60 }],
  generation: {
    routes: { "images.generate": "image", "videos.generate": "video" },
    concurrentJobsPerKey: 3,
    dailyPerKey: { image: 200, video: 50 },
    monthlyPerAccount: { image: 1000, video: 300 },
    overagePriceCents: { image: 5, video: 50 },
    suspension: { windowMinutes: 30, minAttempts: 10, rejectedShare: 0.5, hours: 24 },
    concurrencyRetryAfterSeconds: 5,
  },
};

export const zsky: Product = {
  id: "zsky",
  pathPrefix: "/zsky",
  hostsSetting: "ZSKY_HOSTS",
  originSetting: "ORIGIN_ZSKY",
  credential: "x-api-key",
  acceptsJwt: false,
  unauthorized: { missing: "Missing API key", invalid: "Invalid API key" },
  envelope: (_code, message) => ({ error: message }),
  routes,
  limits,
};
