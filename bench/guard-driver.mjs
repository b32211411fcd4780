// Bench-only Worker that drives zgate's AccountGuard directly: `admit` calls in a loop
// from inside workerd, with no HTTP client, no edge pipeline and no origin, so what is
// measured is how many admissions the guard objects sustain and how long each waits.
//
// POST /setup {accounts: [{account, keys}]}      registers keys on each account's guard
// POST /run   {targets, concurrency, ms, limitOverrides}
//   `concurrency` loops run for `ms`; loop i calls admit for targets[i % targets.length]
//   (an {account, keyId}), exactly as zgate's edge would for GET /zsky/v1/jobs/{id}.
//
// The request is built like src/admit/admit.ts builds it; when that contract changes,
// this file must follow (a run where nothing is admitted fails the bench, saying why).
import { routeScope } from "../src/admit/admit";
import { limitsForRequest } from "../src/limits/policies";
import { zsky } from "../src/products/zsky/index";

/** @typedef {{ GUARD: DurableObjectNamespace<import("../src/guard/account-guard").AccountGuard> }} DriverEnv */
/** @typedef {{ account: string, keyId: string }} Target */
/** @typedef {Awaited<ReturnType<typeof run>>} RunAnswer What POST /run answers (bench/report.mjs). */

/** The route every admission is for, as zgate's edge admits GET /zsky/v1/jobs/{id}. */
const jobsGet = (() => {
  const route = zsky.routes.find((r) => r.name === "jobs.get");
  if (!route) throw new Error("ZSky has no jobs.get route: guard-driver.mjs must follow src/products/zsky");
  return route;
})();

// One object per account, named the way zgate names them (admit/guard-client.ts).
/** @type {(env: DriverEnv, account: string) => DurableObjectStub<import("../src/guard/account-guard").AccountGuard>} */
const guardOf = (env, account) => env.GUARD.get(env.GUARD.idFromName(`zsky:${account}`));
/** @type {(account: string, i: number) => string} */
const keyIdOf = (account, i) => `key_${account}_${i}`;

/**
 * @param {DriverEnv} env
 * @param {{ accounts: { account: string, keys: number }[] }} body
 */
async function setup(env, { accounts }) {
  /** @type {Target[]} */
  const targets = [];
  for (const { account, keys } of accounts) {
    const guard = guardOf(env, account);
    for (let i = 0; i < keys; i++) {
      const keyId = keyIdOf(account, i);
      await guard.registerKey({ keyId, scopes: ["*"], plan: null, ownerUserId: null, expiresAt: null, limitOverride: null });
      targets.push({ account, keyId });
    }
  }
  return { targets };
}

/**
 * @param {DriverEnv} env
 * @param {{
 *   targets: Target[],
 *   concurrency: number,
 *   ms: number,
 *   limitOverrides: import("../src/config/settings").Settings["LIMIT_OVERRIDES"],
 * }} body
 */
async function run(env, { targets, concurrency, ms, limitOverrides }) {
  const limits = limitsForRequest(zsky, jobsGet, "key", { LIMIT_OVERRIDES: limitOverrides });
  /** @type {number[]} */
  const latencies = [];
  let admitted = 0;
  let refused = 0;
  let failed = 0;
  // The first refusal and the first error, so a run that admits nothing can say why.
  /** @type {import("../src/limits/guard-protocol").AdmitDecision | undefined} */
  let firstRefusal;
  /** @type {string | undefined} */
  let firstError;
  const started = Date.now();
  const deadline = started + ms;

  /** @param {number} i */
  async function loop(i) {
    const { account, keyId } = /** @type {Target} */ (targets[i % targets.length]);
    while (Date.now() < deadline) {
      const t0 = performance.now();
      try {
        // A fresh stub per call, as zgate's edge does per request.
        const decision = await guardOf(env, account).admit({
          product: "zsky",
          route: { scope: routeScope(jobsGet), sessionOnly: false },
          credential: { via: "key", product: "zsky", keyId },
          accountId: account,
          ip: "127.0.0.1",
          limits,
          windowsElsewhere: false,
          wantUsage: false,
        });
        if (decision.allow) admitted++;
        else {
          refused++;
          firstRefusal ??= decision;
        }
      } catch (err) {
        failed++;
        firstError ??= String(err instanceof Error ? err.message : err);
      }
      // Workers clocks only advance across I/O: 1 ms resolution here, which is enough
      // for the queueing this measures (many callers on one single-threaded object).
      latencies.push(performance.now() - t0);
    }
  }

  await Promise.all(Array.from({ length: concurrency }, (_, i) => loop(i)));
  const elapsedMs = Date.now() - started;
  latencies.sort((a, b) => a - b);
  // No latency without a call: NaN, which JSON carries as null.
  /** @type {(p: number) => number} */
  const pct = (p) =>
    latencies.length ? /** @type {number} */ (latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]) : NaN;
  return {
    admitted,
    refused,
    failed,
    firstRefusal,
    firstError,
    elapsedMs,
    perSecond: (admitted / elapsedMs) * 1000,
    p50: pct(50),
    p99: pct(99),
  };
}

/** @type {ExportedHandler<DriverEnv>} */
export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    if (request.method !== "POST") return new Response("POST /setup or /run", { status: 405 });
    // The bench's own requests (run.mjs guardPhase): their bodies are what each route takes.
    if (pathname === "/setup") return Response.json(await setup(env, await request.json()));
    if (pathname === "/run") return Response.json(await run(env, await request.json()));
    return new Response("not found", { status: 404 });
  },
};
