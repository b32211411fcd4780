// @ts-check
// Bench-only Worker for `npm run bench:scale`: zgate itself, unchanged, in the two roles
// of bench/workers.mjs startZgateIsolates() (each simulated isolate, and the host of the
// Durable Objects they share), inside the wrappers the other benches already use:
// - bench:distance's (bench/distance-worker.mjs): guard stubs that wait BENCH_DELAY_MS,
//   and each request's guard calls counted by its X-Bench-Case, before and after its answer;
// - bench:cost's (bench/cost-worker.mjs): KV, D1 and R2 operations counted, and the Durable
//   Objects' own storage (rows read and written, alarms set and run);
// and, its own, every call each Durable Object receives counted per object and per
// second: RPC methods and `fetch` as its callers make them (isolates, and a usage log
// calling an address index), alarms as the object runs them, and the wall time each
// object had a call under way, as its callers saw it (an upper bound on its active time).
// Each Worker (isolate or host) counts in its own module scope; the harness adds them up.
//
// zgate's clock (src/util/clock.ts, which every limit, lease and wait reads) can run
// BENCH_SLOWDOWN times slower than real time from BENCH_CLOCK_T0, the same in every Worker:
// the harness then sends that many times fewer requests per real second, and zgate sees
// the rate asked for in its own time (a 2-core machine cannot serve the 100 req/s
// per isolate for four isolates in one workerd). Seconds are counted on zgate's clock;
// busy time is real time.
//
// Bench routes, on this wrapper only (zgate never answers them):
//   GET /__bench/scale   { counters (bench:cost's), objects: { "<binding>:<id>": ObjectCounts }, usageCalls }
//   GET /__bench/calls   bench:distance's per-case guard calls (this isolate's)
//   GET /__bench/size?binding=&name=   { bytes }: an object's SQLite size (ask the host, whose classes these are)
import { now as clockNow, useClock } from "../src/util/clock";
import distance from "./distance-worker.mjs";
import {
  AccountGuard as CountedGuard,
  UsageAddressIndex as CountedAddressIndex,
  UsageLog as CountedUsageLog,
  counters,
  countedEnv,
  observedStub,
} from "./cost-worker.mjs";

/** @typedef {import("../src/env").Env} Env */
/** @typedef {import("../src/usage/usage-batches").UsageBatchRow} UsageBatchRow */
/**
 * What one Durable Object received, as this Worker saw it: calls by method (alarms as
 * `alarm`), calls by second (unix seconds), and per second the ms during which at least
 * one of this Worker's calls to it was under way (real ms, booked to the second it began in).
 * @typedef {{
 *   binding: string,
 *   name: string | null,
 *   byMethod: Record<string, number>,
 *   bySecond: Record<string, number>,
 *   busyMsBySecond: Record<string, number>,
 * }} ObjectCounts
 */

/** The Durable Object bindings whose objects are counted. */
const BINDINGS = /** @type {const} */ (["ACCOUNT_GUARD", "USAGE_LOG", "USAGE_ADDRESSES"]);

/** @type {Record<string, Tracked>} */
const objects = {};
/** Calls in the rows usage logs received (host only): what isolates flushed, to set against what they answered. */
const usageCalls = { appends: 0, rows: 0, calls: 0 };

/**
 * @param {string} binding
 * @param {string} id
 * @param {string | null} name
 */
function objectOf(binding, id, name) {
  const entry = (objects[`${binding}:${id}`] ??= {
    binding,
    name,
    byMethod: {},
    bySecond: {},
    busyMsBySecond: {},
    inFlight: 0,
    busySince: 0,
    busySecond: "",
  });
  entry.name ??= name;
  return entry;
}

/** @typedef {ObjectCounts & { inFlight: number, busySince: number, busySecond: string }} Tracked */

/** The second (on zgate's clock, since the epoch) a moment falls in. */
const secondOf = (/** @type {number} */ at) => String(Math.floor(at / 1000));

/** @typedef {{ BENCH_CLOCK_T0?: string, BENCH_SLOWDOWN?: string }} ClockBindings */
let clockSet = false;
/**
 * zgate's clock, BENCH_SLOWDOWN times slower than real time from BENCH_CLOCK_T0 (when
 * above 1): set once per Worker, before any of its requests or objects reads it.
 * @param {ClockBindings} env
 */
function slowClock(env) {
  if (clockSet) return;
  clockSet = true;
  const t0 = Number(env.BENCH_CLOCK_T0);
  const slowdown = Number(env.BENCH_SLOWDOWN ?? 1);
  if (!(slowdown > 1) || !Number.isFinite(t0)) return;
  const sleep = (/** @type {number} */ ms) => new Promise((resolve) => setTimeout(resolve, ms * slowdown));
  useClock({ now: () => t0 + (Date.now() - t0) / slowdown, sleep, after: (ms, work) => sleep(ms).then(work) });
}

/**
 * One call received: by method and by second.
 * @param {ObjectCounts} entry
 * @param {string} method
 */
function note(entry, method) {
  entry.byMethod[method] = (entry.byMethod[method] ?? 0) + 1;
  const s = secondOf(clockNow());
  entry.bySecond[s] = (entry.bySecond[s] ?? 0) + 1;
}

/**
 * A stub whose every call is noted against its object, and timed while under way.
 * @template {object} S
 * @param {S} stub
 * @param {string} binding
 * @param {DurableObjectId} id
 * @returns {S}
 */
function countedObjectStub(stub, binding, id) {
  const entry = objectOf(binding, id.toString(), id.name ?? null);
  return observedStub(stub, (method, result) => {
    note(entry, method);
    if (entry.inFlight++ === 0) {
      entry.busySince = Date.now();
      entry.busySecond = secondOf(clockNow());
    }
    const done = () => {
      if (--entry.inFlight > 0) return;
      entry.busyMsBySecond[entry.busySecond] = (entry.busyMsBySecond[entry.busySecond] ?? 0) + Date.now() - entry.busySince;
    };
    Promise.resolve(result).then(done, done);
  });
}

/**
 * A namespace whose stubs count their calls per object.
 * @template {DurableObjectNamespace<any>} N
 * @param {N} ns
 * @param {string} binding
 * @returns {N}
 */
const countedObjects = (ns, binding) =>
  new Proxy(ns, {
    get(t, prop) {
      const value = /** @type {unknown} */ (Reflect.get(t, prop, t));
      if (typeof value !== "function") return value;
      if (prop === "get")
        return (/** @type {DurableObjectId} */ id, /** @type {unknown[]} */ ...rest) =>
          countedObjectStub(value.call(t, id, ...rest), binding, id);
      if (prop === "getByName")
        return (/** @type {string} */ name, /** @type {unknown[]} */ ...rest) => {
          const id = t.idFromName(name);
          return countedObjectStub(
            value.call(t, name, ...rest),
            binding,
            /** @type {DurableObjectId} */ ({ toString: () => id.toString(), name }),
          );
        };
      return value.bind(t);
    },
  });

// One wrapped env per real env object, as the other wrappers keep theirs (zgate caches per env).
/** @type {WeakMap<Env, Env>} */
const perObjectEnvs = new WeakMap();
/** @type {WeakMap<Env, Env>} */
const scaleEnvs = new WeakMap();

/**
 * The env with each object's calls counted.
 * @param {Env} env
 * @returns {Env}
 */
function perObjectEnv(env) {
  let out = perObjectEnvs.get(env);
  if (!out) {
    out = { ...env };
    for (const binding of BINDINGS) Object.assign(out, { [binding]: countedObjects(env[binding], binding) });
    perObjectEnvs.set(env, out);
  }
  return out;
}

/**
 * zgate's env in an isolate: each object's calls counted (innermost, so a call is timed
 * without bench:distance's delay), and bench:cost's counters around it.
 * @param {Env} env
 * @returns {Env}
 */
function scaleEnv(env) {
  let out = scaleEnvs.get(env);
  if (!out) {
    out = countedEnv(perObjectEnv(env));
    scaleEnvs.set(env, out);
  }
  return out;
}

/** @param {DurableObjectState} ctx @param {string} binding */
const noteAlarm = (ctx, binding) => note(objectOf(binding, ctx.id.toString(), ctx.id.name ?? null), "alarm");

/** zgate's guard on bench:cost's counted storage, its alarms noted. */
export class AccountGuard extends CountedGuard {
  /**
   * @param {DurableObjectState} ctx
   * @param {Env & ClockBindings} env
   */
  constructor(ctx, env) {
    slowClock(env);
    super(ctx, env);
  }

  /** @override */
  async alarm() {
    noteAlarm(this.ctx, "ACCOUNT_GUARD");
    return super.alarm();
  }

  /** The bytes its SQLite database holds (what storage bills), for GET /__bench/size. */
  benchDatabaseSize() {
    return this.ctx.storage.sql.databaseSize;
  }
}

/** zgate's usage log on bench:cost's counted storage; its calls to the address index counted per object, the calls it receives summed. */
export class UsageLog extends CountedUsageLog {
  /**
   * @param {DurableObjectState} ctx
   * @param {Env & ClockBindings} env
   */
  constructor(ctx, env) {
    slowClock(env);
    // bench:cost's class adds its own counters around it.
    super(ctx, perObjectEnv(env));
  }

  /**
   * @override
   * @param {import("../src/usage/usage-log-object").UsageAccount} account
   * @param {UsageBatchRow[]} rows
   * @param {import("../src/usage/usage-client").SeenAddress[]} seen
   */
  async append(account, rows, seen) {
    usageCalls.appends++;
    usageCalls.rows += rows.length;
    for (const row of rows) usageCalls.calls += /** @type {unknown[]} */ (JSON.parse(row.calls)).length;
    return super.append(account, rows, seen);
  }

  /** @override */
  async alarm() {
    noteAlarm(this.ctx, "USAGE_LOG");
    return super.alarm();
  }

  /** The bytes its SQLite database holds (what storage bills), for GET /__bench/size. */
  benchDatabaseSize() {
    return this.ctx.storage.sql.databaseSize;
  }
}

/** zgate's address index on bench:cost's counted storage, its alarms noted. */
export class UsageAddressIndex extends CountedAddressIndex {
  /**
   * @param {DurableObjectState} ctx
   * @param {Env & ClockBindings} env
   */
  constructor(ctx, env) {
    slowClock(env);
    super(ctx, env);
  }

  /** @override */
  async alarm() {
    noteAlarm(this.ctx, "USAGE_ADDRESSES");
    return super.alarm();
  }

  /** The bytes its SQLite database holds (what storage bills), for GET /__bench/size. */
  benchDatabaseSize() {
    return this.ctx.storage.sql.databaseSize;
  }
}

/** What GET /__bench/scale answers: the counts without the in-flight bookkeeping. */
function snapshot() {
  const out = Object.fromEntries(
    Object.entries(objects).map(([key, { inFlight: _, busySince: __, busySecond: ___, ...counts }]) => [key, counts]),
  );
  return { counters, objects: out, usageCalls };
}

/**
 * The SQLite size of an object of this script's classes (on the host), by binding and name,
 * asked past the counting wrappers: reading it is no call of zgate's.
 * @param {Env} env
 * @param {URLSearchParams} query
 */
async function databaseSize(env, query) {
  const binding = /** @type {(typeof BINDINGS)[number]} */ (query.get("binding"));
  if (!BINDINGS.includes(binding)) return { error: `binding must be one of ${BINDINGS.join(", ")}` };
  const ns = /** @type {DurableObjectNamespace<AccountGuard | UsageLog | UsageAddressIndex>} */ (/** @type {unknown} */ (env[binding]));
  return { bytes: await ns.getByName(query.get("name") ?? "").benchDatabaseSize() };
}

export default {
  /**
   * @param {Request} request
   * @param {Env & ClockBindings & { BENCH_DELAY_MS?: string }} env
   * @param {ExecutionContext} ctx
   */
  async fetch(request, env, ctx) {
    slowClock(env);
    const url = new URL(request.url);
    if (url.pathname === "/__bench/scale") return Response.json(snapshot());
    if (url.pathname === "/__bench/size") return Response.json(await databaseSize(env, url.searchParams));
    return distance.fetch(request, /** @type {Env & { BENCH_DELAY_MS?: string }} */ (scaleEnv(env)), ctx);
  },
};
