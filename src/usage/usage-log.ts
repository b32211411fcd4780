import type { Env } from "../env";
import type { Stage, StageContext } from "../http/context";
import { randomBase62 } from "../keys/key-format";
import * as clock from "../util/clock";
import { encodeBatch, MAX_BATCH_SPAN_MS, USER_AGENT_CHARS, type UsageBatchRow, type UsageCall, type UsageOutcome } from "./usage-batches";
import { seenAddresses, usageLogFor } from "./usage-client";
import type { UsageAccount } from "./usage-log-object";

/**
 * Per-call usage of API keys, recorded after the response is sent (`waitUntil`), so it
 * adds no latency. An isolate gathers calls per account and key, and sends each account's
 * calls as one append to the account's usage log object (src/usage/usage-log-object.ts),
 * one row per key there (src/usage/usage-batches.ts): an account's calls go as soon as one
 * of its keys holds CALLS_PER_BATCH calls or BATCH_CHARS characters of them, the rest when
 * USAGE_FLUSH_MS has passed since the first call that found no flush scheduled, or at once
 * when all accounts' calls together reach PENDING_CHARS (so an isolate never holds more,
 * however many accounts and keys call it). So no database or object takes every
 * account's calls (docs/scale.md). A failed append is tried again (APPEND_RETRIES_MS),
 * then logged with the calls it lost, never dropped silently.
 * Calls still gathered when the isolate dies (at most USAGE_FLUSH_MS of them) are lost:
 * usage is a record, never what admits a call.
 */
// A row is written per key per append, so each costs what a row costs whatever its size
// (bench: 64 calls a row cost about 0.03 ms of CPU per request more than 256).
export const CALLS_PER_BATCH = 256;
/**
 * A row stays far below SQLite's 2 MB row limit however long the calls' paths and user agents
 * (256 calls of 8 KB paths would not): a key's calls go once their text passes this.
 */
export const BATCH_CHARS = 256 * 1024;
/** The most call text an isolate holds for all accounts together before it appends every account's calls. */
export const PENDING_CHARS = 4 * BATCH_CHARS;
/** What a call adds to its row beside its path and user agent (the other fields, the JSON around them), generously. */
const CALL_OVERHEAD_CHARS = 160;
/** The longest text form of an IPv6 address (with an IPv4 tail). */
const ADDRESS_CHARS = 45;
/** A flush later than this past its time was lost (its request's context ended): the next call schedules another. */
const LOST_FLUSH_MARGIN_MS = 5_000;
/** Waits before an append that failed is tried again; after the last, its calls are counted lost. */
export const APPEND_RETRIES_MS = [100, 1_000];
/** Appends of one flush under way at once (a request's simultaneous outgoing connections are 6). */
const APPENDS_AT_ONCE = 6;

interface Gathered {
  calls: UsageCall[];
  chars: number;
}

interface AccountCalls extends UsageAccount {
  keys: Map<string, Gathered>;
  /** The characters of all its keys' calls. */
  chars: number;
}

/** By `<product>:<account>`. */
const pending = new Map<string, AccountCalls>();
/** The characters of every call in `pending`. */
let pendingChars = 0;
/** The flush that will take `pending`: when it was scheduled, and how to run it now. */
let scheduled: { at: number; delay: number; now: () => void } | null = null;
/** Calls this isolate could not append after every try, since it started: in each `usage_write_failed` line. */
let lostCalls = 0;

/** Records each call made with a key once its answer is made (identify ran before this stage). */
export const recordKeyUsage: Stage = { after: record };

function record(c: StageContext): void {
  const identity = c.get("identity");
  if (identity?.via !== "key" || !identity.keyId) return;
  const name = `${identity.product}:${identity.accountId}`;
  let account = pending.get(name);
  if (!account) {
    account = { product: identity.product, accountId: identity.accountId, keys: new Map(), chars: 0 };
    pending.set(name, account);
  }
  let gathered = account.keys.get(identity.keyId);
  if (!gathered) {
    gathered = { calls: [], chars: 0 };
    account.keys.set(identity.keyId, gathered);
  }
  const call = callOf(c);
  const chars = CALL_OVERHEAD_CHARS + call.path.length + (call.userAgent?.length ?? 0);
  gathered.calls.push(call);
  gathered.chars += chars;
  account.chars += chars;
  pendingChars += chars;
  if (gathered.calls.length >= CALLS_PER_BATCH || gathered.chars >= BATCH_CHARS) {
    pending.delete(name);
    pendingChars -= account.chars;
    c.executionCtx.waitUntil(append(c.env, account));
    // Nothing left for the scheduled flush: let its request finish now.
    if (pending.size === 0) scheduled?.now();
  } else if (pendingChars >= PENDING_CHARS) {
    c.executionCtx.waitUntil(appendAll(c.env, takeAll()));
    scheduled?.now();
  }
  if (pending.size > 0 && (!scheduled || Date.now() - scheduled.at > scheduled.delay + LOST_FLUSH_MARGIN_MS)) {
    c.executionCtx.waitUntil(flushAfter(c.env, c.get("settings").USAGE_FLUSH_MS));
  }
}

function callOf(c: StageContext): UsageCall {
  const cf = c.req.raw.cf as IncomingRequestCfProperties | undefined;
  return {
    at: Date.now(),
    method: c.req.method,
    path: c.get("target").originPath,
    status: c.res.status,
    requestId: c.get("requestId"),
    clientAddress: c.req.header("cf-connecting-ip")?.trim().slice(0, ADDRESS_CHARS) || null,
    country: typeof cf?.country === "string" ? cf.country : null,
    asn: typeof cf?.asn === "number" ? cf.asn : null,
    userAgent: c.req.header("user-agent")?.slice(0, USER_AGENT_CHARS) || null,
    outcome: c.get("admission") ? "admitted" : refusalOf(c.res.status),
  };
}

function refusalOf(status: number): UsageOutcome {
  if (status === 401) return "invalid_credential";
  if (status === 403) return "forbidden";
  if (status === 429) return "rate_limited";
  return "refused";
}

async function flushAfter(env: Env, delay: number): Promise<void> {
  let now!: () => void;
  const due = new Promise<void>((resolve) => (now = resolve));
  const flush = { at: Date.now(), delay, now };
  scheduled = flush;
  const timer = setTimeout(now, delay);
  await due;
  clearTimeout(timer);
  if (scheduled === flush) scheduled = null;
  await appendAll(env, takeAll());
}

/** Every account's gathered calls, leaving none gathered. */
function takeAll(): AccountCalls[] {
  const accounts = [...pending.values()];
  pending.clear();
  pendingChars = 0;
  return accounts;
}

async function appendAll(env: Env, accounts: AccountCalls[]): Promise<void> {
  for (let i = 0; i < accounts.length; i += APPENDS_AT_ONCE)
    await Promise.all(accounts.slice(i, i + APPENDS_AT_ONCE).map((a) => append(env, a)));
}

/** A key's calls as rows, a new row wherever the calls would span more than MAX_BATCH_SPAN_MS (a late flush). */
function rowsOf(keyId: string, calls: UsageCall[]): UsageBatchRow[] {
  const rows: UsageBatchRow[] = [];
  let start = 0;
  for (let i = 1; i <= calls.length; i++) {
    if (i === calls.length || calls[i]!.at - calls[start]!.at > MAX_BATCH_SPAN_MS) {
      rows.push(encodeBatch(keyId, randomBase62(10), calls.slice(start, i)));
      start = i;
    }
  }
  return rows;
}

/**
 * One account's gathered calls to its usage log, tried again after each of APPEND_RETRIES_MS.
 * A repeat writes nothing twice: the rows keep their batch ids, and the object ignores a
 * row it has.
 */
async function append(env: Env, account: AccountCalls): Promise<void> {
  const rows = [...account.keys].flatMap(([keyId, { calls }]) => rowsOf(keyId, calls));
  const seen = seenAddresses([...account.keys.values()].flatMap(({ calls }) => calls));
  const { product, accountId } = account;
  for (let attempt = 0; ; attempt++) {
    try {
      await usageLogFor(env, account).append({ product, accountId }, rows, seen);
      return;
    } catch (err) {
      const wait = APPEND_RETRIES_MS[attempt];
      if (wait !== undefined) {
        await clock.sleep(wait);
        continue;
      }
      const calls = rows.reduce((n, r) => n + (JSON.parse(r.calls) as unknown[]).length, 0);
      lostCalls += calls;
      console.error(
        JSON.stringify({ msg: "usage_write_failed", product, account: accountId, calls, lost_total: lostCalls, error: String(err) }),
      );
      return;
    }
  }
}
