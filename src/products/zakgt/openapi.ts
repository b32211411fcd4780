import { z } from "@hono/zod-openapi";
import { created as createdAs, ok as okAs } from "../../openapi/operation-doc";

/** ZakGT's bodies as its reference gives them (docs/contracts.md), and those of the key endpoints zgate answers. */
export const ZakgtError = z.object({ detail: z.string() }).openapi("ZakgtError", { example: { detail: "Not authenticated" } });

export const ZakgtSuccess = z
  .object({ status: z.literal("ok"), data: z.unknown(), request_id: z.string().nullable().optional() })
  .openapi("ZakgtSuccess", { description: "ZakGT's success envelope" });

export const ZakgtLoginRequest = z.object({ email: z.string(), password: z.string() }).openapi("ZakgtLoginRequest");
export const ZakgtRefreshRequest = z.object({ refresh_token: z.string() }).openapi("ZakgtRefreshRequest");
export const ZakgtTokens = ZakgtSuccess.extend({
  data: z.object({
    access_token: z.string(),
    refresh_token: z.string(),
    token_type: z.string().optional(),
    expires_in: z.number().optional(),
  }),
}).openapi("ZakgtTokens");

const ZakgtKey = z.object({
  id: z.string(),
  label: z.string().nullable(),
  prefix: z.string(),
  last4: z.string(),
  scopes: z.array(z.string()),
  plan: z.string().nullable(),
  limit_override: z.unknown().nullable(),
  status: z.enum(["active", "revoked", "expired"]),
  created_at: z.string(),
  expires_at: z.string().nullable(),
  revoked_at: z.string().nullable(),
  last_used_at: z.string().nullable(),
});
export const ZakgtKeyCreated = ZakgtSuccess.extend({
  data: ZakgtKey.extend({ key: z.string().openapi({ description: "The secret, shown this once" }) }),
}).openapi("ZakgtKeyCreated");
export const ZakgtKeyList = ZakgtSuccess.extend({
  data: z.object({ keys: z.array(ZakgtKey), next_cursor: z.string().nullable() }),
}).openapi("ZakgtKeyList");
export const ZakgtKeyRevoked = ZakgtSuccess.extend({ data: z.object({ id: z.string(), status: z.literal("revoked") }) }).openapi(
  "ZakgtKeyRevoked",
);
export const ZakgtKeyUsage = ZakgtSuccess.extend({
  data: z.object({
    key_id: z.string(),
    items: z.array(z.object({ time: z.string(), method: z.string(), path: z.string(), status: z.number(), request_id: z.string() })),
    next_cursor: z.string().nullable(),
  }),
}).openapi("ZakgtKeyUsage");

/** A ZakGT route's documentation: its answers are in ZakGT's success envelope unless said otherwise. */
export const ok = (summary: string, schema: z.ZodType = ZakgtSuccess, request?: z.ZodType) => okAs(summary, schema, request);
export const created = (summary: string, schema: z.ZodType = ZakgtSuccess, request?: z.ZodType) => createdAs(summary, schema, request);
