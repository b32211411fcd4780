import { createRoute, z } from "@hono/zod-openapi";
import { GatewayError } from "../../http/errors";
import { MAX_ROLL_GRACE_SECONDS, rollKey } from "../../keys/key-lifecycle";
import { iso, keyView } from "../../keys/views";
import { adminRoute } from "../admin-route";
import { requireKey } from "../require-key";
import { ADMIN_ERRORS, ADMIN_SECURITY, json, KeyIdParam, KeySchema, NOT_FOUND, RevokeContextSchema } from "../schemas";

const Body = RevokeContextSchema.extend({
  expire_old_in_seconds: z
    .number()
    .int()
    .min(0)
    .max(MAX_ROLL_GRACE_SECONDS)
    .openapi({ description: "How long the old key keeps working (0: it stops now; at most 30 days, never past its own expiry)" }),
}).strict();

const route = createRoute({
  method: "post",
  path: "/keys/{id}/roll",
  summary: "Roll a key: a successor now, the old key working until a grace period ends",
  description:
    "The successor inherits the label, scopes, plan, limit overrides, expiry and every counter (windows, daily caps, running jobs, safety record) and `replaces` the old key; its plaintext is in `key`, shown this once. The old key keeps working until `old_key.expires_at`, counted as the successor (one shared limit), and is refused from that moment on. A leak of the old key later does not revoke the successor.",
  tags: ["admin"],
  security: ADMIN_SECURITY,
  request: { params: KeyIdParam, body: { required: true, content: { "application/json": { schema: Body } } } },
  responses: {
    201: json(
      KeySchema.extend({
        key: z.string().openapi({ description: "The successor's plaintext, shown this once" }),
        old_key: KeySchema,
        old_key_ends_at: z.string().openapi({ description: "When the old key stops working" }),
      }).openapi("RolledKey"),
      "The successor",
    ),
    409: { description: "The key is revoked or expired: there is nothing to roll", content: ADMIN_ERRORS[400].content },
    ...NOT_FOUND,
    ...ADMIN_ERRORS,
  },
});

export const rollKeyRoute = adminRoute(route, async (c) => {
  const current = await requireKey(c.env, c.req.valid("param").id);
  const body = c.req.valid("json");
  const by = { actor: c.get("actor"), requestId: c.get("requestId") };
  const rolled = await rollKey(c.env, current, body.expire_old_in_seconds, by, { reason: body.reason, ticket: body.ticket });
  if (!rolled) throw new GatewayError("CONFLICT", "This key is revoked or expired; create a new key instead");
  const old = await requireKey(c.env, current.keyId);
  return c.json({ ...keyView(rolled.record), key: rolled.secret, old_key: keyView(old), old_key_ends_at: iso(rolled.oldEndsAt) }, 201);
});
