import { z } from "@hono/zod-openapi";

/** ZSky's bodies as its reference gives them (docs/contracts.md), and those of the endpoints zgate answers. */
export const ZskyError = z
  .object({ error: z.string(), status: z.string().optional() })
  .openapi("ZskyError", { example: { error: "Invalid API key" } });

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
