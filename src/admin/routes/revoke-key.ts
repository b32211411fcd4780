import { createRoute, z } from "@hono/zod-openapi";
import { revokeKey } from "../../keys/key-lifecycle";
import { keyView } from "../../keys/views";
import { adminRoute } from "../admin-route";
import { requireKey } from "../require-key";
import { ADMIN_ERRORS, ADMIN_SECURITY, json, KeyIdParam, KeySchema, NOT_FOUND, RevokeContextSchema } from "../schemas";

const Body = RevokeContextSchema.extend({
  invalidate_result_links: z
    .boolean()
    .default(false)
    .openapi({ description: "ZSky: also refuse every result link issued so far for the key's jobs (the next download is 403)" }),
}).strict();

const route = createRoute({
  method: "post",
  path: "/keys/{id}/revoke",
  summary: "Revoke a key: when this returns, no later request with it is admitted",
  description: "The optional reason and ticket are stored on the key and in the audit entry (with the acting identity).",
  tags: ["admin"],
  security: ADMIN_SECURITY,
  request: { params: KeyIdParam, body: { required: false, content: { "application/json": { schema: Body } } } },
  responses: {
    200: json(
      KeySchema.extend({ result_links_revoked: z.number().openapi({ description: "ZSky results whose outstanding links were refused" }) }),
      "The revoked key",
    ),
    ...NOT_FOUND,
    ...ADMIN_ERRORS,
  },
});

export const revokeKeyRoute = adminRoute(route, async (c) => {
  const record = await requireKey(c.env, c.req.valid("param").id);
  const body = c.req.valid("json") ?? { invalidate_result_links: false };
  const { resultLinksRevoked } = await revokeKey(c.env, record, { actor: c.get("actor"), requestId: c.get("requestId") }, "key.revoke", {
    reason: body.reason,
    ticket: body.ticket,
    revokeResultLinks: body.invalidate_result_links,
  });
  return c.json({ ...keyView(await requireKey(c.env, record.keyId)), result_links_revoked: resultLinksRevoked }, 200);
});
