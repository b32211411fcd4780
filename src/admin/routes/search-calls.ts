import { createRoute, z } from "@hono/zod-openapi";
import { GatewayError } from "../../http/errors";
import { ACROSS_ACCOUNTS_MS, searchCalls, searchPosition, summariseKeys, type CallSearch } from "../../usage/usage-history";
import { decodeCursor, iso, limitParam, page } from "../../keys/views";
import { adminRoute } from "../admin-route";
import { CallSchema, callView } from "../call-view";
import { timeRangeOf, timeRangeQuery } from "../time-range";
import { AccountIdSchema, ADMIN_ERRORS, ADMIN_SECURITY, json, ProductSchema } from "../schemas";

const Query = z
  .object({
    product: ProductSchema.optional(),
    account: AccountIdSchema.optional().openapi({ description: "One account of `product`; without it, every account" }),
    address: z
      .union([z.ipv4(), z.ipv6()])
      .optional()
      .openapi({ description: "A client address, exactly (IPv6 in any case; Cloudflare sends it compressed)" }),
    since: timeRangeQuery.since.openapi({
      description: "Only calls at or after this time; default and earliest across all accounts: 24 hours ago",
    }),
    until: timeRangeQuery.until.openapi({ description: "Only calls at or before this time; default: now" }),
    limit: limitParam.openapi({ type: "integer", minimum: 1, maximum: 100, default: 50 }),
    cursor: z.string().max(400).optional().openapi({ description: "`next_cursor` of the previous page (same filters)" }),
  })
  .strict();

const FoundCall = CallSchema.extend({ key_id: z.string(), product: ProductSchema, account: z.string() }).openapi("FoundCall");

const KeySeen = z
  .object({
    key_id: z.string(),
    product: ProductSchema,
    account: z.string(),
    label: z.string().nullable(),
    prefix: z.string(),
    last4: z.string(),
    first_seen: z.string(),
    last_seen: z.string(),
    calls: z.number(),
    admitted: z.number(),
  })
  .openapi("KeySeen");

const route = createRoute({
  method: "get",
  path: "/calls",
  summary: "Search calls by client address and time: within one account, or across all accounts for the last 24 hours",
  description:
    "Every call made with a key (admitted or refused) that matches, newest first, with its key, and `keys`: per key, its matching calls over the whole range (which keys an address used, and when; the most recently used first, at most 100, `keys_complete` false past that). With `product` and `account`: that account's keys, over any range the usage log still holds (USAGE_RETENTION_DAYS). Without `account`: every account's (of `product`, if given), `since` at most 24 hours back. There is no index by address or time across keys: a search reads every stored call of the keys in scope in its range, so narrow the range.",
  tags: ["admin"],
  security: ADMIN_SECURITY,
  request: { query: Query },
  responses: {
    200: json(
      z
        .object({
          since: z.string(),
          until: z.string(),
          calls: z.array(FoundCall),
          next_cursor: z.string().nullable(),
          keys: z.array(KeySeen),
          keys_complete: z.boolean(),
        })
        .openapi("CallSearch"),
      "A page of calls and the keys they were made with",
    ),
    ...ADMIN_ERRORS,
  },
});

/** The query as a search: one account, or every account within ACROSS_ACCOUNTS_MS. */
function searchOf(q: z.infer<typeof Query>, now: number): CallSearch {
  if (q.account !== undefined && q.product === undefined) throw new GatewayError("BAD_REQUEST", "account: give its product too");
  const earliest = q.account === undefined ? now - ACROSS_ACCOUNTS_MS : 0;
  const { since = earliest, until = now } = timeRangeOf(q);
  if (since < earliest) {
    throw new GatewayError("BAD_REQUEST", "since: across all accounts at most 24 hours back; give product and account to search further");
  }
  if (since > until) throw new GatewayError("BAD_REQUEST", "since: must not be after until");
  return { product: q.product, accountId: q.account, address: q.address?.toLowerCase(), since, until };
}

export const searchCallsRoute = adminRoute(route, async (c) => {
  const q = c.req.valid("query");
  const search = searchOf(q, Date.now());
  const after = decodeCursor(q.cursor, searchPosition);
  const [rows, summary] = await Promise.all([searchCalls(c.env, search, { limit: q.limit, after }), summariseKeys(c.env, search)]);
  const { items, next_cursor } = page(rows, q.limit, (r) => r.position);
  return c.json(
    {
      since: iso(search.since),
      until: iso(search.until),
      calls: items.map((u) => ({ ...callView(u), key_id: u.keyId, product: u.product, account: u.accountId })),
      next_cursor,
      keys: summary.keys.map((k) => ({
        key_id: k.keyId,
        product: k.product,
        account: k.accountId,
        label: k.label,
        prefix: k.prefix,
        last4: k.last4,
        first_seen: iso(k.firstSeen),
        last_seen: iso(k.lastSeen),
        calls: k.calls,
        admitted: k.admitted,
      })),
      keys_complete: summary.complete,
    },
    200,
  );
});
