import { z } from "@hono/zod-openapi";
import { productById, products } from "../products/index";

/** Schemas shared by the admin routes; they validate requests and write the OpenAPI document. */

/**
 * A registered product's id, checked against the registry as each request is read; the
 * OpenAPI document's `Product` lists the registered ids (openapi/document.ts).
 */
export const ProductSchema = z
  .string()
  .refine((id) => productById(id) !== undefined, {
    error: () =>
      `Invalid option: expected one of ${products()
        .map((p) => JSON.stringify(p.id))
        .join("|")}`,
  })
  .openapi("Product");

/**
 * An account or user id (a ZSky account, a ZappWay organization, a ZakGT user), as every
 * admin route takes one. It names the account's guard object, is stored in D1 and sent to
 * origins in the `account` claim of zgate's assertion, so it is held to a plain charset
 * that every log, key and origin takes as it is.
 */
export const AccountIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9_.:@-]{1,128}$/, "1 to 128 characters: letters, digits and _ . : @ -")
  .openapi("AccountId", { example: "acct_demo", description: "1 to 128 characters: letters, digits and `_ . : @ -`" });

/** AccountIdSchema as the path parameter `name`. */
export const accountIdParam = (name: string) => AccountIdSchema.openapi({ param: { name, in: "path" } });

export const ErrorSchema = z
  .object({ error: z.object({ code: z.string(), message: z.string() }) })
  .openapi("GatewayError", { example: { error: { code: "NOT_FOUND", message: "Key not found" } } });

export const KeySchema = z
  .object({
    id: z.string(),
    product: ProductSchema,
    account: z.string(),
    owner_user_id: z.string().nullable(),
    label: z.string().nullable(),
    prefix: z.string().openapi({ example: "zsky_live_" }),
    last4: z.string(),
    scopes: z.array(z.string()),
    plan: z.string().nullable(),
    limit_override: z
      .object({
        windows: z.record(z.string(), z.object({ limit: z.number(), window_seconds: z.number().optional() })).optional(),
        daily_per_key: z.object({ image: z.number().optional(), video: z.number().optional() }).optional(),
      })
      .nullable(),
    status: z.enum(["active", "revoked", "expired"]),
    imported: z.boolean(),
    created_at: z.string(),
    expires_at: z.string().nullable(),
    revoked_at: z.string().nullable(),
    revoked_by: z
      .string()
      .nullable()
      .openapi({ description: "Who revoked it: admin:token, admin:<Access email>, secret-scanning:github, report:public, ..." }),
    revoke_reason: z.string().nullable(),
    revoke_ticket: z.string().nullable(),
    replaces: z.string().nullable().openapi({ description: "The key this one replaced (a roll or a ZSky rotation)" }),
    last_used_at: z.string().nullable().openapi({ description: "The key's last call the guard admitted (refused calls never set it)" }),
  })
  .openapi("Key");

/** The optional context every revoke takes; stored on the key and in the audit entry. */
export const RevokeContextSchema = z.object({
  reason: z.string().trim().min(1).max(500).optional().openapi({ description: "Why, in words (stored on the key and in the audit log)" }),
  ticket: z
    .string()
    .trim()
    .min(1)
    .max(200)
    .optional()
    .openapi({ description: "The incident or ticket reference tracking this revocation" }),
});

export const KeyIdParam = z.object({
  id: z
    .string()
    .min(1)
    .max(64)
    .openapi({ param: { name: "id", in: "path" } }),
});

/** An error answer in the gateway envelope, for an OpenAPI `responses` entry (admin and security routes). */
export const errorResponse = (description: string) => ({ description, content: { "application/json": { schema: ErrorSchema } } });

/** Error responses every admin operation can give. */
export const ADMIN_ERRORS = {
  400: errorResponse("Invalid request"),
  401: errorResponse("Missing or invalid admin credentials"),
  429: errorResponse("Too many failed admin authentications from this client address (Retry-After)"),
  503: errorResponse("Admin API not configured (or turned off by a bad setting), or a dependency unavailable"),
} as const;

export const NOT_FOUND = { 404: errorResponse("No such key") } as const;

export const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

export const ADMIN_SECURITY: Record<string, string[]>[] = [{ AdminToken: [] }, { CloudflareAccess: [] }];
