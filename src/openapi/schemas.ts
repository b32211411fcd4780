import { z } from "@hono/zod-openapi";
import type { ProductId } from "../products/types";

/**
 * Response bodies as the upstream references give them (quoted in docs/contracts.md),
 * and zgate's own where it answers itself. Request bodies that zgate enforces live
 * beside the code that enforces them (product modules, key routes) and are reused here.
 */

// ------------------------------------------------------------------ envelopes
export const ERROR_SCHEMAS: Record<ProductId, z.ZodType> = {
  zakgt: z.object({ detail: z.string() }).openapi("ZakgtError", { example: { detail: "Not authenticated" } }),
  zsky: z.object({ error: z.string(), status: z.string().optional() }).openapi("ZskyError", { example: { error: "Invalid API key" } }),
  zappway: z
    .object({ error: z.object({ code: z.string(), message: z.string() }) })
    .openapi("ZappwayError", { example: { error: { code: "UNAUTHORIZED", message: "Invalid or expired API key." } } }),
};

export const ZakgtSuccess = z
  .object({ status: z.literal("ok"), data: z.unknown(), request_id: z.string().nullable().optional() })
  .openapi("ZakgtSuccess", { description: "ZakGT's success envelope" });

export const ZappwaySuccess = z
  .object({ data: z.unknown(), meta: z.object({ page: z.number(), limit: z.number(), total: z.number() }).partial().optional() })
  .openapi("ZappwaySuccess");
// Request bodies of the endpoints the reference shows, as its examples show them (passed to the origin unread).
export const ZappwayAgentQuery = z
  .looseObject({ query: z.string(), conversationId: z.string().optional() })
  .openapi("ZappwayAgentQuery", { example: { query: "What is your return policy?" } });
export const ZappwayDatastoreUpsert = z
  .looseObject({
    documents: z.array(z.looseObject({ id: z.string(), text: z.string(), metadata: z.record(z.string(), z.unknown()).optional() })),
  })
  .openapi("ZappwayDatastoreUpsert", {
    example: { documents: [{ id: "doc-123", text: "Updated product description...", metadata: { source: "cms" } }] },
  });

// ------------------------------------------------------------------ ZakGT
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

// ------------------------------------------------------------------ ZSky
export const ZskyJobAccepted = z
  .object({ job_id: z.string(), status: z.literal("queued"), kind: z.enum(["image", "video"]), poll_url: z.string() })
  .openapi("ZskyJobAccepted");

export const ZskyJob = z
  .object({
    job_id: z.string(),
    status: z.enum(["queued", "running", "completed", "failed", "blocked"]),
    kind: z.enum(["image", "video"]),
    result_url: z.string().optional().openapi({ description: "Signed download URL, valid 24 hours (completed jobs)" }),
    expires_in: z.number().optional(),
    result_inline: z
      .object({ content_type: z.string(), encoding: z.literal("base64"), data: z.string() })
      .optional()
      .openapi({ description: "Zero-retention jobs (X-ZSky-Store: 0): the bytes, never persisted" }),
    error: z.string().optional(),
  })
  .openapi("ZskyJob");

export const ZskyUsage = z
  .object({
    videos_used: z.number(),
    videos_overage: z.number(),
    images_used: z.number(),
    images_overage: z.number(),
    overage_charged_cents: z.number(),
    base_videos_allowance: z.number(),
    base_images_allowance: z.number(),
    month_start: z.string(),
  })
  .openapi("ZskyUsage");

export const ZskyRotated = z
  .object({ key: z.string(), key_id: z.string(), last4: z.string(), created_at: z.string(), replaces_key_id: z.string() })
  .openapi("ZskyRotated");
