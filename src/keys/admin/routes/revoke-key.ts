import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import { revokeKey } from "../../key-lifecycle";
import { keyView } from "../../views";
import type { AdminEnv } from "../admin-auth";
import { requireKey } from "../require-key";
import { ADMIN_ERRORS, ADMIN_SECURITY, json, KeyIdParam, KeySchema, NOT_FOUND } from "../schemas";

export const route = createRoute({
  method: "post",
  path: "/keys/{id}/revoke",
  summary: "Revoke a key: when this returns, no later request with it is admitted",
  tags: ["admin"],
  security: ADMIN_SECURITY,
  request: { params: KeyIdParam },
  responses: { 200: json(KeySchema, "The revoked key"), ...NOT_FOUND, ...ADMIN_ERRORS },
});

export function registerRevokeKey(app: OpenAPIHono<AdminEnv>) {
  app.openapi(route, async (c) => {
    const record = await requireKey(c.env, c.req.valid("param").id);
    await revokeKey(c.env, record, { actor: c.get("actor"), requestId: c.get("requestId") });
    return c.json(keyView(await requireKey(c.env, record.keyId)), 200);
  });
}
