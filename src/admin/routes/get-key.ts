import { createRoute } from "@hono/zod-openapi";
import { keyView } from "../../keys/views";
import { adminRoute } from "../admin-route";
import { requireKey } from "../require-key";
import { ADMIN_ERRORS, ADMIN_SECURITY, json, KeyIdParam, KeySchema, NOT_FOUND } from "../schemas";

const route = createRoute({
  method: "get",
  path: "/keys/{id}",
  summary: "Get one key",
  tags: ["admin"],
  security: ADMIN_SECURITY,
  request: { params: KeyIdParam },
  responses: { 200: json(KeySchema, "The key"), ...NOT_FOUND, ...ADMIN_ERRORS },
});

export const getKeyRoute = adminRoute(route, async (c) => {
  const record = await requireKey(c.env, c.req.valid("param").id);
  return c.json(keyView(record), 200);
});
