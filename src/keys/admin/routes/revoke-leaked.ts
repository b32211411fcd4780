import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import { GatewayError } from "../../../http/errors";
import { hashKey } from "../../key-format";
import { revokeKey } from "../../key-lifecycle";
import { findKeyByHash, getKey, rotatedDescendants } from "../../key-store";
import { keyView } from "../../views";
import type { AdminEnv } from "../admin-auth";
import { requireKey } from "../require-key";
import { ADMIN_ERRORS, ADMIN_SECURITY, json, KeySchema, NOT_FOUND } from "../schemas";

export const route = createRoute({
  method: "post",
  path: "/keys/revoke-leaked",
  summary: "Revoke a key by its leaked plaintext (secret-scanning reports)",
  description:
    "The plaintext is hashed on arrival and never stored or logged. Keys rotated from the leaked one (by whoever held it) are revoked too.",
  tags: ["admin"],
  security: ADMIN_SECURITY,
  request: {
    body: { required: true, content: { "application/json": { schema: z.object({ key: z.string().min(1).max(512) }).strict() } } },
  },
  responses: { 200: json(KeySchema, "The revoked key"), ...NOT_FOUND, ...ADMIN_ERRORS },
});

export function registerRevokeLeaked(app: OpenAPIHono<AdminEnv>) {
  app.openapi(route, async (c) => {
    const ref = await findKeyByHash(c.env, await hashKey(c.req.valid("json").key), (p) => c.executionCtx.waitUntil(p));
    const record = ref && (await getKey(c.env, ref.keyId));
    if (!record) throw new GatewayError("NOT_FOUND", "Key not found");
    const by = { actor: c.get("actor"), requestId: c.get("requestId") };
    await revokeKey(c.env, record, by, "key.revoke_leaked");
    for (const descendant of await rotatedDescendants(c.env, record.keyId)) await revokeKey(c.env, descendant, by, "key.revoke_leaked");
    return c.json(keyView(await requireKey(c.env, record.keyId)), 200);
  });
}
