#!/usr/bin/env node
// `npm run scale:model`: zgate's capacity model (docs/scale.md). It multiplies the
// operations `npm run bench:cost` counted per request (bench/results/cost.json) out over a
// traffic mix, and for every store and object zgate uses reports the load on it, the
// documented limit it runs into, and the traffic at which zgate meets that limit.
//
// The mix (defaults: issue 25's target) is Zipf over accounts, with the exponent solved so
// the top account has its share; each account's traffic is spread evenly over its keys and
// over the isolates that serve it (PER_ISOLATE_RPS each, as in the issue's "200 isolates,
// 100 each"). An account whose keys in one isolate make SHARE_MIN requests a share life,
// none of them most of it, spends shares (src/admit/lease-book.ts): its guard takes the
// calls per isolate bench:scale measured for the hot account, whatever its rate. Otherwise
// a credential's calls in one isolate are leased when two or more arrive within a lease
// life (src/guard/lease-registry.ts); below that every request is a guard call, as the
// steady slow key (default_key_1rps) measures. Everything else is a measured count or a cited limit.
//
// When bench/results/scale.json holds a full run of `npm run bench:scale`, the hot account
// is modelled from it instead: the calls per second its guard object received per isolate,
// measured with several isolates at once, times the isolates the top account spans; and an
// object's active time per call (the share of time a call to it was under way, over its
// calls per second) replaces the assumed ACTIVE_MS_PER_REQUEST for Durable Object duration.
//
// Environment: SCALE_RPS, SCALE_KEYS, SCALE_ACCOUNTS, SCALE_TOP_RPS, SCALE_TOP_KEYS,
// SCALE_RETENTION_DAYS, SCALE_ISOLATE_RPS, SCALE_FLUSH_S, SCALE_FLOOD_RPS; SCALE_OUT
// (default bench/results/scale-model.json).
import { existsSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { importTs } from "../scripts/import-ts.mjs";
import { spread } from "./client-figures.mjs";
import { loadPrices } from "./cost-model.mjs";
import { writeResults } from "./report.mjs";
import { root } from "./workers.mjs";

/** @typedef {import("./cost-model.mjs").Counts} Counts */
/** @typedef {ReturnType<typeof mixOf>} Mix */

const num = (/** @type {string} */ name, /** @type {number} */ fallback) => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
};

/** The traffic mix; defaults are issue 25's target. */
const MIX = {
  rps: num("SCALE_RPS", 100_000),
  keys: num("SCALE_KEYS", 1_000_000),
  accounts: num("SCALE_ACCOUNTS", 100_000),
  topRps: num("SCALE_TOP_RPS", 20_000),
  topKeys: num("SCALE_TOP_KEYS", 50),
  retentionDays: num("SCALE_RETENTION_DAYS", 90),
  /** Requests one isolate serves per second (issue 25: 200 isolates, 100 each, for the top account). */
  perIsolateRps: num("SCALE_ISOLATE_RPS", 100),
  /** USAGE_FLUSH_MS, in seconds. */
  flushSeconds: num("SCALE_FLUSH_S", 10),
  /**
   * Requests limited per client address (unauthenticated, or failed authentications) that
   * reach one scope's address guards each second: a flood from ever new addresses, none
   * yet over its own limit, as large as the whole target traffic.
   */
  floodRps: num("SCALE_FLOOD_RPS", 100_000),
};

/** How many address guards each scope has, the most tokens a lease holds, a share's life (src/limits/guard-protocol.ts). */
const { ADDRESS_GUARD_SHARDS, MAX_LEASE_TOKENS, MAX_LEASE_MS } = /** @type {typeof import("../src/limits/guard-protocol")} */ (
  await importTs("src/limits/guard-protocol.ts")
);
/** The requests a share life a guard's subjects in one isolate make before they join shares (src/admit/lease-book.ts). */
const { SHARE_MIN } = /** @type {typeof import("../src/admit/lease-book")} */ (await importTs("src/admit/lease-book.ts"));

/** zgate's constants the model needs (src/: GUARD_LEASE_MS default, MAX_LEASE_TOKENS, a share's life, SHARE_MIN, CALLS_PER_BATCH). */
const ZGATE = {
  leaseSeconds: 0.25,
  maxLeaseTokens: MAX_LEASE_TOKENS,
  shareSeconds: MAX_LEASE_MS / 1000,
  shareMin: SHARE_MIN,
  callsPerBatch: 256,
  doMemoryGb: 0.128,
};

/**
 * Call data stored per call: measured black box against `npm start` (issue 25: 800 keyed calls
 * over 8 accounts, 114 bytes each before SQLite's own overhead).
 */
const BYTES_PER_CALL = 114;

/**
 * Wall time an object is active per request it serves (ms): an assumption, not measured here
 * (locally a guard call takes about 1 ms end to end). Used only for Durable Object duration.
 */
const ACTIVE_MS_PER_REQUEST = 1;

/**
 * Documented limits, each with the page it is on and when it was read (stored copies of the
 * pages, read 2026-12-06). `headroom`: the issue asks every store to stay below half its limit.
 */
const LIMITS = {
  d1Bytes: { value: 10e9, text: "10 GB per database", source: "https://developers.cloudflare.com/d1/platform/limits/" },
  d1AccountBytes: { value: 1e12, text: "1 TB of D1 per account", source: "https://developers.cloudflare.com/d1/platform/limits/" },
  d1Queries: {
    value: 1000,
    text: "one query at a time per database: about 1,000 queries/s at 1 ms each",
    source: "https://developers.cloudflare.com/d1/platform/limits/ (FAQ: how much work can a D1 database do)",
  },
  doRequests: {
    value: 1000,
    text: "soft limit of about 1,000 requests/s per object",
    source: "https://developers.cloudflare.com/durable-objects/reference/faq/ (how much work can a single Durable Object do)",
  },
  doBytes: {
    value: 10e9,
    text: "10 GB per object (SQLite-backed)",
    source: "https://developers.cloudflare.com/durable-objects/platform/limits/",
  },
  kvKeyWrites: { value: 1, text: "1 write/s to the same key", source: "https://developers.cloudflare.com/kv/platform/limits/" },
  r2KeyWrites: {
    value: 1,
    text: "1 write/s to the same object key; no limit on objects or bytes",
    source: "https://developers.cloudflare.com/r2/platform/limits/",
  },
  subrequests: {
    value: 10_000,
    text: "10,000 subrequests per invocation (Workers Paid)",
    source: "https://developers.cloudflare.com/workers/platform/limits/",
  },
};
const HEADROOM = 2;
const SECONDS_PER_MONTH = 30 * 86_400;

// ---------------------------------------------------------------- measured counts

const COST_FILE = join(root, "bench", "results", "cost.json");

/** The per-request counts bench:cost measured, by case id (medians over its runs). */
function measuredCounts() {
  /** @type {{ cases: { id: string, median: { counts: Counts } }[], machine: { commit?: string } }} */
  const cost = JSON.parse(readFileSync(COST_FILE, "utf8"));
  const byId = Object.fromEntries(cost.cases.map((c) => [c.id, c.median.counts]));
  const hot = byId.zappway_key_hot;
  const cold = byId.zappway_key_cold;
  const slow = byId.default_key_1rps;
  if (!hot || !cold) throw new Error(`${COST_FILE}: no zappway_key_hot / zappway_key_cold case`);
  /** @type {(c: Counts, sql: string) => number} */
  const d1Written = (c, sql) =>
    Object.entries(c.statements.d1)
      .filter(([text]) => text.startsWith(sql))
      .reduce((sum, [, s]) => sum + s.rowsWritten, 0);
  // bench:cost's steady cases run at 200 requests/s from one isolate, so a lease holds min(64, 200 * 0.25) tokens.
  const benchTokens = Math.min(ZGATE.maxLeaseTokens, 200 * ZGATE.leaseSeconds);
  return {
    hot,
    cold,
    /** Guard calls (grant, hand-back) and guard rows written per lease, from the hot case. */
    guardCallsPerLease: hot.guardCalls * benchTokens,
    guardRowsPerLease: hot.doRowsWritten * benchTokens,
    /**
     * A request decided alone (a slow credential): one guard call and its rows, from the
     * steady slow key (default_key_1rps) when measured. Not from the cold case: its three
     * calls include the guard's birth (schema, keys and settings: 28 rows), once per account
     * ever, which counted per slow request made every slow call nine rows instead of one.
     */
    guardRowsPerCall: slow ? slow.doRowsWritten / slow.guardCalls : cold.doRowsWritten / cold.guardCalls,
    /** D1 rows per usage row: the flush's INSERT, the cron's DELETE, and `last_used_at` folded in. */
    usageRowWrites: {
      insert: d1Written(cold, "INSERT INTO key_usage_batches"),
      prune: d1Written(cold, "DELETE FROM key_usage_batches"),
      fold: d1Written(cold, "UPDATE api_keys SET last_used_at"),
    },
  };
}

const SCALE_FILE = join(root, "bench", "results", "scale.json");

/** The issue's target for one object: at most this many guard calls per second (RPC, fetch and alarms). */
const OBJECT_TARGET = 500;

/**
 * What `npm run bench:scale` measured (bench/results/scale.json), or null when there is no
 * full run of it: per load of the hot account, its guard's calls per second per isolate
 * and the share of time a call to it was under way; the bytes its objects held.
 */
function measuredScale() {
  if (!existsSync(SCALE_FILE)) return null;
  /** @type {import("./scale.mjs").ScaleResults} */
  const scale = JSON.parse(readFileSync(SCALE_FILE, "utf8"));
  if (scale.smoke) return null;
  const run = scale.runs[0];
  if (!run) return null;
  return {
    commit: scale.commit,
    isolates: scale.config.isolates,
    isolateRps: scale.config.isolateRps,
    loadAverage: [scale.machine.loadAverageBefore[0], scale.machine.loadAverageAfter[0]],
    hot: scale.summary.hot.map((h, i) => ({
      share: h.share ?? 0,
      perIsolate: h.guardCallsPerIsolatePerSecond,
      callsPerRequest: h.guardCallsPerRequest,
      // The wall time a call to the guard was under way, per call, as its callers saw it (an upper bound on its active time).
      activeMsPerCall: h.guardActiveMsPerCall.median,
      usageAppendsPerIsolate: h.usageAppendsPerIsolatePerSecond.median ?? 0,
      mostInOneWindow: h.mostInOneWindow,
      exactnessHeld: h.exactnessHeld,
      // On zgate's clock (the harness may run it slower than real time): what a caller of zgate would wait.
      revokeReturnMs: spread(
        scale.runs.map((r) => (r.hot[i]?.revoke.status === 200 ? r.hot[i].revoke.returnZgateMs : null)),
        0,
      ),
      admittedAfterRevoke: h.admittedAfterRevoke,
      revokesFailed: h.revokesFailed ?? [],
    })),
    // A share's cost, as the hot account measured it (the worse of its loads): guard calls per isolate per second, guard rows per request.
    share: {
      callsPerIsolate: Math.max(...scale.summary.hot.map((h) => h.guardCallsPerIsolatePerSecond.median ?? 0)),
      rowsPerRequest: Math.max(...run.hot.map((c) => c.perRequest.doRowsWrittenGuard)),
    },
    hotGuardBytes: Math.max(...run.hot.map((c) => c.bytes.guard)),
    accountGuardBytes: run.accounts.bytes.guard,
    // SQLite bytes of a usage log per call it holds open (rows, their index, SQLite's pages): the hot account's.
    usageLogBytesPerCall: Math.max(...run.hot.map((c) => c.bytes.usageLog / Math.max(1, c.usageCalls.calls))),
  };
}

/**
 * bench:scale's hot account multiplied out to `isolates` isolates: each isolate's calls for
 * the account are its own (its leases, refusals and flushes), so its guard's calls per
 * second grow with the isolates sending it calls.
 * @param {NonNullable<ReturnType<typeof measuredScale>>} scale
 * @param {number} isolates
 */
function hotAtIsolates(scale, isolates) {
  const times = (/** @type {number | null} */ x) => (x === null ? null : x * isolates);
  return scale.hot.map((h) => {
    const atIsolates = { median: times(h.perIsolate.median), range: h.perIsolate.range.map(times) };
    const worst = Math.max(...atIsolates.range.map((x) => x ?? Infinity));
    return {
      ...h,
      isolates,
      atIsolates,
      withinTarget: worst <= OBJECT_TARGET,
      overSoftLimitBy: (atIsolates.median ?? 0) / LIMITS.doRequests.value,
      usageAppendsAtIsolates: h.usageAppendsPerIsolate * isolates,
    };
  });
}

// ---------------------------------------------------------------- the mix

/** Zipf weights k^-s over n accounts, with s solved so the first has `topShare` of the total. */
function zipf(/** @type {number} */ n, /** @type {number} */ topShare) {
  const sum = (/** @type {number} */ s) => {
    let t = 0;
    for (let k = 1; k <= n; k++) t += k ** -s;
    return t;
  };
  let lo = 0;
  let hi = 4;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (1 / sum(mid) < topShare) lo = mid;
    else hi = mid;
  }
  const s = (lo + hi) / 2;
  const total = sum(s);
  return { exponent: s, share: (/** @type {number} */ k) => k ** -s / total };
}

/**
 * Each account: its rate, keys, isolates, and what its requests cost the guard and the usage log.
 * @param {typeof MIX} mix
 * @param {ReturnType<typeof measuredCounts>} m
 * @param {{ callsPerIsolate: number, rowsPerRequest: number }} share what a share costs (bench:scale)
 */
function mixOf(mix, m, share) {
  const z = zipf(mix.accounts, mix.topRps / mix.rps);
  const otherKeys = (mix.keys - mix.topKeys) / (mix.accounts - 1);
  const accounts = [];
  for (let k = 1; k <= mix.accounts; k++) {
    const rps = mix.rps * z.share(k);
    const keys = k === 1 ? mix.topKeys : otherKeys;
    const isolates = Math.max(1, Math.ceil(rps / mix.perIsolateRps));
    const perKeyIsolate = rps / keys / isolates;
    // Its keys in one isolate busy enough for shares, none of them most of it: the share's calls per isolate.
    const shared = keys >= 2 && (rps / isolates) * ZGATE.shareSeconds >= ZGATE.shareMin && 2 * perKeyIsolate < rps / isolates;
    // One key's calls in one isolate within a lease life.
    const perLease = perKeyIsolate * ZGATE.leaseSeconds;
    const leased = shared || perLease >= 2;
    const tokens = Math.min(ZGATE.maxLeaseTokens, perLease);
    const guardCallsPerSecond = shared
      ? Math.min(rps, isolates * share.callsPerIsolate)
      : leased
        ? (rps / tokens) * m.guardCallsPerLease
        : rps;
    const guardRows = shared ? rps * share.rowsPerRequest : leased ? (rps / tokens) * m.guardRowsPerLease : rps * m.guardRowsPerCall;
    // Usage rows: one per key per isolate per flush that holds a call, or per CALLS_PER_BATCH calls.
    const rowsPerKeyIsolate = Math.max(
      perKeyIsolate / ZGATE.callsPerBatch,
      (1 - Math.exp(-perKeyIsolate * mix.flushSeconds)) / mix.flushSeconds,
    );
    const usageRows = rowsPerKeyIsolate * keys * isolates;
    // The account's calls from one isolate in one flush: one usage-log RPC (the new design). A flush
    // comes early when one of its keys holds CALLS_PER_BATCH calls (src/usage/usage-log.ts): per key,
    // not per account, as bench:scale's hot account shows (0.1 appends/s per isolate at 2 calls/s per key).
    const perAccountIsolate = rps / isolates;
    const usageAppends =
      isolates * Math.max(perKeyIsolate / ZGATE.callsPerBatch, (1 - Math.exp(-perAccountIsolate * mix.flushSeconds)) / mix.flushSeconds);
    accounts.push({ rank: k, rps, keys, isolates, shared, leased, guardCallsPerSecond, guardRows, usageRows, usageAppends });
  }
  return { exponent: z.exponent, accounts, share };
}

// ---------------------------------------------------------------- stores

/**
 * @param {typeof MIX} mix
 * @param {ReturnType<typeof measuredCounts>} m
 * @param {Mix} x
 * @param {ReturnType<typeof measuredScale>} scale
 */
function model(mix, m, x, scale) {
  const prices = loadPrices().cloudflare;
  const top = /** @type {Mix["accounts"][number]} */ (x.accounts[0]);
  // The top account's guard, where bench:scale measured it: calls per isolate (the worse of its loads) times its isolates.
  const measuredTop = scale ? hotAtIsolates(scale, top.isolates) : null;
  const topGuardCalls = measuredTop ? Math.max(...measuredTop.map((h) => h.atIsolates.median ?? 0)) : top.guardCallsPerSecond;
  // The top account's own share in the sums below: measured, where it was.
  const ofTop = (/** @type {(calls: number) => number} */ f) => f(topGuardCalls) - f(top.guardCallsPerSecond);
  const sum = (/** @type {(a: Mix["accounts"][number]) => number} */ f) => x.accounts.reduce((t, a) => t + f(a), 0);
  const retentionSeconds = mix.retentionDays * 86_400;
  const callBytes = mix.rps * BYTES_PER_CALL * retentionSeconds;
  // Isolates in all: the mix at PER_ISOLATE_RPS each (an account's own share is spread over ceil(rps / PER_ISOLATE_RPS) of them).
  const isolates = Math.ceil(mix.rps / mix.perIsolateRps);
  const leasedShare = sum((a) => (a.leased ? a.rps : 0)) / mix.rps;
  const sharedShare = sum((a) => (a.shared ? a.rps : 0)) / mix.rps;
  const guardCalls = sum((a) => a.guardCallsPerSecond) + ofTop((calls) => calls);
  const guardRows = sum((a) => a.guardRows);
  const usageRows = sum((a) => a.usageRows);
  const usageAppends = sum((a) => a.usageAppends);
  const w = m.usageRowWrites;

  // Today: one D1 database holds every call and takes every flush.
  const d1 = {
    bytes: callBytes,
    rowsWrittenPerSecond: usageRows * (w.insert + w.prune + w.fold),
    // Statements: 16 usage rows per INSERT (usage-log.ts ROWS_PER_INSERT), run one at a time by the database.
    queriesPerSecond: (usageRows * w.insert) / 16 + isolates / mix.flushSeconds,
  };
  // D1's 10 GB: the keyed traffic (req/s) whose retained calls fill it, and the retention that fits the mix.
  const d1FullAtRps = LIMITS.d1Bytes.value / (BYTES_PER_CALL * retentionSeconds);
  const d1RetentionDaysAtMix = LIMITS.d1Bytes.value / (BYTES_PER_CALL * mix.rps) / 86_400;

  // The account guard: the hottest object's calls per second.
  const guardTopCalls = topGuardCalls;
  // The per-account rate at which an account whose requests each ask the guard (slow keys, spread over isolates) reaches the soft limit.
  const guardWallRpsUnleased = LIMITS.doRequests.value;
  // A sharing account's guard takes a share's calls per isolate whatever its rate: it meets the limit (with 2x headroom) at so many isolates.
  const guardWallIsolatesShared = LIMITS.doRequests.value / x.share.callsPerIsolate;
  const guardWallIsolatesSharedHeadroom = guardWallIsolatesShared / HEADROOM;

  // The new usage log (docs/scale.md): one UsageLog object per account, compacted to R2.
  const usageTopAppends = top.usageAppends;
  const usageTopRows = top.usageRows;
  const topBytesPerHour = top.rps * BYTES_PER_CALL * 3600;
  // Compaction (src/usage/usage-log-object.ts): hourly, or once 1 GB is open, into R2 objects of at
  // most 16 MB, with an index row per key per segment (written, and deleted by retention).
  const compactBytes = 1e9;
  const segmentBytes = 16e6;
  const topCompactionsPerHour = Math.max(1, topBytesPerHour / compactBytes);
  const segmentsPerSecond = sum((a) => Math.max(1, (a.rps * BYTES_PER_CALL * 3600) / segmentBytes)) / 3600;
  const compactionsPerSecond = segmentsPerSecond;
  // Keys are sorted within a compaction, so a key's calls of an hour fall in about one segment
  // (two where a segment boundary cuts them); a key with no call in the hour has none.
  const segmentKeyRows =
    sum((a) => {
      const hourCalls = a.rps * 3600;
      const activeKeys = a.keys * (1 - Math.exp(-hourCalls / a.keys));
      return activeKeys + Math.max(1, (hourCalls * BYTES_PER_CALL) / segmentBytes);
    }) / 3600;

  // Storage per month and DO duration, priced.
  const gbMonths = (/** @type {number} */ bytes) => bytes / 1e9;
  const monthlyRequests = mix.rps * SECONDS_PER_MONTH;
  const perMillion = (/** @type {number} */ dollarsPerMonth) => (dollarsPerMonth / monthlyRequests) * 1e6;
  // Active ms per call: measured on the hot guard where bench:scale ran (an upper bound), else assumed.
  const activeMs = (scale && Math.max(...scale.hot.map((h) => h.activeMsPerCall ?? 0))) || ACTIVE_MS_PER_REQUEST;
  const activeObjectsGbS = (/** @type {number} */ requestsPerSecond) =>
    Math.min(1, (requestsPerSecond * activeMs) / 1000) * ZGATE.doMemoryGb;
  const guardGbS = sum((a) => activeObjectsGbS(a.guardCallsPerSecond)) + ofTop(activeObjectsGbS);
  // The guards' own SQLite (keys, windows, plan), where measured: the hot account's, and a one-key account's for every other.
  const guardBytes = scale ? scale.hotGuardBytes + (mix.accounts - 1) * scale.accountGuardBytes : 0;
  const usageGbS = sum((a) => activeObjectsGbS(a.usageAppends));

  const perRequest = {
    workers: prices.workers.requests + (leasedShare * m.hot.cpuMs + (1 - leasedShare) * m.cold.cpuMs) * prices.workers.cpuMs,
    guard: (guardCalls * prices.durableObjects.requests + guardRows * prices.durableObjects.rowsWritten) / mix.rps,
    guardDuration: perMillion(guardGbS * SECONDS_PER_MONTH * (prices.durableObjects.durationGbS / 1e6)),
    guardStorage: perMillion(gbMonths(guardBytes) * prices.durableObjects.storedGbMonth),
    kv: (1 - leasedShare) * m.cold.kvReads * prices.kv.reads,
    usageToday: {
      d1Rows: (d1.rowsWrittenPerSecond * prices.d1.rowsWritten) / mix.rps,
      d1Storage: perMillion(gbMonths(callBytes) * prices.d1.storedGbMonth),
    },
    usageNew: {
      appends: (usageAppends * prices.durableObjects.requests) / mix.rps,
      // Rows: each key's calls of an append (written, then deleted by compaction), and the per-key index rows.
      rows: ((2 * usageRows + 2 * segmentKeyRows) * prices.durableObjects.rowsWritten) / mix.rps,
      r2Puts: (compactionsPerSecond * prices.r2.classA) / mix.rps,
      r2Storage: perMillion(gbMonths(callBytes) * prices.r2.storedGbMonth),
      // At most one compaction's worth of open calls per account sits in SQLite (as bench:scale measured a call there, where it ran).
      doStorage: perMillion(
        gbMonths(Math.min(callBytes, mix.rps * (scale?.usageLogBytesPerCall ?? BYTES_PER_CALL) * 3600)) *
          prices.durableObjects.storedGbMonth,
      ),
      duration: perMillion(usageGbS * SECONDS_PER_MONTH * (prices.durableObjects.durationGbS / 1e6)),
    },
  };
  const totalToday =
    perRequest.workers +
    perRequest.guard +
    perRequest.guardDuration +
    perRequest.guardStorage +
    perRequest.kv +
    perRequest.usageToday.d1Rows +
    perRequest.usageToday.d1Storage;
  const usageNewTotal = Object.values(perRequest.usageNew).reduce((a, b) => a + b, 0);
  const totalNew =
    perRequest.workers + perRequest.guard + perRequest.guardDuration + perRequest.guardStorage + perRequest.kv + usageNewTotal;

  return {
    mix: {
      ...mix,
      zipfExponent: x.exponent,
      isolates,
      leasedShare,
      sharedShare,
      sharedAccounts: x.accounts.filter((a) => a.shared).length,
      topAccount: { rps: top.rps, keys: top.keys, isolates: top.isolates, leased: top.leased, shared: top.shared },
    },
    d1: {
      ...d1,
      fullAtRps: d1FullAtRps,
      retentionDaysAtMix: d1RetentionDaysAtMix,
      overBy: d1.bytes / LIMITS.d1Bytes.value,
      overAccountBy: d1.bytes / LIMITS.d1AccountBytes.value,
    },
    guard: {
      callsPerSecond: guardCalls,
      rowsPerSecond: guardRows,
      topCallsPerSecond: guardTopCalls,
      measured: measuredTop,
      activeMsPerCall: activeMs,
      bytes: guardBytes,
      topOverBy: guardTopCalls / LIMITS.doRequests.value,
      wallRpsPerAccountUnleased: guardWallRpsUnleased,
      shareCallsPerIsolate: x.share.callsPerIsolate,
      wallIsolatesShared: guardWallIsolatesShared,
      wallIsolatesSharedHeadroom: guardWallIsolatesSharedHeadroom,
      gbSPerSecond: guardGbS,
    },
    usageLog: {
      appendsPerSecond: usageAppends,
      topAppendsPerSecond: usageTopAppends,
      topRowsPerSecond: usageTopRows,
      topBytesPerHour,
      topCompactionsPerHour,
      compactionsPerSecond,
      segmentKeyRowsPerSecond: segmentKeyRows,
      // Without compaction (phase A alone): the per-account rate whose retained calls fill one object.
      phaseAFullAtAccountRps: LIMITS.doBytes.value / (BYTES_PER_CALL * retentionSeconds),
      gbSPerSecond: usageGbS,
    },
    perMillion: { ...perRequest, totalToday: totalToday, totalNew, usageNewTotal },
  };
}

// ---------------------------------------------------------------- report

/** A Markdown table (docs/scale.md quotes it as printed). */
const table = (/** @type {string[]} */ head, /** @type {string[][]} */ rows) =>
  [head, head.map(() => "---"), ...rows].map((cells) => `| ${cells.join(" | ")} |`).join("\n");

const fmt = (/** @type {number} */ x, /** @type {number} */ digits = 0) =>
  x.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
/** Dollars: 3 decimals, 4 below a tenth of a cent (duration, storage). */
const usd = (/** @type {number} */ x) => `$${x.toFixed(x > 0 && x < 0.001 ? 4 : 3)}`;

/** @param {ReturnType<typeof model>} r */
function storeRows(r) {
  const mix = r.mix;
  return [
    [
      "D1 `DB`: usage calls (today)",
      `${fmt(BYTES_PER_CALL)} B a call kept ${mix.retentionDays} d; ${fmt(r.d1.rowsWrittenPerSecond / mix.rps, 3)} rows written/req`,
      LIMITS.d1Bytes.text,
      `${fmt(r.d1.bytes / 1e12, 1)} TB`,
      `${fmt(r.d1.overBy)}x (2x headroom: ${fmt(r.d1.overBy * HEADROOM)}x)`,
      `${fmt(r.d1.fullAtRps, 1)} keyed req/s in total at ${mix.retentionDays} d; at ${fmt(mix.rps)} req/s: ${fmt(r.d1.retentionDaysAtMix * 86_400)} s of retention`,
    ],
    [
      "D1 `DB`: flush queries (today)",
      "one batch per isolate flush, an INSERT per 16 usage rows",
      LIMITS.d1Queries.text,
      `${fmt(r.d1.queriesPerSecond)} statements/s (${fmt(mix.isolates)} isolates, ${mix.flushSeconds} s flush)`,
      `${fmt(r.d1.queriesPerSecond / LIMITS.d1Queries.value, 1)}x`,
      `${fmt((mix.rps * LIMITS.d1Queries.value) / r.d1.queriesPerSecond)} keyed req/s of this mix`,
    ],
    [
      "D1 account storage (sharded D1)",
      "as above, over many databases",
      LIMITS.d1AccountBytes.text,
      `${fmt(r.d1.bytes / 1e12, 1)} TB`,
      `${fmt(r.d1.overAccountBy, 1)}x`,
      `${fmt(LIMITS.d1AccountBytes.value / (BYTES_PER_CALL * mix.retentionDays * 86_400))} req/s at ${mix.retentionDays} d, however many databases`,
    ],
    [
      "Account guard (hottest object)",
      `1 call/req unleased; a busy account's shares ${fmt(r.guard.shareCallsPerIsolate, 1)} calls/s per isolate`,
      LIMITS.doRequests.text,
      r.guard.measured
        ? `${fmt(r.guard.topCallsPerSecond)} calls/s (top account: ${fmt(mix.topAccount.rps)} req/s, ${mix.topAccount.keys} keys, ${mix.topAccount.isolates} isolates; bench:scale's calls per isolate times ${mix.topAccount.isolates})`
        : `${fmt(r.guard.topCallsPerSecond)} calls/s (top account: ${fmt(mix.topAccount.rps)} req/s, ${mix.topAccount.keys} keys, ${mix.topAccount.isolates} isolates, ${mix.topAccount.shared ? "shares" : mix.topAccount.leased ? "leased" : "no leases: < 2 calls per key per isolate per lease life"})`,
      `${fmt(r.guard.topOverBy, 2)}x`,
      `${fmt(r.guard.wallRpsPerAccountUnleased)} req/s per account under ${ZGATE.shareMin} req/s per isolate with slow keys; a busy account at ${fmt(r.guard.wallIsolatesShared)} isolates (${fmt(r.guard.wallIsolatesSharedHeadroom)} with 2x headroom: ${fmt(r.guard.wallIsolatesSharedHeadroom * mix.perIsolateRps)} req/s at ${mix.perIsolateRps} each)`,
    ],
    [
      `Address guards \`ip\\|<scope>\\|<shard>\` (${ADDRESS_GUARD_SHARDS} per scope)`,
      "1 call per request limited per address (unauthenticated, or a failed authentication) of an address within its limit; 0 past it (refused in the isolate)",
      LIMITS.doRequests.text,
      `${fmt(mix.floodRps / ADDRESS_GUARD_SHARDS)} calls/s per guard (a flood of ${fmt(mix.floodRps)} req/s from new addresses at one scope, spread by a keyed hash)`,
      `${fmt(mix.floodRps / ADDRESS_GUARD_SHARDS / LIMITS.doRequests.value, 2)}x`,
      `${fmt(ADDRESS_GUARD_SHARDS * LIMITS.doRequests.value)} req/s per scope (${fmt((ADDRESS_GUARD_SHARDS * LIMITS.doRequests.value) / HEADROOM)} with 2x headroom)`,
    ],
    [
      "Admin guard (one)",
      "per admin credential checked, not per call volume",
      LIMITS.doRequests.text,
      "admin and console traffic",
      "-",
      "an address past its own limit is refused in the isolate (limits.md)",
    ],
    [
      "KV `KEYS_KV`",
      `${fmt(r.mix.leasedShare < 1 ? 1 : 0)} read per unleased request's first sight in an isolate; writes only at key creation`,
      LIMITS.kvKeyWrites.text,
      "reads unlimited; 1 write per key ever",
      "-",
      "no traffic-scaled write: not a wall",
    ],
    [
      "UsageLog (new, per account): appends",
      "one RPC per account per isolate flush",
      LIMITS.doRequests.text,
      `${fmt(r.usageLog.topAppendsPerSecond)} appends/s on the top account's object`,
      `${fmt(r.usageLog.topAppendsPerSecond / LIMITS.doRequests.value, 2)}x`,
      `${fmt(((LIMITS.doRequests.value / HEADROOM) * mix.flushSeconds) / 1)} isolates sending one account calls, at a ${mix.flushSeconds} s flush`,
    ],
    [
      "UsageLog (new, per account): storage",
      `open calls until compacted to R2 (an hour, or 1 GB)`,
      LIMITS.doBytes.text,
      `top account: ${fmt(r.usageLog.topBytesPerHour / 1e9, 1)} GB/h -> compacted ${fmt(r.usageLog.topCompactionsPerHour, 1)} times an hour`,
      "0.1x (1 GB open at most)",
      `without compaction: ${fmt(r.usageLog.phaseAFullAtAccountRps, 1)} req/s per account at ${mix.retentionDays} d`,
    ],
    [
      "R2 usage segments (new)",
      "one object per 16 MB of an account's calls, at least one an hour",
      LIMITS.r2KeyWrites.text,
      `${fmt(r.usageLog.compactionsPerSecond, 1)} puts/s, each to a new key; ${fmt(r.d1.bytes / 1e12, 1)} TB`,
      "-",
      "no per-bucket size or rate limit documented: not a wall",
    ],
  ];
}

/** @param {ReturnType<typeof model>} r */
function costRows(r) {
  const p = r.perMillion;
  return [
    ["Workers requests and CPU", usd(p.workers), usd(p.workers)],
    ["Account guards: calls and rows", usd(p.guard), usd(p.guard)],
    ["Account guards: duration (GB-s)", usd(p.guardDuration), usd(p.guardDuration)],
    ["Account guards: storage ($0.20/GB-month)", usd(p.guardStorage), usd(p.guardStorage)],
    ["KV reads", usd(p.kv), usd(p.kv)],
    ["Usage: D1 rows (insert, prune, fold)", usd(p.usageToday.d1Rows), "-"],
    [`Usage: D1 storage ($0.75/GB-month)`, usd(p.usageToday.d1Storage), "-"],
    ["Usage: UsageLog appends (DO requests)", "-", usd(p.usageNew.appends)],
    ["Usage: UsageLog rows (write, compact, index)", "-", usd(p.usageNew.rows)],
    ["Usage: R2 segment puts", "-", usd(p.usageNew.r2Puts)],
    ["Usage: R2 storage ($0.015/GB-month)", "-", usd(p.usageNew.r2Storage)],
    ["Usage: UsageLog open SQLite ($0.20/GB-month)", "-", usd(p.usageNew.doStorage)],
    ["Usage: UsageLog duration (GB-s)", "-", usd(p.usageNew.duration)],
    ["**total per million requests**", `**${usd(p.totalToday)}** (if D1 could hold it)`, `**${usd(p.totalNew)}**`],
  ];
}

/**
 * The hot account as bench:scale measured it, multiplied out to the isolates the issue's
 * target spreads it over (one row per load of its limit).
 * @param {ReturnType<typeof model>} r
 * @param {NonNullable<ReturnType<typeof measuredScale>>} scale
 */
function hotRows(r, scale) {
  /** @param {{ median: number | null, range: (number | null)[] }} s @param {number} digits */
  const ranged = (s, digits) =>
    s.range[0] === s.range[1]
      ? fmt(s.median ?? NaN, digits)
      : `${fmt(s.median ?? NaN, digits)} [${fmt(s.range[0] ?? NaN, digits)}-${fmt(s.range[1] ?? NaN, digits)}]`;
  return (r.guard.measured ?? []).map((h) => [
    `${Math.round(h.share * 100)}% of its limit`,
    `${ranged(h.perIsolate, 1)} (${ranged(h.callsPerRequest, 3)} per request; ${scale.isolates} isolates x ${scale.isolateRps} req/s)`,
    `${ranged(h.atIsolates, 0)} at ${h.isolates} isolates`,
    `${h.withinTarget ? "within" : "over"} ${OBJECT_TARGET} (${fmt((h.atIsolates.median ?? 0) / OBJECT_TARGET, 1)}x); soft limit ${fmt(h.overSoftLimitBy, 1)}x`,
    `${fmt(h.usageAppendsAtIsolates, 1)} appends/s`,
    `${h.mostInOneWindow} in one window (${h.exactnessHeld ? "held" : "OVERSHOT"}); revoke ${ranged(h.revokeReturnMs, 0)} ms, ${h.admittedAfterRevoke} admitted after${h.revokesFailed.length ? `; revokes that failed: answered ${h.revokesFailed.join(", ")}` : ""}`,
  ]);
}

function main() {
  const m = measuredCounts();
  const scale = measuredScale();
  // Without a bench:scale run, a share is taken at one renewal per share life per isolate, its rows as a hot lease's.
  const share = scale?.share ?? { callsPerIsolate: 1 / ZGATE.shareSeconds, rowsPerRequest: m.hot.doRowsWritten };
  const x = mixOf(MIX, m, share);
  const r = model(MIX, m, x, scale);
  const out = process.env.SCALE_OUT || join(root, "bench", "results", "scale-model.json");
  writeResults(out, {
    schema: "zgate-scale-model/1",
    measuredFrom: relative(root, COST_FILE),
    hotAccountFrom: scale ? relative(root, SCALE_FILE) : null,
    bytesPerCall: BYTES_PER_CALL,
    limits: LIMITS,
    ...r,
  });
  const lines = [
    `zgate capacity model: ${fmt(MIX.rps)} req/s, ${fmt(MIX.keys)} keys, ${fmt(MIX.accounts)} accounts (Zipf s=${r.mix.zipfExponent.toFixed(3)}, top ${fmt(MIX.topRps)} req/s), ${MIX.retentionDays} d retention, ${fmt(r.mix.isolates)} isolates at ${MIX.perIsolateRps} req/s, ${Math.round(r.mix.leasedShare * 100)}% of requests leased (${Math.round(r.mix.sharedShare * 100)}% in the shares of ${fmt(r.mix.sharedAccounts)} accounts)`,
    "",
    table(
      ["store / object", "per request (measured)", "documented limit", "at this mix", "over the limit", "zgate meets it at"],
      storeRows(r),
    ),
    "",
    table(["$ per million requests", "today (D1 usage log)", "new (UsageLog + R2)"], costRows(r)),
    "",
    ...(scale
      ? [
          `The hot account, from bench:scale at ${scale.commit} (load ${scale.loadAverage.join(" -> ")}); active time per guard call ${fmt(r.guard.activeMsPerCall, 2)} ms (measured, an upper bound):`,
          "",
          table(
            [
              "hot account (issue 25)",
              "its guard's calls/s per isolate (measured)",
              "multiplied out",
              `target: at most ${OBJECT_TARGET}/s on one object`,
              "its usage log",
              "exactness, revocation (measured)",
            ],
            hotRows(r, scale),
          ),
          "",
        ]
      : [
          "bench/results/scale.json has no full run of `npm run bench:scale`: the hot account is modelled from bench:cost's counts alone.",
          "",
        ]),
    `Results: ${relative(root, out)}`,
  ];
  console.log(lines.join("\n"));
}

main();
