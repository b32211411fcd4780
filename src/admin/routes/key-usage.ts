import { createRoute, z } from "@hono/zod-openapi";
import { listUsage, summariseAddresses, usagePosition } from "../../usage/usage-history";
import { decodeCursor, iso, limitParam, page } from "../../keys/views";
import { adminRoute } from "../admin-route";
import { CallSchema, callView } from "../call-view";
import { timeRangeOf, timeRangeQuery } from "../time-range";
import { requireKey } from "../require-key";
import { ADMIN_ERRORS, ADMIN_SECURITY, json, KeyIdParam, NOT_FOUND } from "../schemas";

const Query = z
  .object({
    ...timeRangeQuery,
    limit: limitParam.openapi({ type: "integer", minimum: 1, maximum: 100, default: 50 }),
    cursor: z.string().max(300).optional().openapi({ description: "`next_cursor` of the previous page (same since/until)" }),
  })
  .strict();

const Address = z
  .object({
    client_address: z.string().nullable(),
    first_seen: z.string(),
    last_seen: z.string(),
    calls: z.number(),
    admitted: z.number(),
    countries: z.array(z.string()),
    asns: z.array(z.number()),
  })
  .openapi("KeyUsageAddress");

const route = createRoute({
  method: "get",
  path: "/keys/{id}/usage",
  summary: "A key's per-call history, newest first, and a summary per client address",
  description:
    "Every call made with the key (admitted or refused), from the batched usage log, so an investigation can tell the customer's addresses from an attacker's. `addresses` summarises the whole since/until range (newest address first; `addresses_complete` false when the key has more history in it than one summary reads) and is the same on every page.",
  tags: ["admin"],
  security: ADMIN_SECURITY,
  request: { params: KeyIdParam, query: Query },
  responses: {
    200: json(
      z
        .object({
          key_id: z.string(),
          calls: z.array(CallSchema),
          next_cursor: z.string().nullable(),
          addresses: z.array(Address),
          addresses_complete: z.boolean(),
        })
        .openapi("KeyUsage"),
      "A page of calls",
    ),
    ...NOT_FOUND,
    ...ADMIN_ERRORS,
  },
});

export const keyUsageRoute = adminRoute(route, async (c) => {
  const record = await requireKey(c.env, c.req.valid("param").id);
  const q = c.req.valid("query");
  const { since, until } = timeRangeOf(q);
  const after = decodeCursor(q.cursor, usagePosition);
  const [rows, summary] = await Promise.all([
    listUsage(c.env, record.keyId, { limit: q.limit, after, since, until }),
    summariseAddresses(c.env, record.keyId, { since, until }),
  ]);
  const { items, next_cursor } = page(rows, q.limit, (r) => r.position);
  return c.json(
    {
      key_id: record.keyId,
      calls: items.map(callView),
      next_cursor,
      addresses: summary.addresses.map((a) => ({
        client_address: a.clientAddress,
        first_seen: iso(a.firstSeen),
        last_seen: iso(a.lastSeen),
        calls: a.calls,
        admitted: a.admitted,
        countries: a.countries,
        asns: a.asns,
      })),
      addresses_complete: summary.complete,
    },
    200,
  );
});
