import { z } from "zod";

/**
 * The kinds of value a setting holds, shared by zgate's own settings (settings.ts) and the
 * settings a product's folder declares. Vars and secrets arrive as strings.
 */
export const hostList = z.string().transform((s) =>
  s
    .split(",")
    .map((h) => h.trim().toLowerCase())
    .filter(Boolean),
);
export const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);
export const originUrl = z.url({ protocol: /^https?$/ }).transform((u) => u.replace(/\/+$/, ""));
export const optionalString = z
  .string()
  .optional()
  .transform((s) => (s === undefined || s === "" ? undefined : s));

/** A setting whose value is JSON text. */
export const jsonText = z.string().transform((text, ctx) => {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    ctx.addIssue({ code: "custom", message: "is not valid JSON" });
    return z.NEVER;
  }
});
