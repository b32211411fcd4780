import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import { listKeys } from "../../key-store";
import { decodeCursor, keyCursor, keyView, limitParam, page } from "../../views";
import type { AdminEnv } from "../admin-auth";
import { ADMIN_ERRORS, ADMIN_SECURITY, json, KeySchema, ProductSchema } from "../schemas";

const Query = z.object({
  product: ProductSchema.optional(),
  account: z.string().min(1).max(200).optional(),
  status: z.enum(["active", "revoked", "expired"]).optional(),
  limit: limitParam.openapi({ type: "integer", minimum: 1, maximum: 100, default: 50 }),
  cursor: z.string().max(200).optional(),
});

export const route = createRoute({
  method: "get",
  path: "/keys",
  summary: "List keys, newest first, filtered by product, account and status",
  tags: ["admin"],
  security: ADMIN_SECURITY,
  request: { query: Query },
  responses: {
    200: json(z.object({ keys: z.array(KeySchema), next_cursor: z.string().nullable() }), "A page of keys"),
    ...ADMIN_ERRORS,
  },
});

export function registerListKeys(app: OpenAPIHono<AdminEnv>) {
  app.openapi(route, async (c) => {
    const q = c.req.valid("query");
    const after = decodeCursor(q.cursor, keyCursor);
    const rows = await listKeys(c.env, {
      product: q.product,
      accountId: q.account,
      status: q.status,
      limit: q.limit,
      after: after && { createdAt: after.c, keyId: after.k },
    });
    const { items, next_cursor } = page(rows, q.limit, (r) => ({ c: r.createdAt, k: r.keyId }));
    return c.json({ keys: items.map(keyView), next_cursor }, 200);
  });
}
