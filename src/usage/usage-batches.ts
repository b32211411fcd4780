/**
 * The stored form of per-call key usage: table `key_usage_batches` of each account's usage
 * log object (src/usage/usage-log-object.ts), one row per key per append of an isolate
 * (src/usage/usage-log.ts) holding that key's calls as one JSON array. Storage bills rows
 * written, so a row per call (plus its indexes) cost about four writes per call; a batch
 * costs one write per append. The primary key (key_id, first_at, batch) is the only index:
 * it serves a key's history, its last use and retention.
 */

/**
 * No batch spans longer than this from its first call to its last: the flush splits a
 * key's calls to keep it so. Reads rely on it: a batch that starts before T holds no
 * call after T + MAX_BATCH_SPAN_MS.
 */
export const MAX_BATCH_SPAN_MS = 60_000;

/** How a call ended: `admitted` by the guard (whatever the origin answered), else the refusal's kind from its status. */
export type UsageOutcome = "admitted" | "invalid_credential" | "forbidden" | "rate_limited" | "refused";

export interface UsageCall {
  at: number;
  method: string;
  /** Without the query string. */
  path: string;
  status: number;
  requestId: string;
  /** CF-Connecting-IP as Cloudflare set it. */
  clientAddress: string | null;
  /** request.cf: ISO country code and autonomous system number. */
  country: string | null;
  asn: number | null;
  /** Truncated to USER_AGENT_CHARS. */
  userAgent: string | null;
  outcome: UsageOutcome;
}

export const USER_AGENT_CHARS = 256;

/** One call in a batch's `calls` array, positional to keep rows small; `at` is relative to the batch's first_at. */
export type StoredCall = [number, string, string, number, string, string | null, string | null, number | null, string | null, UsageOutcome];

export type UsageBatchRow = {
  key_id: string;
  first_at: number;
  batch: string;
  last_at: number;
  last_admitted_at: number | null;
  calls: string;
};

/** A batch row for calls of one key, oldest first, spanning at most MAX_BATCH_SPAN_MS. */
export function encodeBatch(keyId: string, batch: string, calls: UsageCall[]): UsageBatchRow {
  const first = calls[0]!.at;
  const admitted = calls.filter((c) => c.outcome === "admitted");
  return {
    key_id: keyId,
    first_at: first,
    batch,
    last_at: calls[calls.length - 1]!.at,
    last_admitted_at: admitted.length > 0 ? admitted[admitted.length - 1]!.at : null,
    calls: JSON.stringify(
      calls.map((c): StoredCall => [
        c.at - first,
        c.method,
        c.path,
        c.status,
        c.requestId,
        c.clientAddress,
        c.country,
        c.asn,
        c.userAgent,
        c.outcome,
      ]),
    ),
  };
}

export function decodeCalls(firstAt: number, calls: string): UsageCall[] {
  return (JSON.parse(calls) as StoredCall[]).map((call) => decodeCall(firstAt, call));
}

/** One call of a batch, as its `calls` array holds it (JSON.parse of one element). */
export function decodeCall(
  firstAt: number,
  [dt, method, path, status, requestId, clientAddress, country, asn, userAgent, outcome]: StoredCall,
): UsageCall {
  return { at: firstAt + dt, method, path, status, requestId, clientAddress, country, asn, userAgent, outcome };
}

/** Where a stored call holds its fields, for SQL reading a batch's `calls` with json_each (`$[n]`). */
export const STORED_CALL_FIELD = { dt: 0, clientAddress: 5, outcome: 9 } as const;
