// @ts-check
// Bench-only Worker for `npm run bench:distance`: zgate itself, unchanged, handed a guard
// namespace whose every stub call (an RPC method or `fetch`) first waits BENCH_DELAY_MS,
// the round trip to a guard in another region. Bundled by bench/workers.mjs like zgate;
// zgate's code is not changed, only the ACCOUNT_GUARD binding it is handed.
//
// The same script serves both roles of bench/workers.mjs startZgateIsolates(): each zgate
// isolate (its ACCOUNT_GUARD and usage log bindings bound to the host's classes) and the
// host of zgate's Durable Object classes (its objects run in their own isolate). Only the
// guards are far away: the usage logs are appended to off the request's path.
//
// Guard calls are counted per case, as the harness names it in X-Bench-Case on each
// request, and split by whether zgate had answered the request when the call was made:
// `before` (on the way to the answer) or `after` (work kept alive by waitUntil: lease
// refunds, settlements). The request's case follows its calls through every await and
// timer by AsyncLocalStorage (nodejs_compat).
//
// Bench routes, on this wrapper only (zgate never answers them):
//   GET /__bench/calls        this isolate's counts: { <case>: { requests, before, after, byMethod } }
//   GET /__bench/round-trip?calls=N   makes N guard calls one after the other, then answers 204 (the
//                                     client times it: workerd's clock does not move while it waits)
import { AsyncLocalStorage } from "node:async_hooks";
import zgate from "../src/index";
import { delayOf, distantNamespace } from "./guard-distance.mjs";

export { AccountGuard, UsageAddressIndex, UsageLog } from "../src/index";

/** @typedef {import("../src/env").Env} Env */
/** @typedef {Env & { BENCH_DELAY_MS?: string }} BenchEnv */
/**
 * A case's guard calls in this isolate, `before` and `after` the answer, in all and by method.
 * @typedef {{ requests: number, before: number, after: number, byMethod: Record<string, { before: number, after: number }> }} CaseCalls
 */
/** @typedef {{ name: string, answered: boolean }} RequestTag */

/** The request header naming the bench case a request belongs to (zgate ignores it). */
const CASE_HEADER = "x-bench-case";

/** @type {Record<string, CaseCalls>} */
const calls = {};
/** @type {AsyncLocalStorage<RequestTag>} */
const current = new AsyncLocalStorage();

/** @param {string} name */
const caseCalls = (name) => (calls[name] ??= { requests: 0, before: 0, after: 0, byMethod: {} });

/**
 * Counts one guard call under the request that made it (`untagged` outside any request).
 * @param {string} method
 */
function countCall(method) {
  const tag = current.getStore();
  const counts = caseCalls(tag?.name ?? "untagged");
  const when = tag?.answered ? "after" : "before";
  counts[when]++;
  (counts.byMethod[method] ??= { before: 0, after: 0 })[when]++;
}

/** The round-trip probe: a guard of the bench's own, asked a question that reads one value and changes nothing. */
const PROBE_GUARD = "bench:round-trip";

/**
 * `calls` guard calls one after the other through the namespace zgate is handed: what a
 * call on zgate's critical path waits, `calls` times.
 * @param {Env} env
 * @param {number} calls
 */
async function probeGuard(env, calls) {
  const guard = env.ACCOUNT_GUARD.get(env.ACCOUNT_GUARD.idFromName(PROBE_GUARD));
  for (let i = 0; i < calls; i++) await guard.resultLinksRefusedSince("probe");
  return new Response(null, { status: 204 });
}

// One wrapped env per real env object: zgate keeps its parsed settings, and with them its
// lease book, per env object (WeakMaps); a fresh wrapper per request would start both afresh.
/** @type {WeakMap<BenchEnv, Env>} */
const wrapped = new WeakMap();
/** @param {BenchEnv} env */
function distantEnv(env) {
  let out = wrapped.get(env);
  if (!out) {
    const { BENCH_DELAY_MS, ...rest } = env;
    out = { ...rest, ACCOUNT_GUARD: distantNamespace(env.ACCOUNT_GUARD, delayOf(BENCH_DELAY_MS), countCall) };
    wrapped.set(env, out);
  }
  return out;
}

export default {
  /**
   * @param {Request} request
   * @param {BenchEnv} env
   * @param {ExecutionContext} ctx
   */
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (url.pathname === "/__bench/calls") return Response.json(calls);
    if (url.pathname === "/__bench/round-trip") return probeGuard(distantEnv(env), Number(url.searchParams.get("calls") ?? 0));
    const tag = { name: request.headers.get(CASE_HEADER) ?? "untagged", answered: false };
    caseCalls(tag.name).requests++;
    return current.run(tag, async () => {
      try {
        return await zgate.fetch(request, distantEnv(env), ctx);
      } finally {
        tag.answered = true;
      }
    });
  },
};
