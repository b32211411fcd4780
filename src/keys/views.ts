import { z } from "@hono/zod-openapi";
import { GatewayError } from "../http/errors";
import { allowance, windowLimit, windowSeconds } from "../limits/bounds";
import type { KeyLimitOverride } from "../limits/types";
import { keyStatus, type KeyRecord } from "./key-store";

/** The API's snake_case form of a per-key limit override. */
export const limitOverrideSchema = z
  .object({
    windows: z
      .record(z.string().regex(/^[a-z_]{1,40}$/), z.object({ limit: windowLimit, window_seconds: windowSeconds.optional() }).strict())
      .optional(),
    daily_per_key: z.object({ image: allowance, video: allowance }).partial().strict().optional(),
  })
  .strict();

export function limitOverrideFromApi(input: z.infer<typeof limitOverrideSchema>): KeyLimitOverride {
  return {
    windows:
      input.windows &&
      Object.fromEntries(Object.entries(input.windows).map(([name, w]) => [name, { limit: w.limit, windowSeconds: w.window_seconds }])),
    dailyPerKey: input.daily_per_key,
  };
}

function limitOverrideView(override: KeyLimitOverride) {
  return {
    windows:
      override.windows &&
      Object.fromEntries(Object.entries(override.windows).map(([name, w]) => [name, { limit: w.limit, window_seconds: w.windowSeconds }])),
    daily_per_key: override.dailyPerKey,
  };
}

export function iso(ms: number): string;
export function iso(ms: number | null): string | null;
export function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/** A key as every listing shows it: prefix and last 4 characters, never the secret or its hash. */
export function keyView(record: KeyRecord) {
  return {
    id: record.keyId,
    product: record.product,
    account: record.accountId,
    owner_user_id: record.ownerUserId,
    label: record.label,
    prefix: record.prefix,
    last4: record.last4,
    scopes: record.scopes,
    plan: record.plan,
    limit_override: record.limitOverride && limitOverrideView(record.limitOverride),
    status: keyStatus(record),
    imported: record.imported,
    created_at: iso(record.createdAt),
    expires_at: iso(record.expiresAt),
    revoked_at: iso(record.revokedAt),
    revoked_by: record.revokedBy,
    revoke_reason: record.revokeReason ?? null,
    revoke_ticket: record.revokeTicket ?? null,
    replaces: record.rotatedFrom ?? null,
    last_used_at: iso(record.lastUsedAt),
  };
}

/** Opaque pagination cursors: base64url JSON, validated on the way back in. */
export function encodeCursor(value: unknown): string {
  return btoa(JSON.stringify(value)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function decodeCursor<T>(cursor: string | undefined, schema: z.ZodType<T>): T | undefined {
  if (cursor === undefined || cursor === "") return undefined;
  try {
    return schema.parse(JSON.parse(atob(cursor.replace(/-/g, "+").replace(/_/g, "/"))));
  } catch {
    throw new GatewayError("BAD_REQUEST", "Invalid cursor");
  }
}

export const keyCursor = z.object({ c: z.number().int(), k: z.string().max(64) });
export const idCursor = z.object({ i: z.number().int().positive() });

/** Splits the extra record a list query fetched into `next_cursor`. */
export function page<T>(rows: T[], limit: number, cursorOf: (last: T) => unknown) {
  const items = rows.slice(0, limit);
  const next = rows.length > limit ? encodeCursor(cursorOf(items[items.length - 1]!)) : null;
  return { items, next_cursor: next };
}

export const limitParam = z.coerce.number().int().min(1).max(100).default(50);

/** Scope names as keys carry them: a module name (`ai`, `images`, ...) or `*` for all. */
export const scopesSchema = z
  .array(z.string().regex(/^(\*|[a-z_]{1,32})$/, "a scope is a module name or *"))
  .min(1)
  .max(32);
