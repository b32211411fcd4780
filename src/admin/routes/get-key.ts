import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import { keyView } from "../../keys/views";
import type { AdminEnv } from "../admin-auth";
import { requireKey } from "../require-key";
import { ADMIN_ERRORS, ADMIN_SECURITY, json, KeyIdParam, KeySchema, NOT_FOUND } from "../schemas";

export const route = createRoute({
  method: "get",
  path: "/keys/{id}",
  summary: "Get one key",
  tags: ["admin"],
  security: ADMIN_SECURITY,
  request: { params: KeyIdParam },
  responses: { 200: json(KeySchema, "The key"), ...NOT_FOUND, ...ADMIN_ERRORS },
});

export function registerGetKey(app: OpenAPIHono<AdminEnv>) {
  app.openapi(route, async (c) => {
    const record = await requireKey(c.env, c.req.valid("param").id);
    return c.json(keyView(record), 200);
  });
}
