import { createRoute, z } from "@hono/zod-openapi";
import { revokeUserCredentials } from "../../keys/key-lifecycle";
import { adminRoute } from "../admin-route";
import { accountIdParam, ADMIN_ERRORS, ADMIN_SECURITY, json, RevokeContextSchema } from "../schemas";

const route = createRoute({
  method: "post",
  path: "/users/{user_id}/revoke-sessions",
  summary: "Revoke every ZakGT session of a user (and optionally every key)",
  description:
    "Access tokens issued up to now are refused from the moment this returns: every token of the user whose `iat` is up to now + JWT_CLOCK_SKEW_SECONDS (a token issued before now may claim an `iat` that far ahead), so a login within that skew after this call is refused too; the user signs in again once it has passed.",
  tags: ["admin"],
  security: ADMIN_SECURITY,
  request: {
    params: z.object({
      user_id: accountIdParam("user_id"),
    }),
    body: {
      required: false,
      content: { "application/json": { schema: RevokeContextSchema.extend({ revoke_keys: z.boolean().default(false) }).strict() } },
    },
  },
  responses: {
    200: json(z.object({ user_id: z.string(), sessions_revoked: z.literal(true), keys_revoked: z.array(z.string()) }), "Revoked"),
    ...ADMIN_ERRORS,
  },
});

export const revokeSessionsRoute = adminRoute(route, async (c) => {
  const userId = c.req.valid("param").user_id;
  const body = c.req.valid("json");
  const by = { actor: c.get("actor"), requestId: c.get("requestId") };
  const keys = await revokeUserCredentials(c.env, userId, by, body?.revoke_keys ?? false, { reason: body?.reason, ticket: body?.ticket });
  return c.json({ user_id: userId, sessions_revoked: true as const, keys_revoked: keys }, 200);
});
