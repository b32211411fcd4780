import { utf8 } from "../util/utf8";
import type { StoredCall, UsageBatchRow } from "./usage-batches";

/**
 * The format of a usage log's archive in R2 (src/usage/usage-log-object.ts compacts its
 * rows into it): one object per compaction of an account's object, `usage/<object id>/<segment>`,
 * holding its keys' batches grouped by key. The object's SQLite keeps an index row per key
 * per segment (its byte range, and the first and last times of its batches), so a key's
 * history reads only its own slice of a segment, by a ranged GET.
 *
 * The object's body is a JSON array of slices; each slice, alone valid JSON, is
 * `[key id, [[first_at, batch, last_at, last_admitted_at, calls], …]]`: every batch whole,
 * with the batch id and calls it had, so a call keeps its position (time, batch start,
 * batch, index) and a cursor taken before a compaction goes on after it.
 */
export type ArchivedBatch = [firstAt: number, batch: string, lastAt: number, lastAdmittedAt: number | null, calls: StoredCall[]];
export type Slice = [keyId: string, batches: ArchivedBatch[]];

/** One key's slice of a segment: what the index keeps of it. */
export type SliceIndex = {
  key_id: string;
  min_first_at: number;
  max_first_at: number;
  last_at: number;
  last_admitted_at: number | null;
  start: number;
  end: number;
};

/**
 * Rows (ordered by key, then time) as a segment's body and the index of each key's slice
 * in it (byte ranges of the UTF-8 body).
 */
export function segmentOf(rows: UsageBatchRow[]): { body: Uint8Array; slices: SliceIndex[] } {
  const parts: Uint8Array[] = [utf8("[")];
  const slices: SliceIndex[] = [];
  let offset = 1;
  for (let i = 0; i < rows.length;) {
    const keyId = rows[i]!.key_id;
    let j = i;
    while (j < rows.length && rows[j]!.key_id === keyId) j++;
    const batches = rows.slice(i, j);
    const text = `${slices.length > 0 ? "," : ""}[${JSON.stringify(keyId)},[${batches
      .map((r) => `[${r.first_at},${JSON.stringify(r.batch)},${r.last_at},${r.last_admitted_at ?? "null"},${r.calls}]`)
      .join(",")}]]`;
    const bytes = utf8(text);
    const lead = slices.length > 0 ? 1 : 0;
    slices.push({
      key_id: keyId,
      min_first_at: batches[0]!.first_at,
      max_first_at: batches[batches.length - 1]!.first_at,
      last_at: Math.max(...batches.map((r) => r.last_at)),
      last_admitted_at: batches.reduce<number | null>(
        (m, r) => (r.last_admitted_at !== null && (m === null || r.last_admitted_at > m) ? r.last_admitted_at : m),
        null,
      ),
      start: offset + lead,
      end: offset + bytes.length,
    });
    parts.push(bytes);
    offset += bytes.length;
    i = j;
  }
  parts.push(utf8("]"));
  const body = new Uint8Array(offset + 1);
  let at = 0;
  for (const p of parts) (body.set(p, at), (at += p.length));
  return { body, slices };
}

/** A slice's batches as the rows they were. */
export function rowsOfSlice([keyId, batches]: Slice): UsageBatchRow[] {
  return batches.map(([first_at, batch, last_at, last_admitted_at, calls]) => ({
    key_id: keyId,
    first_at,
    batch,
    last_at,
    last_admitted_at,
    calls: JSON.stringify(calls),
  }));
}
