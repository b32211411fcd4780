// What `npm run bench:cost` measures: zgate's settings for it, the credentials each case
// needs (made through zgate's admin API, as an operator would) and the requests of each
// case. A case's `request(i)` is its i-th request, relative to zgate's base URL.
import { createKey, createKeys, limitOverrides, mintAccessToken, submitJob, zgateSettings } from "./cases.mjs";

// Client addresses (CF-Connecting-IP, which zgate counts per-address windows under), from
// the documentation ranges; new addresses come from 10.0.0.0/8, one per request.
const REPEAT_ADDRESS = "198.51.100.7";
const UNKNOWN_KEY_ADDRESS = "198.51.100.9";
const JOB_CLIENT_ADDRESS = "198.51.100.11";

/** @typedef {import("./cases.mjs").BenchSettings} BenchSettings */
/** @typedef {{ path: string, method?: string, headers?: Record<string, string>, body?: string }} CaseRequest */
/**
 * A case: its i-th request, relative to zgate's base URL, and the status every answer should have (default 200).
 * @typedef {{ id: string, title: string, expect?: number, request: (i: number) => CaseRequest }} CostCase
 */
/** @typedef {Awaited<ReturnType<typeof steadyCredentials>>} SteadyCredentials */
/** @typedef {(typeof JOB_CASES)[number]} JobCase */
/** @typedef {typeof DEFAULT_KEY_CASE} DefaultKeyCase */

/**
 * The load bench's settings (every window raised far above the load, windows shortened
 * to `windowSeconds`), with ZappWay's failed-authentication window raised too: the
 * unknown-key case then measures a failure the guard counts, which is what each one
 * costs below an address's limit (past it the isolate refuses with no storage at all).
 * Key usage is flushed every `usageFlushMs` (USAGE_FLUSH_MS, default 10 s; a key's 64th
 * call is written at once), so what a stretch gathered is written within the bench.
 * @param {string} originUrl
 * @param {number} windowSeconds
 * @param {number} usageFlushMs
 */
export function costSettings(originUrl, windowSeconds, usageFlushMs) {
  const overrides = limitOverrides(windowSeconds);
  const { plan_rate } = overrides.zappway.windows;
  const zappway = { windows: { plan_rate, auth_failures: plan_rate } };
  return {
    ...zgateSettings(originUrl, windowSeconds),
    LIMIT_OVERRIDES: JSON.stringify({ ...overrides, zappway }),
    USAGE_FLUSH_MS: String(usageFlushMs),
  };
}

/**
 * One of the counted Worker's bench routes (bench/cost-worker.mjs).
 * @param {string} base
 * @param {string} route
 */
export async function benchPost(base, route) {
  const response = await fetch(`${base}/__bench/${route}`, { method: "POST" });
  if (!response.ok) throw new Error(`${route}: ${response.status} ${await response.text()}`);
  return response.json();
}

/** @type {(secret: string) => Record<string, string>} */
const bearer = (secret) => ({ Authorization: `Bearer ${secret}` });
const REFRESH = { method: "POST", path: "/zakgt/api/v1/auth/refresh", body: JSON.stringify({ refresh_token: "bench-refresh-token" }) };

/**
 * The credentials of the steady cases, made once per zgate storage. What their
 * registration left for later is run first (the counted Worker's drain, cost.mjs); the
 * polled job's retirement, 7 days on, is never run (the Worker forgets it was set).
 * @param {string} base
 * @param {BenchSettings} settings
 */
export async function steadyCredentials(base, settings) {
  const zsky = await createKey(base, settings, { product: "zsky", account: "cost_zsky" });
  // One call an hour, spent here: every later call is refused.
  const tiny = await createKey(base, settings, {
    product: "zappway",
    account: "cost_zappway_tiny",
    limit_override: { windows: { plan_rate: { limit: 1, window_seconds: 3600 } } },
  });
  await fetch(`${base}/zappway/api/v1/agents`, { headers: bearer(tiny) }).then((r) => r.arrayBuffer());
  const unknown = await fetch(`${base}/__bench/unknown-key?product=zappway`).then((r) => r.json());
  const zappway = await createKey(base, settings, { product: "zappway", account: "cost_zappway" });
  const zakgt = await createKey(base, settings, { product: "zakgt", account: "cost_zakgt_user" });
  await benchPost(base, "drain");
  // Stays `processing`: polled for ever.
  const jobId = await submitJob(base, zsky);
  // Its settlement comes after the answer: a poll waits for it at the guard.
  const poll = await fetch(`${base}/zsky/v1/jobs/${jobId}`, { headers: { "X-API-Key": zsky } });
  if (poll.status !== 200) throw new Error(`the polled job: ${poll.status} ${await poll.text()}`);
  await benchPost(base, "forget");
  return { zappway, zakgt, zsky, jobId, tiny, token: await mintAccessToken(settings, "cost_jwt_user"), unknown: unknown.key };
}

/**
 * One credential (or one client address) calling at a steady rate: measured after a
 * warm-up, so guard leases, window cleanup and usage batches are in their steady state.
 * @param {SteadyCredentials} c
 * @returns {CostCase[]}
 */
export function steadyCases(c) {
  return [
    {
      id: "zappway_key_hot",
      title: "ZappWay GET agents, API key, hot",
      request: () => ({ path: "/zappway/api/v1/agents", headers: bearer(c.zappway) }),
    },
    {
      id: "zakgt_key_hot",
      title: "ZakGT GET users/me, API key, hot",
      request: () => ({ path: "/zakgt/api/v1/users/me", headers: bearer(c.zakgt) }),
    },
    {
      id: "zsky_poll_hot",
      title: "ZSky poll GET jobs/{id}, API key, hot",
      request: () => ({ path: `/zsky/v1/jobs/${c.jobId}`, headers: { "X-API-Key": c.zsky } }),
    },
    {
      id: "zakgt_jwt_hot",
      title: "ZakGT GET users/me, JWT, hot",
      request: () => ({ path: "/zakgt/api/v1/users/me", headers: bearer(c.token) }),
    },
    {
      id: "public_repeat",
      title: "public route (POST auth/refresh), same address",
      request: () => ({ ...REFRESH, headers: { "Content-Type": "application/json", "CF-Connecting-IP": REPEAT_ADDRESS } }),
    },
    {
      id: "refused_429",
      title: "over limit -> 429 (ZappWay agents)",
      expect: 429,
      request: () => ({ path: "/zappway/api/v1/agents", headers: bearer(c.tiny) }),
    },
    {
      id: "unknown_key",
      title: "unknown well-formed key -> 401, after first sighting",
      expect: 401,
      request: () => ({ path: "/zappway/api/v1/agents", headers: { ...bearer(c.unknown), "CF-Connecting-IP": UNKNOWN_KEY_ADDRESS } }),
    },
  ];
}

/**
 * Keys for the cold cases: one per request, each in its own account, made before zgate restarts.
 * @param {string} base
 * @param {BenchSettings} settings
 * @param {number} run
 * @param {number} count
 */
export async function coldKeys(base, settings, run, count) {
  const bodies = (/** @type {string} */ product) =>
    Array.from({ length: count }, (_, i) => ({ product, account: `cost_cold_${product}_${run}_${i}` }));
  return { zappway: await createKeys(base, settings, bodies("zappway")), zakgt: await createKeys(base, settings, bodies("zakgt")) };
}

/**
 * Each request with a key no isolate has seen, whose account's guard object is not
 * running (zgate restarted after the keys were made): a KV read, a guard start.
 * @param {Awaited<ReturnType<typeof coldKeys>>} keys
 * @returns {CostCase[]}
 */
export function coldCases(keys) {
  return [
    {
      id: "zappway_key_cold",
      title: "ZappWay GET agents, API key, cold",
      request: (i) => ({ path: "/zappway/api/v1/agents", headers: bearer(keyAt(keys.zappway, i)) }),
    },
    {
      id: "zakgt_key_cold",
      title: "ZakGT GET users/me, API key, cold",
      request: (i) => ({ path: "/zakgt/api/v1/users/me", headers: bearer(keyAt(keys.zakgt, i)) }),
    },
  ];
}

/**
 * The i-th key of a cold case: it has exactly one per request.
 * @param {string[]} keys
 * @param {number} i
 */
function keyAt(keys, i) {
  const key = keys[i];
  if (key === undefined) throw new Error(`cold case: no key for request ${i} (${keys.length} made)`);
  return key;
}

/**
 * Each request from an address never seen before (a distinct one per run and request).
 * @param {number} run
 * @returns {CostCase}
 */
export function newAddressCase(run) {
  return {
    id: "public_new_address",
    title: "public route (POST auth/refresh), new address",
    request: (i) => ({
      ...REFRESH,
      headers: { "Content-Type": "application/json", "CF-Connecting-IP": `10.${run % 256}.${(i >> 8) & 255}.${i & 255}` },
    }),
  };
}

/**
 * The job cycle's two kinds of key, each with windows of the plan's own length (60 s;
 * the deployment's 1 s windows of the steady cases are overridden on the key): one at the
 * ZSky plan's own limits, one with limits raised far above the load.
 */
export const JOB_CASES = [
  {
    id: "zsky_job",
    title: "ZSky job: generate, 3 polls, download (plan limits)",
    windows: { burst: { limit: 20, window_seconds: 60 }, poll: { limit: 300, window_seconds: 60 } },
  },
  {
    id: "zsky_job_high_limit",
    title: "ZSky job: generate, 3 polls, download (high-limit key)",
    windows: { burst: { limit: 1_000_000, window_seconds: 60 }, poll: { limit: 1_000_000, window_seconds: 60 } },
  },
];

/**
 * The accounts a job case's run uses: fresh per run, so no allowance runs out over runs.
 * @type {(jobCase: JobCase, run: number, count: number) => string[]}
 */
export const jobAccounts = (jobCase, run, count) => Array.from({ length: count }, (_, i) => `cost_${jobCase.id}_${run}_${i}`);

/**
 * One key per account of jobAccounts.
 * @param {string} base
 * @param {BenchSettings} settings
 * @param {JobCase} jobCase
 * @param {number} run
 * @param {number} count
 */
export function jobKeys(base, settings, jobCase, run, count) {
  return createKeys(
    base,
    settings,
    jobAccounts(jobCase, run, count).map((account) => ({ product: "zsky", account, limit_override: { windows: jobCase.windows } })),
  );
}

export const JOB_REQUESTS = 5;

/**
 * One ZSky job as the reference client runs it: generate, three polls (spaced like a
 * client polling on a timer, so no two fall in one guard lease; the third answers
 * `completed`, and zgate pulls the result into R2), then the download from the signed
 * result URL. Throws on any answer but the expected one.
 * @param {string} base
 * @param {string} key
 * @param {number} pollGapMs
 */
export async function runJob(base, key, pollGapMs) {
  const client = { "CF-Connecting-IP": JOB_CLIENT_ADDRESS };
  const jobId = await submitJob(base, key, { prompt: "complete-after:3", headers: client });
  let body = "";
  for (let poll = 1; poll <= 3; poll++) {
    await new Promise((resolve) => setTimeout(resolve, pollGapMs));
    const response = await fetch(`${base}/zsky/v1/jobs/${jobId}`, { headers: { ...client, "X-API-Key": key } });
    body = await response.text();
    if (response.status !== 200) throw new Error(`job cycle: poll ${poll} answered ${response.status}: ${body.slice(0, 300)}`);
  }
  const { status, result_url: resultUrl } = JSON.parse(body);
  if (status !== "completed" || typeof resultUrl !== "string") throw new Error(`job cycle: third poll answered ${body.slice(0, 300)}`);
  const download = await fetch(new URL(resultUrl, base), { headers: client });
  await download.arrayBuffer();
  if (download.status !== 200) throw new Error(`job cycle: download answered ${download.status}`);
}

/**
 * Issue 26's cost baseline: one ZappWay Free key at its real rate (1 req/s) for 300 s, at
 * the products' default limits with their real 60 s windows, sent to two isolates in turn
 * (request i to isolate i mod 2), from its first request until its Durable Object calls stop
 * (bench/cost-default-key.mjs runs it on zgates of its own: the other cases' settings
 * raise every limit and shorten every window). A key at its plan's limit may meet it at
 * 1 req/s (a window of exactly 60 s holds 60 calls): answers are 200 or 429.
 */
export const DEFAULT_KEY_CASE = {
  id: "default_key_1rps",
  title: "ZappWay GET agents, Free key at 1 req/s, two isolates, 60 s windows",
  account: "cost_default_key",
  expect: [200, 429],
  /** @param {string} key */
  request: (key) => ({ path: "/zappway/api/v1/agents", headers: bearer(key) }),
  /** How far away its isolates' account guard is (ms of round trip; bench/guard-distance.mjs). */
  guardDelayMs: 0,
};

/**
 * The same key with its account's guard a region away (every guard call waits
 * BENCH_COST_FAR_MS, 150 by default): what keeping its leases alive between requests
 * costs, renewals and hand-backs included (issue 26's cost target holds here too).
 * @param {number} guardDelayMs
 */
export const defaultKeyFarCase = (guardDelayMs) => ({
  ...DEFAULT_KEY_CASE,
  id: "default_key_1rps_far",
  title: `ZappWay GET agents, Free key at 1 req/s, two isolates, 60 s windows, guard ${guardDelayMs} ms away`,
  guardDelayMs,
});

/**
 * zgate's settings at the products' default limits and windows (no LIMIT_OVERRIDES), for
 * DEFAULT_KEY_CASE and `npm run bench:distance`; key usage flushed every `usageFlushMs`
 * (unset: zgate's default).
 * @param {string} originUrl
 * @param {number} [usageFlushMs]
 */
export function defaultLimitSettings(originUrl, usageFlushMs) {
  const { LIMIT_OVERRIDES: _, ...settings } = zgateSettings(originUrl, 60);
  return usageFlushMs === undefined ? settings : { ...settings, USAGE_FLUSH_MS: String(usageFlushMs) };
}
