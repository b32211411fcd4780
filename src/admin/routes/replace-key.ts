import { createRoute, z } from "@hono/zod-openapi";
import { replaceKey } from "../../keys/key-lifecycle";
import { keyView } from "../../keys/views";
import { adminRoute } from "../admin-route";
import { requireKey } from "../require-key";
import { ADMIN_ERRORS, ADMIN_SECURITY, json, KeyIdParam, KeySchema, NOT_FOUND, RevokeContextSchema } from "../schemas";

const Body = RevokeContextSchema.strict();

const route = createRoute({
  method: "post",
  path: "/keys/{id}/replace",
  summary: "Issue a replacement for a key that can no longer be rolled (revoked, e.g. as leaked, or expired)",
  description:
    "A new key (201, its plaintext in `key`, shown this once) with the old key's product, account, owner, label, scopes, plan and limits, and its expiry when that is still ahead; `replaces` the old key. It shares no counters with the old key and counts against the account's active-key limit. The reason and ticket go in the audit entries (`key.create` on the new key, `key.replace` on the old one). A revocation of the old key later, as leaked or not, never reaches it.",
  tags: ["admin"],
  security: ADMIN_SECURITY,
  request: { params: KeyIdParam, body: { required: false, content: { "application/json": { schema: Body } } } },
  responses: {
    201: json(
      KeySchema.extend({
        key: z.string().openapi({ description: "The replacement's plaintext, shown this once" }),
        old_key: KeySchema,
      }).openapi("ReplacementKey"),
      "The replacement",
    ),
    409: {
      description:
        "The key is still active (roll it instead), or the account already holds MAX_ACTIVE_KEYS_PER_ACCOUNT (MAX_ACTIVE_KEYS_PER_USER) active keys",
      content: ADMIN_ERRORS[400].content,
    },
    ...NOT_FOUND,
    ...ADMIN_ERRORS,
  },
});

export const replaceKeyRoute = adminRoute(route, async (c) => {
  const old = await requireKey(c.env, c.req.valid("param").id);
  const body = c.req.valid("json") ?? {};
  const by = { actor: c.get("actor"), requestId: c.get("requestId") };
  const { record, secret } = await replaceKey(c.env, old, by, { reason: body.reason, ticket: body.ticket });
  return c.json({ ...keyView(record), key: secret, old_key: keyView(old) }, 201);
});
