// Bench-only Worker for `npm run bench:cost`: zgate itself, with every binding it bills
// against wrapped by counters. Bundled by bench/workers.mjs like zgate (esbuild compiles
// the TypeScript imports); zgate's code is not changed, only what it is handed:
// - KEYS_KV: reads, writes, deletes, lists;
// - DB (D1): statements and the rows D1 reports in each result's meta (`first()` and
//   `raw()` are run as `all()`, which returns the same rows with their meta);
// - RESULTS (R2): operations by billing class (A: put, list, multipart; B: get, head; delete is free);
// - ACCOUNT_GUARD, USAGE_LOG, USAGE_ADDRESSES: every RPC method call on a stub (each one is a
//   billed Durable Object request), all counted under `guard` (by method); an isolate bound
//   with BENCH_DELAY_MS reaches its guards that many ms away (bench/guard-distance.mjs);
// - AccountGuard, UsageLog, UsageAddressIndex: subclasses handed a storage whose SQL cursors
//   are summed (rowsRead, rowsWritten: their final values are what SQLite-backed objects are
//   billed), whose synchronous KV calls count a row each, `setAlarm` a row written, and
//   `deleteAll` the rows it removes; alarm invocations count as requests.
// The counters live in module scope: workerd runs a Worker's Durable Objects in the
// Worker's own isolate, so the fetch handler and the guard objects share them.
//
// Bench routes, on this wrapper only (zgate never answers them):
//   GET  /__bench/counters            the counters so far
//   POST /__bench/drain               the alarm of every object reached and set since the last drain,
//                                     run at the time it is set for (and those it sets, until none
//                                     is left), counted; answers what each object's drain counted
//   POST /__bench/forget              the objects reached and the alarms set since the last drain
//                                     are left as they are (the setup's: a polled job's retirement)
//   GET  /__bench/unknown-key?product= a checksum-valid key of the product that was never issued
//   GET  /__bench/address-rows?scope=<scope>&addresses=<a>,<b>,…  how many window rows of those
//                                     client addresses their guards still hold (read uncounted)
import zgate, { AccountGuard as ZgateGuard, UsageAddressIndex as ZgateAddressIndex, UsageLog as ZgateUsageLog } from "../src/index";
import { loadSettings } from "../src/config/settings";
import { generateKey, prefixFor } from "../src/keys/key-format";
import { ADDRESS_GUARD_PREFIX, addressGuardName, addressShardSecret } from "../src/limits/guard-protocol";
import { products } from "../src/products/index";
import { useClock } from "../src/util/clock";
import { delayOf, distantNamespace } from "./guard-distance.mjs";

/** @typedef {import("../src/env").Env} Env */
/** @typedef {{ statements: number, rowsRead: number, rowsWritten: number }} StatementCounts */
/** @typedef {typeof counters} Counters What `GET /__bench/counters` answers. */

export const counters = {
  kv: { reads: 0, writes: 0, deletes: 0, lists: 0 },
  // bySql: the same figures per statement (its text, shortened), to see where rows go.
  d1: { statements: 0, rowsRead: 0, rowsWritten: 0, bySql: /** @type {Record<string, StatementCounts>} */ ({}) },
  r2: { classA: 0, classB: 0, free: 0 },
  guard: {
    calls: 0,
    /** @type {Record<string, number>} */
    byMethod: {},
    alarms: 0,
    /** @type {Record<string, number>} alarm invocations by kind of object (account guard, address guard, usage log, address index) */
    alarmsByKind: {},
    constructed: 0,
    sqlStatements: 0,
    sqlRowsRead: 0,
    sqlRowsWritten: 0,
    kvRowsRead: 0,
    kvRowsWritten: 0,
    alarmsSet: 0,
    deleteAllRows: 0,
    bySql: /** @type {Record<string, StatementCounts>} */ ({}),
  },
};

/**
 * Adds one statement's figures to `bySql`, under its text with spaces collapsed, cut short.
 * @param {Record<string, StatementCounts>} bySql
 * @param {string} sql
 * @param {number} rowsRead
 * @param {number} rowsWritten
 */
function countStatement(bySql, sql, rowsRead, rowsWritten) {
  const key = sql.replace(/\s+/g, " ").trim().slice(0, 72);
  const entry = (bySql[key] ??= { statements: 0, rowsRead: 0, rowsWritten: 0 });
  entry.statements++;
  entry.rowsRead += rowsRead;
  entry.rowsWritten += rowsWritten;
}

// ---------------------------------------------------------------- D1

/**
 * @template {D1Result} R
 * @param {string} sql
 * @param {R} result
 * @returns {R}
 */
function countMeta(sql, result) {
  const rowsRead = result?.meta?.rows_read ?? 0;
  const rowsWritten = result?.meta?.rows_written ?? 0;
  counters.d1.statements++;
  counters.d1.rowsRead += rowsRead;
  counters.d1.rowsWritten += rowsWritten;
  countStatement(counters.d1.bySql, sql, rowsRead, rowsWritten);
  return result;
}

const REAL = Symbol("real statement");

/** @typedef {{ [REAL]: { sql: string, statement: D1PreparedStatement } }} Counted */

/**
 * A statement whose results are counted. It stands in for D1's own (zgate calls only
 * these methods), with D1's own results: the generic result types D1 declares hold.
 * @param {string} sql
 * @param {D1PreparedStatement} statement
 * @returns {D1PreparedStatement}
 */
function countedStatement(sql, statement) {
  const counted = {
    [REAL]: { sql, statement },
    bind: (/** @type {unknown[]} */ ...values) => countedStatement(sql, statement.bind(...values)),
    run: async () => countMeta(sql, await statement.run()),
    all: async () => countMeta(sql, await statement.all()),
    /** @param {string} [column] */
    async first(column) {
      const row = countMeta(sql, await statement.all()).results[0] ?? null;
      return row === null || column === undefined ? row : row[column];
    },
    /** @param {{ columnNames?: boolean }} [options] */
    async raw(options) {
      const { results } = countMeta(sql, await statement.all());
      const rows = results.map((r) => Object.values(r));
      return options?.columnNames ? [Object.keys(results[0] ?? {}), ...rows] : rows;
    },
  };
  return /** @type {D1PreparedStatement} */ (/** @type {unknown} */ (counted));
}

/**
 * D1 with every statement counted (`dump`, deprecated, is not there).
 * @param {D1Database} db
 * @returns {D1Database}
 */
function countedD1(db) {
  /** @type {Omit<D1Database, "dump">} */
  const counted = {
    prepare: (sql) => countedStatement(sql, db.prepare(sql)),
    /**
     * @template [T=unknown]
     * @param {D1PreparedStatement[]} statements
     */
    async batch(statements) {
      const real = statements.map((s) => /** @type {D1PreparedStatement & Counted} */ (s)[REAL]);
      const results = /** @type {D1Result<T>[]} */ (await db.batch(real.map((r) => r.statement)));
      return results.map((result, i) => countMeta(/** @type {Counted[typeof REAL]} */ (real[i]).sql, result));
    },
    exec: (sql) => db.exec(sql), // migrations only; zgate does not use it per request
    withSession: () => {
      throw new Error("cost bench: D1 sessions are not counted");
    },
  };
  return /** @type {D1Database} */ (counted);
}

// ---------------------------------------------------------------- KV, R2

/**
 * Proxies `target`, calling `count(name, args)` before each method call.
 * @template {object} T
 * @param {T} target
 * @param {(name: string | symbol, args: unknown[]) => void} count
 * @returns {T}
 */
function counting(target, count) {
  return new Proxy(target, {
    get(t, prop) {
      const value = Reflect.get(t, prop, t);
      if (typeof value !== "function") return value;
      return (/** @type {unknown[]} */ ...args) => {
        count(prop, args);
        return value.apply(t, args);
      };
    },
  });
}

/** @type {Record<string | symbol, keyof Counters["kv"]>} */
const KV_KINDS = { get: "reads", getWithMetadata: "reads", put: "writes", delete: "deletes", list: "lists" };
/** @type {(kv: KVNamespace) => KVNamespace} */
const countedKv = (kv) =>
  counting(kv, (name, args) => {
    const kind = KV_KINDS[name];
    // A bulk get reads each key it names.
    if (kind) counters.kv[kind] += kind === "reads" && Array.isArray(args[0]) ? args[0].length : 1;
  });

/** @type {Record<string | symbol, keyof Counters["r2"]>} */
const R2_CLASS = { put: "classA", list: "classA", createMultipartUpload: "classA", get: "classB", head: "classB", delete: "free" };
/** @type {(bucket: R2Bucket) => R2Bucket} */
const countedR2 = (bucket) =>
  counting(bucket, (name) => {
    if (name === "resumeMultipartUpload") throw new Error("cost bench: R2 multipart parts are not counted");
    const billed = R2_CLASS[name];
    if (billed) counters.r2[billed]++;
  });

// ---------------------------------------------------------------- the guard's namespace

/**
 * `stub` with `onCall(method, result)` told of every method called on it (each one RPC
 * session, billed as one request to the object), with the call's promise.
 * @template {object} S
 * @param {S} stub
 * @param {(method: string, result: unknown) => void} onCall
 * @returns {S}
 */
export function observedStub(stub, onCall) {
  return new Proxy(stub, {
    get(t, prop) {
      if (prop === "then" || typeof prop === "symbol" || prop === "id" || prop === "name") return Reflect.get(t, prop);
      return (/** @type {unknown[]} */ ...args) => {
        // Not `method.apply(...)`: on an RPC stub that would be a remote property named "apply".
        const result = Reflect.apply(/** @type {(...args: unknown[]) => unknown} */ (Reflect.get(t, prop)), t, args);
        onCall(prop, result);
        return result;
      };
    },
  });
}

/**
 * Every method called on the stub is one RPC session, billed as one request to the object.
 * @template {object} S
 * @param {S} stub
 * @returns {S}
 */
const countedStub = (stub) =>
  observedStub(stub, (method) => {
    counters.guard.calls++;
    counters.guard.byMethod[method] = (counters.guard.byMethod[method] ?? 0) + 1;
  });

/**
 * The objects reached since the last drain (by binding, their ids): the drain runs their
 * pending alarms. Objects reached by other objects (a usage log noting addresses) are
 * noted too when they run in this isolate.
 * @type {Record<"ACCOUNT_GUARD" | "USAGE_LOG" | "USAGE_ADDRESSES", Set<string>>}
 */
const reached = { ACCOUNT_GUARD: new Set(), USAGE_LOG: new Set(), USAGE_ADDRESSES: new Set() };

/**
 * @template {DurableObjectNamespace<any>} N
 * @param {N} ns
 * @param {Set<string>} ids where to note the id of each object reached
 * @returns {N}
 */
const countedNamespace = (ns, ids) =>
  new Proxy(ns, {
    get(t, prop) {
      const value = /** @type {unknown} */ (Reflect.get(t, prop, t));
      if (prop === "get" || prop === "getByName")
        return (/** @type {unknown[]} */ ...args) => {
          const id = prop === "getByName" ? t.idFromName(/** @type {string} */ (args[0])) : /** @type {DurableObjectId} */ (args[0]);
          ids.add(id.toString());
          return countedStub(/** @type {(...a: unknown[]) => object} */ (value).apply(t, args));
        };
      return typeof value === "function" ? value.bind(t) : value;
    },
  });

// One wrapped env per real env object: zgate caches parsed settings per env (a WeakMap),
// so a fresh wrapper per request would re-parse them on every request.
/** @type {WeakMap<Env, Env>} */
const wrapped = new WeakMap();
/**
 * @param {Env & { BENCH_DELAY_MS?: string }} env `BENCH_DELAY_MS` (an isolate's binding): its account guards that far away
 * @returns {Env}
 */
export function countedEnv(env) {
  let out = wrapped.get(env);
  if (!out) {
    const { BENCH_DELAY_MS, ...rest } = env;
    out = {
      ...rest,
      KEYS_KV: countedKv(env.KEYS_KV),
      DB: countedD1(env.DB),
      RESULTS: countedR2(env.RESULTS),
      ACCOUNT_GUARD: countedNamespace(distantNamespace(env.ACCOUNT_GUARD, delayOf(BENCH_DELAY_MS)), reached.ACCOUNT_GUARD),
      USAGE_LOG: countedNamespace(env.USAGE_LOG, reached.USAGE_LOG),
      USAGE_ADDRESSES: countedNamespace(env.USAGE_ADDRESSES, reached.USAGE_ADDRESSES),
    };
    wrapped.set(env, out);
  }
  return out;
}

// ---------------------------------------------------------------- the guard's storage

/**
 * Cursors opened in the current synchronous turn. Writes run when `exec` is called, reads
 * as the cursor is consumed; the guard consumes each cursor in the turn that opened it,
 * so the totals are read once that turn is over (a microtask) when they are final.
 */
/** @type {{ query: string, cursor: SqlStorageCursor<Record<string, SqlStorageValue>> }[]} */
let openCursors = [];
function settleCursors() {
  for (const { query, cursor } of openCursors) {
    counters.guard.sqlRowsRead += cursor.rowsRead;
    counters.guard.sqlRowsWritten += cursor.rowsWritten;
    countStatement(counters.guard.bySql, query, cursor.rowsRead, cursor.rowsWritten);
  }
  openCursors = [];
}

/**
 * @param {SqlStorage} sql
 * @returns {SqlStorage}
 */
function countedSql(sql) {
  return {
    /**
     * @template {Record<string, SqlStorageValue>} T
     * @param {string} query
     * @param {...SqlStorageValue} bindings
     * @returns {SqlStorageCursor<T>}
     */
    exec(query, ...bindings) {
      /** @type {SqlStorageCursor<T>} */
      const cursor = sql.exec(query, ...bindings);
      counters.guard.sqlStatements++;
      if (openCursors.length === 0) queueMicrotask(settleCursors);
      openCursors.push({ query, cursor });
      return cursor;
    },
    get databaseSize() {
      return sql.databaseSize;
    },
    Cursor: sql.Cursor,
    Statement: sql.Statement,
  };
}

/**
 * Synchronous KV of a SQLite-backed object: rows of a hidden table, billed as rows read and written.
 * @type {(kv: SyncKvStorage) => SyncKvStorage}
 */
const countedObjectKv = (kv) =>
  counting(kv, (name) => {
    if (name === "get") counters.guard.kvRowsRead++;
    if (name === "put" || name === "delete") counters.guard.kvRowsWritten++;
  });

/**
 * Rows `deleteAll` is about to remove: every row of every table, and every KV entry.
 * @param {DurableObjectStorage} storage
 */
function rowsStored(storage) {
  const tables = /** @type {{ name: string }[]} */ (
    storage.sql
      .exec("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '\\_%' ESCAPE '\\'")
      .toArray()
  );
  let rows = 0;
  for (const { name } of tables) rows += /** @type {number} */ (storage.sql.exec(`SELECT COUNT(*) AS n FROM "${name}"`).one().n);
  for (const _ of storage.kv.list()) rows++;
  return rows;
}

/**
 * @param {DurableObjectState} ctx
 * @returns {DurableObjectStorage}
 */
function countedStorage(ctx) {
  const { storage } = ctx;
  const sql = countedSql(storage.sql);
  const kv = countedObjectKv(storage.kv);
  return new Proxy(storage, {
    get(t, prop) {
      if (prop === "sql") return sql;
      if (prop === "kv") return kv;
      const value = Reflect.get(t, prop, t);
      if (typeof value !== "function") return value;
      if (prop === "setAlarm") {
        return (/** @type {unknown[]} */ ...args) => {
          counters.guard.alarmsSet++;
          const id = ctx.id.toString();
          if (!armedAt.has(id)) armedAt.set(id, Date.now());
          armedSinceDrain.add(id);
          return value.apply(t, args);
        };
      }
      if (prop === "deleteAll") {
        return (/** @type {unknown[]} */ ...args) => {
          counters.guard.deleteAllRows += rowsStored(t);
          return value.apply(t, args);
        };
      }
      return value.bind(t);
    },
  });
}

/** Each object's own storage, before countedState shadows it: what bench routes read uncounted. */
const ownStorage = /** @type {WeakMap<DurableObjectState, DurableObjectStorage>} */ (new WeakMap());

/**
 * The object's own state, its `storage` shadowed by the counted one. The state itself is
 * handed on (not a Proxy of it): the Durable Object base class checks its type.
 * @param {DurableObjectState} ctx
 */
function countedState(ctx) {
  ownStorage.set(ctx, ctx.storage);
  Object.defineProperty(ctx, "storage", { value: countedStorage(ctx) });
  return ctx;
}

/**
 * An object's alarm as it would run at `at`, on zgate's clock (src/util/clock.ts) stood at
 * `at` meanwhile: the benchmark sends nothing else then.
 * @param {number} at
 * @param {() => Promise<void>} alarm
 */
async function alarmAt(at, alarm) {
  const wait = (/** @type {number} */ ms) => new Promise((resolve) => setTimeout(resolve, ms));
  useClock({ now: () => at, sleep: wait, after: (ms, work) => wait(ms).then(work) });
  try {
    await alarm();
  } finally {
    useClock(null);
  }
}

// Both by object id: an object idle for seconds is evicted, and its next instance has a new state.
/**
 * When each object's pending alarm was first set (real time), since its last alarm ran:
 * the drain reports it, so the alarm's period (from then to when it comes) is known.
 * @type {Map<string, number>}
 */
const armedAt = new Map();
/**
 * The objects (of this isolate) that set an alarm since the last drain: only theirs are
 * drained. An alarm set before (by the credentials' setup: a job's retirement) is not
 * what a later stretch caused, and running it would end what the stretch uses.
 * @type {Set<string>}
 */
const armedSinceDrain = new Set();

/**
 * Counts one alarm invocation, under the kind of object that runs it; the alarm it sets
 * from here on is a new one.
 * @param {string} kind
 * @param {DurableObjectState} ctx
 */
function countAlarm(kind, ctx) {
  counters.guard.alarms++;
  counters.guard.alarmsByKind[kind] = (counters.guard.alarmsByKind[kind] ?? 0) + 1;
  armedAt.delete(ctx.id.toString());
}

/** More alarms than this in one object's drain: one that keeps coming back (a cost without end). */
const MAX_DRAINED_ALARMS = 100;

/** @typedef {import("./cost-model.mjs").Drained} Drained One object's drain (its Counters' difference). */

/**
 * Runs the object's pending alarm at the time it is set for, on zgate's clock stood there
 * (alarmAt), then the one that alarm set, and so on until none is left. The alarm is
 * deleted first, as the runtime does when it runs one, and uncounted.
 * @param {string} kind
 * @param {DurableObjectState} ctx
 * @param {() => Promise<void>} alarm
 * @returns {Promise<Drained | null>} null if no alarm was pending, or it was set before the last drain
 */
async function drainAlarms(kind, ctx, alarm) {
  const storage = /** @type {DurableObjectStorage} */ (ownStorage.get(ctx));
  const before = structuredClone(counters);
  const first = armedSinceDrain.has(ctx.id.toString()) ? await storage.getAlarm() : null;
  if (first === null) return null;
  const armed = armedAt.get(ctx.id.toString()) ?? 0;
  let alarms = 0;
  // The runtime runs an alarm after the time it is set for (a millisecond here), and time moves on between two.
  let ranAt = Date.now();
  for (let /** @type {number | null} */ at = first; at !== null; at = await storage.getAlarm()) {
    if (++alarms > MAX_DRAINED_ALARMS) throw new Error(`${kind} ${ctx.id}: its alarm came back ${MAX_DRAINED_ALARMS} times`);
    await storage.deleteAlarm();
    ranAt = Math.max(at + 1, ranAt + 1);
    await alarmAt(ranAt, alarm);
  }
  return { kind, armedAt: armed, dueAt: first, alarms, counters: /** @type {Counters} */ (difference(counters, before)) };
}

/**
 * `after - before`, number by number, of two counter trees.
 * @param {Record<string, any>} after
 * @param {Record<string, any>} before
 * @returns {Record<string, any>}
 */
function difference(after, before) {
  return Object.fromEntries(
    Object.entries(after).map(([k, v]) => [k, typeof v === "number" ? v - (before?.[k] ?? 0) : difference(v, before?.[k] ?? {})]),
  );
}

/** zgate's guard, unchanged, on counted storage. */
export class AccountGuard extends ZgateGuard {
  /**
   * @param {DurableObjectState} ctx
   * @param {Env} env
   */
  constructor(ctx, env) {
    super(countedState(ctx), env);
    counters.guard.constructed++;
  }

  get #kind() {
    return this.ctx.id.name?.startsWith(ADDRESS_GUARD_PREFIX) ? "addressGuard" : "accountGuard";
  }

  /** @override */
  async alarm() {
    countAlarm(this.#kind, this.ctx);
    return super.alarm();
  }

  /**
   * How many of `addresses` still have a window row here, read past the counters.
   * @param {string[]} addresses
   */
  benchAddressRows(addresses) {
    const { sql } = /** @type {DurableObjectStorage} */ (ownStorage.get(this.ctx));
    const held = (/** @type {string} */ address) => sql.exec("SELECT 1 FROM windows WHERE subject LIKE ?", `%:${address}`).toArray().length;
    return addresses.reduce((rows, address) => rows + held(address), 0);
  }

  benchDrainAlarms() {
    return drainAlarms(this.#kind, this.ctx, () => this.alarm());
  }
}

/** zgate's usage log, unchanged, on counted storage; the address index calls it makes are counted too. */
export class UsageLog extends ZgateUsageLog {
  /**
   * @param {DurableObjectState} ctx
   * @param {Env} env
   */
  constructor(ctx, env) {
    super(countedState(ctx), countedEnv(env));
  }

  /** @override */
  async alarm() {
    countAlarm("usageLog", this.ctx);
    return super.alarm();
  }

  benchDrainAlarms() {
    return drainAlarms("usageLog", this.ctx, () => this.alarm());
  }
}

/** zgate's address index, unchanged, on counted storage. */
export class UsageAddressIndex extends ZgateAddressIndex {
  /**
   * @param {DurableObjectState} ctx
   * @param {Env} env
   */
  constructor(ctx, env) {
    super(countedState(ctx), env);
  }

  /** @override */
  async alarm() {
    countAlarm("addressIndex", this.ctx);
    return super.alarm();
  }

  benchDrainAlarms() {
    return drainAlarms("addressIndex", this.ctx, () => this.alarm());
  }
}

// ---------------------------------------------------------------- the Worker

/**
 * @param {Request} request
 * @param {Env} env
 * @param {URL} url
 */
async function benchRoute(request, env, url) {
  if (url.pathname === "/__bench/counters") return Response.json(counters);
  if (url.pathname === "/__bench/drain" && request.method === "POST") {
    /** @type {Drained[]} */
    const drained = [];
    // One object at a time (each stands zgate's clock where its alarm is due), until no
    // object an alarm reached is left undrained. This Worker's classes are the counted ones above.
    for (let round = 0; Object.values(reached).some((ids) => ids.size > 0); round++) {
      if (round > 10) throw new Error("drain: alarms keep reaching other objects");
      for (const [binding, ids] of Object.entries(reached)) {
        const ns = /** @type {DurableObjectNamespace<AccountGuard | UsageLog | UsageAddressIndex>} */ (
          /** @type {unknown} */ (env[/** @type {keyof typeof reached} */ (binding)])
        );
        const list = [...ids];
        ids.clear();
        for (const id of list) {
          const one = await ns.get(ns.idFromString(id)).benchDrainAlarms();
          if (one) drained.push(one);
        }
      }
    }
    // Alarms set from now on are the next stretch's (this isolate's objects; the objects'
    // isolate is drained last where it is not this one: bench/cost-default-key.mjs).
    armedSinceDrain.clear();
    return Response.json(drained);
  }
  if (url.pathname === "/__bench/forget" && request.method === "POST") {
    for (const ids of Object.values(reached)) ids.clear();
    armedSinceDrain.clear();
    return Response.json({ ok: true });
  }
  if (url.pathname === "/__bench/address-rows") {
    const scope = url.searchParams.get("scope") ?? "";
    /** @type {Map<string, string[]>} */
    const byGuard = new Map();
    for (const address of (url.searchParams.get("addresses") ?? "").split(",").filter(Boolean)) {
      const { ORIGIN_ASSERTION_KEYS, ADDRESS_GUARD_SHARDS } = loadSettings(env);
      const name = await addressGuardName(addressShardSecret(ORIGIN_ASSERTION_KEYS), ADDRESS_GUARD_SHARDS, scope, address);
      byGuard.set(name, [...(byGuard.get(name) ?? []), address]);
    }
    const guards = /** @type {DurableObjectNamespace<AccountGuard>} */ (/** @type {unknown} */ (env.ACCOUNT_GUARD));
    const rows = await Promise.all(
      [...byGuard].map(([name, addresses]) => guards.get(guards.idFromName(name)).benchAddressRows(addresses)),
    );
    return Response.json({ rows: rows.reduce((a, b) => a + b, 0) });
  }
  if (url.pathname === "/__bench/unknown-key") {
    const product = products().find((p) => p.id === url.searchParams.get("product"));
    const prefix = product && prefixFor(product.id);
    if (!prefix) return new Response("product=<zakgt|zsky|zappway> required", { status: 400 });
    return Response.json({ key: generateKey(prefix) });
  }
  return new Response("no such bench route", { status: 404 });
}

/** @type {ExportedHandler<Env>} */
export default {
  fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (url.pathname.startsWith("/__bench/")) return benchRoute(request, env, url);
    return zgate.fetch(request, countedEnv(env), ctx);
  },
};
