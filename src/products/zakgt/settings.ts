import { z } from "zod";
import { optionalString } from "../../config/setting-types";
import type { ProductSettings } from "../types";

const fields = {
  ZAKGT_JWKS_URL: optionalString.pipe(z.url().optional()),
  ZAKGT_JWT_SECRET: optionalString.pipe(z.string().min(32, "must be at least 32 characters").optional()),
  ZAKGT_JWT_ISSUER: z.string().min(1).default("https://api.zakgt.net"),
  ZAKGT_JWT_AUDIENCE: z.string().min(1).default("zakgt-api"),
  // The access-token claim naming the user's account tier, which picks a session's plan limits.
  ZAKGT_TIER_CLAIM: z.string().min(1).max(100).default("tier"),
};

/** How zgate verifies ZakGT's access tokens (src/identify/jwt.ts). */
export const zakgtSettings: ProductSettings<typeof fields> = {
  fields,
  secrets: ["ZAKGT_JWT_SECRET"],
  urls: ["ZAKGT_JWKS_URL"],
  crossCheck(s, ctx) {
    if (!s.ZAKGT_JWKS_URL && !s.ZAKGT_JWT_SECRET) {
      ctx.addIssue({ code: "custom", path: ["ZAKGT_JWKS_URL"], message: "set ZAKGT_JWKS_URL (or ZAKGT_JWT_SECRET in development)" });
    }
    // A shared HS256 secret is a development convenience; deployed gateways verify
    // against the platform's published keys so the gateway can never mint tokens.
    if (s.ZAKGT_JWT_SECRET && s.ENVIRONMENT !== "development") {
      ctx.addIssue({ code: "custom", path: ["ZAKGT_JWT_SECRET"], message: "is only allowed when ENVIRONMENT is development" });
    }
  },
};
