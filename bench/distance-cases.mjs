// @ts-check
// What `npm run bench:distance` measures: the traffic of issue 26's table, each kind at
// its real rate and at the products' default limits, and what it needs (keys made through
// zgate's admin API, as an operator would; session tokens as ZakGT would sign them).
//
// A *group* is one guard distance D in one run: two zgate isolates whose guard calls each
// wait D ms, and subjects (accounts, users, client addresses) of its own, so no two groups
// or runs share a window, a lease or a guard object.
import { createKey, createKeys, mintAccessToken, submitJob } from "./cases.mjs";

/**
 * @typedef {{
 *   run: number,
 *   delayMs: number,
 *   urls: string[],
 *   entry: string,
 *   settings: { ADMIN_TOKEN: string, ZAKGT_JWT_SECRET: string },
 * }} Group
 * One distance D in one run: its isolates' direct URLs (request i goes to urls[i % 2]),
 * the entry URL (credentials are made there), zgate's settings.
 */
/** @typedef {{ method?: string, path: string, headers?: Record<string, string>, body?: string }} BenchRequest */
/**
 * One kind of traffic sent at a steady rate: `request(i)` is its i-th request.
 * @typedef {{ id: string, title: string, intervalMs: number, count: number, request: (i: number) => BenchRequest }} SteadyCase
 */

const JSON_TYPE = { "Content-Type": "application/json" };
/** @param {string} secret */
const bearer = (secret) => ({ Authorization: `Bearer ${secret}` });
/** @param {string} key */
const zskyKey = (key) => ({ "X-API-Key": key });

/** ZSky's reference client polls a job every 2 s. */
export const ZSKY_POLL_GAP_MS = 2_000;
/** Far above any rate here: the hot key and the keys revoked or rotated under load never meet their windows. */
const HIGH_LIMIT = { plan_rate: { limit: 1_000_000, window_seconds: 60 } };
/** The exactness case: 10 admissions per 10 s, sent 5 a second. */
export const EXACT_LIMIT = { limit: 10, windowSeconds: 10 };

/**
 * A client address of the group's own (CF-Connecting-IP), from 10.0.0.0/8: one per use.
 * @param {Group} g
 * @param {number} n
 */
export const addressOf = (g, n) => `10.${g.run % 256}.${g.delayMs % 256}.${n}`;

/**
 * An account, user or label of the group's own.
 * @param {Group} g
 * @param {string} what
 */
const named = (g, what) => `dist_r${g.run}_d${g.delayMs}_${what}`;

/**
 * POST /admin/v1/keys through the group's first isolate (its guard calls wait D, as an
 * operator's would), returning the key's id as well.
 * @param {Group} g
 * @param {object} body
 * @returns {Promise<{ id: string, key: string }>}
 */
async function issueKey(g, body) {
  const response = await fetch(`${g.urls[0]}/admin/v1/keys`, {
    method: "POST",
    headers: { ...bearer(g.settings.ADMIN_TOKEN), ...JSON_TYPE, "CF-Connecting-IP": addressOf(g, 200) },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  if (response.status !== 201) throw new Error(`creating a key failed: ${response.status} ${text}`);
  return JSON.parse(text);
}

/**
 * The steady cases of one group: each a subject of its own sent at its real rate, with
 * the products' default limits (issue 26's table), and the hot key.
 * @param {Group} g
 * @param {{ requests: number, hotRequests: number, speed: number }} size
 * @returns {Promise<SteadyCase[]>}
 */
export async function steadyCases(g, { requests, hotRequests, speed }) {
  /** @type {(what: string, product?: string, windows?: object) => Promise<string>} */
  const key = (what, product = "zappway", windows) =>
    createKey(g.entry, g.settings, { product, account: named(g, what), ...(windows ? { limit_override: { windows } } : {}) });
  const [free1, free05, chat, poller, hot] = await Promise.all([
    key("free_1rps"),
    key("free_05rps"),
    key("usr_chat", "zakgt"),
    key("poll", "zsky"),
    key("hot", "zappway", HIGH_LIMIT),
  ]);
  // One key per request, each in an account of its own: no isolate has seen it.
  const cold = await createKeys(
    g.entry,
    g.settings,
    Array.from({ length: requests }, (_, i) => ({ product: "zappway", account: named(g, `cold_${i}`) })),
  );
  const jobId = await submitJob(g.entry, poller);
  const token = await mintAccessToken(g.settings, named(g, "usr_jwt"));
  const every = (/** @type {number} */ ms) => ms / speed;
  return [
    {
      id: "zappway_free_1rps",
      title: "ZappWay Free key, GET agents, 1 req/s",
      intervalMs: every(1000),
      count: requests,
      request: () => ({ path: "/zappway/api/v1/agents", headers: bearer(free1) }),
    },
    {
      id: "zappway_free_05rps",
      title: "ZappWay Free key, GET agents, 0.5 req/s",
      intervalMs: every(2000),
      count: requests,
      request: () => ({ path: "/zappway/api/v1/agents", headers: bearer(free05) }),
    },
    {
      id: "zakgt_key_chat",
      title: "ZakGT zak_live_ key, POST ai/chat, 0.5 req/s",
      intervalMs: every(2000),
      count: requests,
      request: () => ({
        method: "POST",
        path: "/zakgt/api/v1/ai/chat",
        headers: { ...bearer(chat), ...JSON_TYPE },
        body: JSON.stringify({ message: "hello" }),
      }),
    },
    {
      id: "zakgt_jwt_1rps",
      title: "ZakGT JWT session, GET users/me, 1 req/s",
      intervalMs: every(1000),
      count: requests,
      request: () => ({ path: "/zakgt/api/v1/users/me", headers: bearer(token) }),
    },
    {
      id: "public_refresh_1rps",
      title: "public route (POST auth/refresh), one address, 1 req/s",
      intervalMs: every(1000),
      count: requests,
      request: () => ({
        method: "POST",
        path: "/zakgt/api/v1/auth/refresh",
        headers: { ...JSON_TYPE, "CF-Connecting-IP": addressOf(g, 1) },
        body: JSON.stringify({ refresh_token: "bench-refresh-token" }),
      }),
    },
    {
      id: "zsky_poll_2s",
      title: "ZSky poll GET jobs/{id}, every 2 s (the reference client)",
      intervalMs: every(ZSKY_POLL_GAP_MS),
      count: requests,
      request: () => ({ path: `/zsky/v1/jobs/${jobId}`, headers: zskyKey(poller) }),
    },
    {
      id: "cold_key",
      title: "first request of a cold key (ZappWay, GET agents), 1 a second",
      intervalMs: every(1000),
      count: requests,
      request: (i) => ({ path: "/zappway/api/v1/agents", headers: bearer(`${cold[i]}`) }),
    },
    {
      id: "hot_key",
      title: "high-limit key (ZappWay, GET agents), 50 req/s",
      intervalMs: every(20),
      count: hotRequests,
      request: () => ({ path: "/zappway/api/v1/agents", headers: bearer(hot) }),
    },
  ];
}

/**
 * The exactness case: a key allowed EXACT_LIMIT (10 per 10 s), sent 5 a second.
 * @param {Group} g
 * @param {{ requests: number, speed: number }} size
 * @returns {Promise<SteadyCase>}
 */
export async function exactnessCase(g, { requests, speed }) {
  const windows = { plan_rate: { limit: EXACT_LIMIT.limit, window_seconds: EXACT_LIMIT.windowSeconds } };
  const key = await createKey(g.entry, g.settings, { product: "zappway", account: named(g, "exact"), limit_override: { windows } });
  return {
    id: "exactness",
    title: `exactness: a key at ${EXACT_LIMIT.limit} per ${EXACT_LIMIT.windowSeconds} s, sent 5 req/s`,
    intervalMs: 200 / speed,
    count: requests,
    request: () => ({ path: "/zappway/api/v1/agents", headers: bearer(key) }),
  };
}

/** The three steps of a ZSky job on the critical path, each a case of its own. */
export const JOB_STEPS = {
  generate: { id: "zsky_generate", title: "ZSky generate (POST images/generate)" },
  poll: { id: "zsky_poll_completes", title: "ZSky poll that completes (GET jobs/{id}, result stored)" },
  download: { id: "zsky_download", title: "ZSky result download (GET its signed result_url)" },
};

/**
 * Keys that run ZSky jobs as the reference client does (generate, a poll 2 s later that
 * finds the job completed, the download of its result), one account each.
 * @param {Group} g
 * @param {number} count
 */
export function jobKeys(g, count) {
  return createKeys(
    g.entry,
    g.settings,
    Array.from({ length: count }, (_, i) => ({ product: "zsky", account: named(g, `job_${i}`) })),
  );
}

/**
 * The requests of a job's steps: a generate the bench origin completes at the first poll
 * (bench/origin.mjs), that poll, the download of the result its answer links.
 */
export const jobRequests = {
  /** @param {string} key @returns {BenchRequest} */
  generate: (key) => ({
    method: "POST",
    path: "/zsky/v1/images/generate",
    headers: { ...zskyKey(key), ...JSON_TYPE },
    body: JSON.stringify({ prompt: "complete-after:1" }),
  }),
  /** @param {string} key @param {string} jobId @returns {BenchRequest} */
  poll: (key, jobId) => ({ path: `/zsky/v1/jobs/${jobId}`, headers: zskyKey(key) }),
  /** @param {string} resultUrl @returns {BenchRequest} */
  download: (resultUrl) => {
    const link = new URL(resultUrl, "http://result.invalid");
    return { path: `${link.pathname}${link.search}` };
  },
};

/**
 * A change that must stop a credential while it is under load, and that load: `load(i)`
 * is the i-th request of the credential, `change()` the call that stops it (timed by the
 * harness), after which every request of the load must be refused.
 * @typedef {{ id: string, title: string, load: (i: number) => BenchRequest, change: () => BenchRequest }} ChangeCase
 */

/**
 * Revoke (admin), the caller-facing ZSky rotate and ZakGT logout, each of a credential
 * under load; the change goes through the group's first isolate.
 * @param {Group} g
 * @returns {Promise<ChangeCase[]>}
 */
export async function changeCases(g) {
  const revoked = await issueKey(g, { product: "zappway", account: named(g, "revoked"), limit_override: { windows: HIGH_LIMIT } });
  const rotated = await createKey(g.entry, g.settings, { product: "zsky", account: named(g, "rotated") });
  const rotatedJob = await submitJob(g.entry, rotated);
  const token = await mintAccessToken(g.settings, named(g, "usr_logout"));
  return [
    {
      id: "revoke",
      title: "admin revoke (POST /admin/v1/keys/{id}/revoke) of a ZappWay key at 50 req/s",
      load: () => ({ path: "/zappway/api/v1/agents", headers: bearer(revoked.key) }),
      change: () => ({
        method: "POST",
        path: `/admin/v1/keys/${revoked.id}/revoke`,
        headers: { ...bearer(g.settings.ADMIN_TOKEN), "CF-Connecting-IP": addressOf(g, 200) },
      }),
    },
    {
      id: "rotate",
      title: "ZSky POST /v1/keys/rotate of a key polling at 50 req/s",
      load: () => ({ path: `/zsky/v1/jobs/${rotatedJob}`, headers: zskyKey(rotated) }),
      change: () => ({ method: "POST", path: "/zsky/v1/keys/rotate", headers: zskyKey(rotated) }),
    },
    {
      id: "logout",
      title: "ZakGT POST auth/logout of a session at 50 req/s",
      load: () => ({ path: "/zakgt/api/v1/users/me", headers: bearer(token) }),
      change: () => ({ method: "POST", path: "/zakgt/api/v1/auth/logout", headers: { ...bearer(token), ...JSON_TYPE }, body: "{}" }),
    },
  ];
}
