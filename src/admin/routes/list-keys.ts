import { createRoute, z } from "@hono/zod-openapi";
import { listKeys } from "../../keys/key-store";
import { decodeCursor, keyCursor, keyView, limitParam, page } from "../../keys/views";
import { adminRoute } from "../admin-route";
import { AccountIdSchema, ADMIN_ERRORS, ADMIN_SECURITY, json, KeySchema, ProductSchema } from "../schemas";

const time = z.iso.datetime({ offset: true });

// Strict: an unknown or misspelt filter is a 400, never a listing of every key.
const Query = z
  .object({
    product: ProductSchema.optional(),
    account: AccountIdSchema.optional(),
    status: z.enum(["active", "revoked", "expired"]).optional(),
    last4: z
      .string()
      .regex(/^[0-9A-Za-z?]{4}$/, "the key's last 4 characters")
      .optional()
      .openapi({ description: "The key's last 4 characters, exactly" }),
    label: z.string().min(1).max(100).optional().openapi({ description: "Part of the label, any case" }),
    created_after: time.optional().openapi({ description: "Created at or after this time" }),
    created_before: time.optional().openapi({ description: "Created before this time" }),
    limit: limitParam.openapi({ type: "integer", minimum: 1, maximum: 100, default: 50 }),
    cursor: z.string().max(200).optional(),
  })
  .strict();

const route = createRoute({
  method: "get",
  path: "/keys",
  summary: "List keys, newest first, filtered by product, account, status, last 4 characters, label and creation time",
  description: "An unknown query parameter is a 400, so a misspelt filter never returns every key.",
  tags: ["admin"],
  security: ADMIN_SECURITY,
  request: { query: Query },
  responses: {
    200: json(z.object({ keys: z.array(KeySchema), next_cursor: z.string().nullable() }), "A page of keys"),
    ...ADMIN_ERRORS,
  },
});

export const listKeysRoute = adminRoute(route, async (c) => {
  const q = c.req.valid("query");
  const after = decodeCursor(q.cursor, keyCursor);
  const rows = await listKeys(c.env, {
    product: q.product,
    accountId: q.account,
    status: q.status,
    last4: q.last4,
    label: q.label,
    createdAfter: q.created_after === undefined ? undefined : Date.parse(q.created_after),
    createdBefore: q.created_before === undefined ? undefined : Date.parse(q.created_before),
    limit: q.limit,
    after: after && { createdAt: after.c, keyId: after.k },
  });
  const { items, next_cursor } = page(rows, q.limit, (r) => ({ c: r.createdAt, k: r.keyId }));
  return c.json({ keys: items.map(keyView), next_cursor }, 200);
});
