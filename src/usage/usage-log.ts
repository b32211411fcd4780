import type { Context, MiddlewareHandler } from "hono";
import type { Env } from "../env";
import type { AppEnv } from "../http/context";
import { randomBase62 } from "../keys/key-format";
import { encodeBatch, MAX_BATCH_SPAN_MS, USER_AGENT_CHARS, type UsageBatchRow, type UsageCall, type UsageOutcome } from "./usage-batches";

/**
 * Per-call usage of API keys, recorded after the response is sent (`waitUntil`), so it
 * adds no latency. An isolate gathers calls per key and writes each key's calls as one
 * row (src/usage/usage-batches.ts): a key's row goes as soon as it holds CALLS_PER_BATCH
 * calls or BATCH_CHARS characters of them, the rest when USAGE_FLUSH_MS has passed since
 * the first call that found no flush scheduled. One D1 batch per flush, one row per key
 * in it. Calls still gathered when an isolate is evicted (at most USAGE_FLUSH_MS of them)
 * are lost, like a write that fails (logged): usage is a record, never what admits a call.
 */
// Each write is a D1 round trip whatever its size, and was the dearest part of a hot keyed
// request (bench: 64 calls a row cost about 0.03 ms of CPU per request more than 256).
export const CALLS_PER_BATCH = 256;
/**
 * A row stays far below D1's 2 MB row limit however long the calls' paths and user agents
 * (256 calls of 8 KB paths would not): a key's calls go once their text passes this.
 */
export const BATCH_CHARS = 256 * 1024;
/** What a call adds to its row beside its path and user agent (the other fields, the JSON around them), generously. */
const CALL_OVERHEAD_CHARS = 160;
/** The longest text form of an IPv6 address (with an IPv4 tail). */
const ADDRESS_CHARS = 45;
/** A flush later than this past its time was lost (its request's context ended): the next call schedules another. */
const LOST_FLUSH_MARGIN_MS = 5_000;

interface Gathered {
  calls: UsageCall[];
  chars: number;
}

const pending = new Map<string, Gathered>();
/** The flush that will take `pending`: when it was scheduled, and how to run it now. */
let scheduled: { at: number; delay: number; now: () => void } | null = null;

export const recordKeyUsage: MiddlewareHandler<AppEnv> = async (c, next) => {
  await next();
  const identity = c.get("identity");
  if (identity?.via !== "key" || !identity.keyId) return;
  let gathered = pending.get(identity.keyId);
  if (!gathered) {
    gathered = { calls: [], chars: 0 };
    pending.set(identity.keyId, gathered);
  }
  const call = callOf(c);
  gathered.calls.push(call);
  gathered.chars += CALL_OVERHEAD_CHARS + call.path.length + (call.userAgent?.length ?? 0);
  if (gathered.calls.length >= CALLS_PER_BATCH || gathered.chars >= BATCH_CHARS) {
    pending.delete(identity.keyId);
    c.executionCtx.waitUntil(write(c.env, rowsOf(identity.keyId, gathered.calls)));
    // Nothing left for the scheduled flush: let its request finish now.
    if (pending.size === 0) scheduled?.now();
  }
  if (pending.size > 0 && (!scheduled || Date.now() - scheduled.at > scheduled.delay + LOST_FLUSH_MARGIN_MS)) {
    c.executionCtx.waitUntil(flushAfter(c.env, c.get("settings").USAGE_FLUSH_MS));
  }
};

function callOf(c: Context<AppEnv>): UsageCall {
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
  const rows = [...pending].flatMap(([keyId, { calls }]) => rowsOf(keyId, calls));
  pending.clear();
  await write(env, rows);
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

// D1 binds at most 100 parameters per statement: 16 rows of 6 per INSERT.
const ROWS_PER_INSERT = 16;

async function write(env: Env, rows: UsageBatchRow[]): Promise<void> {
  if (rows.length === 0) return;
  const statements: D1PreparedStatement[] = [];
  for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) {
    const chunk = rows.slice(i, i + ROWS_PER_INSERT);
    const sql = `INSERT INTO key_usage_batches (key_id, first_at, batch, last_at, last_admitted_at, calls) VALUES ${chunk.map(() => "(?, ?, ?, ?, ?, ?)").join(", ")}`;
    statements.push(
      env.DB.prepare(sql).bind(...chunk.flatMap((r) => [r.key_id, r.first_at, r.batch, r.last_at, r.last_admitted_at, r.calls])),
    );
  }
  try {
    await env.DB.batch(statements);
  } catch {
    console.error(JSON.stringify({ msg: "usage_write_failed", rows: rows.length }));
  }
}
