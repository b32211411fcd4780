import type { Context, MiddlewareHandler } from "hono";
import { jwtVerify, type JWTPayload } from "jose";
import { remoteKeySet } from "../../auth/jwt";
import { requireFeature } from "../../config/settings";
import type { AppEnv } from "../../http/context";
import { GatewayError } from "../../http/errors";
import { clientAddress } from "../../edge/client-address";
import { countFailure } from "../../edge/failed-auth";
import { FAILED_ADMIN_AUTH } from "../../limits/policies";
import { utf8 } from "../../util/utf8";

export type AdminEnv = AppEnv & { Variables: { actor: string } };

async function digest(value: string): Promise<ArrayBuffer> {
  return crypto.subtle.digest("SHA-256", utf8(value));
}

/**
 * Compares two secrets in constant time. Hashing first gives equal-length inputs, so
 * neither the content nor the length of the real token leaks through timing.
 */
export async function sameSecret(presented: string, expected: string): Promise<boolean> {
  const [a, b] = await Promise.all([digest(presented), digest(expected)]);
  return crypto.subtle.timingSafeEqual(a, b);
}

/**
 * Who an Access token speaks for, as the audit log shows it: its email, else its subject.
 * Either must be a plain printable string; anything else is not an identity.
 */
function accessIdentity(payload: JWTPayload): string {
  const who = typeof payload.email === "string" && payload.email !== "" ? payload.email : payload.sub;
  if (typeof who !== "string" || !/^[\x21-\x7e]{1,254}$/.test(who)) throw new Error("no usable identity");
  return who;
}

/** A presented admin credential that failed: limited per client address, 429 past the limit (edge/failed-auth.ts). */
function countAdminFailure(c: Context<AdminEnv>): Promise<void> {
  return countFailure(c.env, { guard: "admin", address: clientAddress(c.req.raw.headers), policy: FAILED_ADMIN_AUTH });
}

/** The identity of a valid Cloudflare Access token; anything else is a failed login (counted, 401). */
async function accessActor(c: Context<AdminEnv>, token: string): Promise<string> {
  const settings = c.get("settings");
  const jwks = settings.ACCESS_JWKS_URL ?? `https://${settings.ACCESS_TEAM_DOMAIN}/cdn-cgi/access/certs`;
  try {
    const { payload } = await jwtVerify(token, remoteKeySet(jwks, settings.JWKS_COOLDOWN_SECONDS), {
      issuer: `https://${settings.ACCESS_TEAM_DOMAIN}`,
      audience: settings.ACCESS_AUD,
      clockTolerance: settings.JWT_CLOCK_SKEW_SECONDS,
      // Access always sets `exp`; a token without one would never stop working.
      requiredClaims: ["exp"],
    });
    return accessIdentity(payload);
  } catch {
    await countAdminFailure(c);
    throw new GatewayError("UNAUTHORIZED", "Invalid admin credentials");
  }
}

/**
 * The admin API is for security and platform teams: `Authorization: Bearer <ADMIN_TOKEN>`
 * or, when ACCESS_TEAM_DOMAIN and ACCESS_AUD are set, a Cloudflare Access JWT in
 * `Cf-Access-Jwt-Assertion`. The actor (token or Access identity) goes into the audit log.
 */
export const adminAuth: MiddlewareHandler<AdminEnv> = async (c, next) => {
  const settings = c.get("settings");
  requireFeature(settings, "admin");
  const accessJwt = c.req.header("cf-access-jwt-assertion");
  if (accessJwt && settings.ACCESS_TEAM_DOMAIN && settings.ACCESS_AUD) {
    c.set("actor", `admin:${await accessActor(c, accessJwt)}`);
    // Outside the verification: an error in the route is the route's, never a failed login.
    return next();
  }
  const match = /^bearer[ \t]+(\S+)[ \t]*$/i.exec(c.req.header("authorization") ?? "");
  if (!settings.ADMIN_TOKEN && !settings.ACCESS_TEAM_DOMAIN) {
    throw new GatewayError("SERVICE_UNAVAILABLE", "Admin API is not configured: set ADMIN_TOKEN or Cloudflare Access");
  }
  if (!match || !settings.ADMIN_TOKEN || !(await sameSecret(match[1]!, settings.ADMIN_TOKEN))) {
    if (match) await countAdminFailure(c);
    throw new GatewayError("UNAUTHORIZED", "Invalid admin credentials");
  }
  c.set("actor", "admin:token");
  await next();
};
