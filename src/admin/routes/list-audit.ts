import { createRoute, z } from "@hono/zod-openapi";
import { listAudit } from "../../audit/audit-log";
import { decodeCursor, idCursor, iso, limitParam, page } from "../../keys/views";
import { adminRoute } from "../admin-route";
import { ADMIN_ERRORS, ADMIN_SECURITY, json } from "../schemas";

const Entry = z
  .object({
    id: z.number(),
    at: z.string(),
    actor: z.string(),
    action: z.string(),
    target: z.string().nullable(),
    product: z.string().nullable(),
    account: z.string().nullable(),
    request_id: z.string(),
    detail: z.record(z.string(), z.unknown()).nullable(),
  })
  .openapi("AuditEntry");

const route = createRoute({
  method: "get",
  path: "/audit",
  summary: "Read the audit log, newest first",
  tags: ["admin"],
  security: ADMIN_SECURITY,
  request: {
    query: z.object({
      target: z.string().max(200).optional(),
      action: z.string().max(64).optional(),
      actor: z
        .string()
        .max(300)
        .optional()
        .openapi({ description: "Who acted, exactly: admin:token, admin:<Access email>, secret-scanning:github, report:public, ..." }),
      limit: limitParam.openapi({ type: "integer", minimum: 1, maximum: 100, default: 50 }),
      cursor: z.string().max(200).optional(),
    }),
  },
  responses: { 200: json(z.object({ entries: z.array(Entry), next_cursor: z.string().nullable() }), "A page of entries"), ...ADMIN_ERRORS },
});

export const listAuditRoute = adminRoute(route, async (c) => {
  const q = c.req.valid("query");
  const before = decodeCursor(q.cursor, idCursor);
  const rows = await listAudit(c.env, { target: q.target, action: q.action, actor: q.actor, before: before?.i, limit: q.limit });
  const { items, next_cursor } = page(rows, q.limit, (r) => ({ i: r.id }));
  const entries = items.map(({ account_id, at, ...rest }) => ({ ...rest, at: iso(at), account: account_id }));
  return c.json({ entries, next_cursor }, 200);
});
