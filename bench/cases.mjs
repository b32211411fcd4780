// What is measured: zgate's settings for the bench, the credentials each case needs
// (created through zgate's own admin API, as an operator would), and the cases.
import { randomBytes, randomUUID } from "node:crypto";
import { SignJWT } from "jose";

const ZAKGT_ISSUER = "https://api.zakgt.net";
const ZAKGT_AUDIENCE = "zakgt-api";
// The largest window limit settings accept (src/limits/bounds.ts): far above any load a bench run sends.
const HUGE = 1_000_000;

/** @typedef {ReturnType<typeof zgateSettings>} BenchSettings */
/**
 * One request-level case: its request, which side A answers it (the origin itself, or
 * zgate), and the status every answer should have (default 200).
 * @typedef {{
 *   id: string,
 *   title: string,
 *   target: "origin" | "zgate",
 *   path: string,
 *   method?: string,
 *   headers?: Record<string, string>,
 *   body?: string,
 *   expect?: number,
 * }} RequestCase
 */
/** @typedef {{ product: string, account: string, limit_override?: object }} KeyBody What POST /admin/v1/keys is sent. */

/**
 * Deployment-wide limits raised so the admitted cases are never refused. The windows
 * are shortened too (BENCH_WINDOW_SECONDS, default 1 s): the guard keeps one row per
 * admission in a window, so with a 60 s window and a limit nobody reaches, the log
 * would grow for the whole bench and later runs would count more rows than earlier
 * ones (drift between pairs). A 1 s window holds about one second of traffic, which
 * is the size of a busy enterprise key's log at its real limit (3000/min).
 * @param {number} windowSeconds
 */
export function limitOverrides(windowSeconds) {
  const raised = { limit: HUGE, windowSeconds };
  return {
    zsky: { windows: { burst: raised, poll: raised } },
    zakgt: { windows: { standard: raised, auth_ip: raised, auth_refresh_ip: raised } },
    zappway: { windows: { plan_rate: raised } },
  };
}

/**
 * Everything src/config/settings.ts needs, as bindings; secrets are fresh per run.
 * @param {string} originUrl
 * @param {number} windowSeconds
 */
export function zgateSettings(originUrl, windowSeconds) {
  return {
    ENVIRONMENT: "development", // HS256 session tokens are only allowed in development
    ORIGIN_ZAKGT: originUrl,
    ORIGIN_ZSKY: originUrl,
    ORIGIN_ZAPPWAY: originUrl,
    ORIGIN_ASSERTION_KEYS: JSON.stringify({ b1: randomBytes(32).toString("base64url") }),
    RESULT_SIGNING_KEYS: JSON.stringify({ b1: randomBytes(32).toString("hex") }),
    RESULT_SIGNING_KEY_ID: "b1",
    ZAKGT_JWT_SECRET: randomBytes(32).toString("hex"),
    ZAKGT_JWKS_URL: "",
    ADMIN_TOKEN: `bench_admin_${randomBytes(16).toString("hex")}`,
    LIMIT_OVERRIDES: JSON.stringify(limitOverrides(windowSeconds)),
  };
}

/**
 * POST /admin/v1/keys; returns the plaintext key.
 * @param {string} zgateUrl
 * @param {Pick<BenchSettings, "ADMIN_TOKEN">} settings
 * @param {KeyBody} body
 * @returns {Promise<string>}
 */
export async function createKey(zgateUrl, settings, body) {
  return (await issueKey(zgateUrl, settings, body)).key;
}

/**
 * POST /admin/v1/keys; returns the key's id and its plaintext.
 * @param {string} zgateUrl
 * @param {Pick<BenchSettings, "ADMIN_TOKEN">} settings
 * @param {KeyBody} body
 * @returns {Promise<{ id: string, key: string }>}
 */
export async function issueKey(zgateUrl, settings, body) {
  const response = await fetch(`${zgateUrl}/admin/v1/keys`, {
    method: "POST",
    headers: { Authorization: `Bearer ${settings.ADMIN_TOKEN}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (response.status !== 201) throw new Error(`creating a ${body.product} key failed: ${response.status} ${await response.text()}`);
  return response.json();
}

/**
 * Many keys, a few at a time (each creation writes D1, KV and the account's guard).
 * @param {string} zgateUrl
 * @param {Pick<BenchSettings, "ADMIN_TOKEN">} settings
 * @param {KeyBody[]} bodies
 */
export async function createKeys(zgateUrl, settings, bodies, parallel = 8) {
  /** @type {string[]} */
  const keys = [];
  for (let i = 0; i < bodies.length; i += parallel) {
    keys.push(...(await Promise.all(bodies.slice(i, i + parallel).map((b) => createKey(zgateUrl, settings, b)))));
  }
  return keys;
}

/**
 * Submits one ZSky image job through zgate with `key` and returns its id: zgate records
 * the job's owner at submit, and a poll is only forwarded for the owner's own job. The
 * bench origin keeps a job `processing` unless `prompt` asks otherwise (origin.mjs).
 * @param {string} zgateUrl
 * @param {string} key
 * @param {{ prompt?: string, headers?: Record<string, string> }} [options]
 * @returns {Promise<string>}
 */
export async function submitJob(zgateUrl, key, { prompt = "bench", headers = {} } = {}) {
  const response = await fetch(`${zgateUrl}/zsky/v1/images/generate`, {
    method: "POST",
    headers: { ...headers, "X-API-Key": key, "Content-Type": "application/json" },
    body: JSON.stringify({ prompt }),
  });
  const body = await response.text();
  if (response.status !== 200) throw new Error(`submitting a ZSky job failed: ${response.status} ${body}`);
  return JSON.parse(body).job_id;
}

/**
 * A ZakGT access token as ZakGT would issue it, signed with the development HS256 secret.
 * @param {Pick<BenchSettings, "ZAKGT_JWT_SECRET">} settings
 * @param {string} userId
 */
export function mintAccessToken(settings, userId) {
  return new SignJWT({})
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(userId)
    .setJti(randomUUID())
    .setIssuedAt()
    .setExpirationTime("2h")
    .setIssuer(ZAKGT_ISSUER)
    .setAudience(ZAKGT_AUDIENCE)
    .sign(new TextEncoder().encode(settings.ZAKGT_JWT_SECRET));
}

/**
 * The request-level cases, each run in pairs against the bare pass-through sent the very
 * same request (method, path, headers, body), so the only difference is the Worker.
 * `target` says who answers side A: the origin itself, or zgate.
 * @param {string} zgateUrl
 * @param {BenchSettings} settings
 * @returns {Promise<RequestCase[]>}
 */
export async function requestCases(zgateUrl, settings) {
  const zskyKey = await createKey(zgateUrl, settings, { product: "zsky", account: "bench_zsky" });
  const jobId = await submitJob(zgateUrl, zskyKey);
  const zappwayKey = await createKey(zgateUrl, settings, { product: "zappway", account: "bench_zappway" });
  // Limit 1 per hour: the first call is admitted, every later one refused with 429.
  const tinyKey = await createKey(zgateUrl, settings, {
    product: "zappway",
    account: "bench_zappway_tiny",
    limit_override: { windows: { plan_rate: { limit: 1, window_seconds: 3600 } } },
  });
  const token = await mintAccessToken(settings, "user_bench");
  const json = { "Content-Type": "application/json" };
  return [
    { id: "origin", title: "origin direct", target: "origin", path: "/v1/jobs/job_bench" },
    {
      id: "public",
      title: "zgate public route (POST zakgt auth/refresh)",
      target: "zgate",
      method: "POST",
      path: "/zakgt/api/v1/auth/refresh",
      headers: json,
      body: JSON.stringify({ refresh_token: "bench-refresh-token" }),
    },
    // The ZSky poll: API key, guard (which also checks the job is the account's), forward,
    // and the poll's answer read for a terminal state.
    {
      id: "zsky_key",
      title: "zgate ZSky + API key (GET jobs/{id})",
      target: "zgate",
      path: `/zsky/v1/jobs/${jobId}`,
      headers: { "X-API-Key": zskyKey },
    },
    // The plain keyed forward: API key and guard, nothing product-specific.
    {
      id: "zappway_key",
      title: "zgate ZappWay + API key (GET agents)",
      target: "zgate",
      path: "/zappway/api/v1/agents",
      headers: { Authorization: `Bearer ${zappwayKey}` },
    },
    {
      id: "zakgt_jwt",
      title: "zgate ZakGT + JWT (GET users/me)",
      target: "zgate",
      path: "/zakgt/api/v1/users/me",
      headers: { Authorization: `Bearer ${token}` },
    },
    {
      id: "refused_429",
      title: "zgate over limit -> 429 (ZappWay agents)",
      target: "zgate",
      path: "/zappway/api/v1/agents",
      headers: { Authorization: `Bearer ${tinyKey}` },
      expect: 429,
    },
  ];
}

/**
 * Keys for the hot-account comparison through zgate (ZappWay, the plain keyed forward):
 * `n` keys of one account (one guard object takes every call) versus one key in each
 * of `n` accounts (n objects).
 * @param {string} zgateUrl
 * @param {BenchSettings} settings
 * @param {number} n
 */
export async function hotAndSpreadKeys(zgateUrl, settings, n) {
  const key = (/** @type {string} */ account) => ({ product: "zappway", account });
  const hot = await createKeys(
    zgateUrl,
    settings,
    Array.from({ length: n }, () => key("bench_hot")),
  );
  const spread = await createKeys(
    zgateUrl,
    settings,
    Array.from({ length: n }, (_, i) => key(`bench_spread_${i}`)),
  );
  return { hot, spread };
}
