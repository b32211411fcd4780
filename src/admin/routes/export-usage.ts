import { createRoute, z } from "@hono/zod-openapi";
import { writeAudit } from "../../audit/audit-log";
import { callsNewestFirst, usagePosition, type UsageRecord } from "../../usage/usage-history";
import { decodeCursor, page } from "../../keys/views";
import { adminRoute } from "../admin-route";
import { EXPORT_MEDIA_TYPES, exportStream, type ExportFormat } from "../call-export";
import { callView } from "../call-view";
import { requireKey } from "../require-key";
import { timeRangeOf, timeRangeQuery } from "../time-range";
import { ADMIN_ERRORS, ADMIN_SECURITY, KeyIdParam, NOT_FOUND } from "../schemas";

/** The most calls one export answers; the rest by its `Link: rel="next"`. Read before the first byte, so bounded. */
export const EXPORT_MAX_CALLS = 10_000;
/** Batches read from D1 at a time (up to 256 calls each). */
const BATCHES_PER_READ = 64;

const Query = z
  .object({
    format: z.enum(["ndjson", "csv"]).default("ndjson").openapi({ description: "NDJSON (one call a line) or CSV with a header row" }),
    ...timeRangeQuery,
    limit: z.coerce
      .number()
      .int()
      .min(1)
      .max(EXPORT_MAX_CALLS)
      .default(EXPORT_MAX_CALLS)
      .openapi({ type: "integer", minimum: 1, maximum: EXPORT_MAX_CALLS, default: EXPORT_MAX_CALLS }),
    cursor: z.string().max(300).optional().openapi({ description: "From the previous file's `Zgate-Next-Cursor` (same since/until)" }),
  })
  .strict();

const header = (description: string) => ({ description, schema: { type: "string" as const } });

const route = createRoute({
  method: "get",
  path: "/keys/{id}/usage/export",
  summary: "Export a key's calls as NDJSON or CSV, newest first",
  description:
    'The calls of `GET /keys/{id}/usage` (the same fields, with `key_id`) as a download, at most `limit` (10,000) a file, newest first. When the range holds more, `Link: <…>; rel="next"` and `Zgate-Next-Cursor` name the next file. In CSV, text is quoted and a cell a spreadsheet would read as a formula (starting with =, +, -, @, a tab or a carriage return) starts with an apostrophe. Audited as `key.export_usage`.',
  tags: ["admin"],
  security: ADMIN_SECURITY,
  request: { params: KeyIdParam, query: Query },
  responses: {
    200: {
      description: "The calls",
      headers: {
        "Content-Disposition": header('attachment; filename="<key id>-calls.ndjson" (or .csv)'),
        "Zgate-Export-Calls": header("How many calls this file holds"),
        "Zgate-Next-Cursor": header("When more calls are in the range: the `cursor` of the next file"),
        Link: header('When more calls are in the range: <the next file>; rel="next"'),
      },
      content: {
        [EXPORT_MEDIA_TYPES.ndjson]: {
          schema: z.string().openapi({ description: "One JSON object a line, as `KeyUsageCall` with `key_id`" }),
        },
        [EXPORT_MEDIA_TYPES.csv]: {
          schema: z.string().openapi({
            description: "time,key_id,method,path,status,outcome,client_address,country,asn,user_agent,request_id",
          }),
        },
      },
    },
    ...NOT_FOUND,
    ...ADMIN_ERRORS,
  },
});

export const exportUsageRoute = adminRoute(route, async (c) => {
  const record = await requireKey(c.env, c.req.valid("param").id);
  const q = c.req.valid("query");
  const { since, until } = timeRangeOf(q);
  const after = decodeCursor(q.cursor, usagePosition);
  const read: UsageRecord[] = [];
  for await (const call of callsNewestFirst(c.env, record.keyId, { since, until, after }, BATCHES_PER_READ)) {
    if (read.push(call) > q.limit) break;
  }
  const { items, next_cursor } = page(read, q.limit, (r) => r.position);
  const format: ExportFormat = q.format;
  await writeAudit(c.env, {
    actor: c.get("actor"),
    action: "key.export_usage",
    target: record.keyId,
    product: record.product,
    accountId: record.accountId,
    requestId: c.get("requestId"),
    detail: { format, since: q.since ?? null, until: q.until ?? null, calls: items.length },
  });
  const headers: Record<string, string> = {
    "Content-Type": EXPORT_MEDIA_TYPES[format],
    "Content-Disposition": `attachment; filename="${record.keyId}-calls.${format}"`,
    "Zgate-Export-Calls": String(items.length),
  };
  if (next_cursor) {
    const next = new URL(c.req.url);
    next.searchParams.set("cursor", next_cursor);
    headers["Zgate-Next-Cursor"] = next_cursor;
    headers.Link = `<${next.pathname}${next.search}>; rel="next"`;
  }
  const calls = items.map((u) => ({ ...callView(u), key_id: record.keyId }));
  return c.body(exportStream(format, calls), 200, headers);
});
