import type { Context, MiddlewareHandler } from "hono";
import { jwtVerify, type JWTPayload } from "jose";
import { remoteKeySet } from "../identify/jwt";
import { requireFeature } from "../config/settings";
import type { AppEnv } from "../http/context";
import { GatewayError } from "../http/errors";
import { countAdminFailure, refuseLimitedAdminAddress } from "./admin-logins";
import { clientAddress } from "../http/client-address";
import { ADMIN_AUTH_BUDGET } from "../limits/policies";
import { utf8 } from "../util/utf8";
import { writeAudit } from "../audit/audit-log";

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

/**
 * A presented admin credential that failed (edge/admin-logins.ts). The one failure that
 * trips the global budget writes its one audit entry; the 401 stands even if that write fails.
 */
async function failedLogin(c: Context<AdminEnv>): Promise<never> {
  const address = clientAddress(c.req.raw.headers);
  const tripped = await countAdminFailure(c.env, address);
  if (tripped) {
    const entry = {
      actor: "zgate",
      action: "admin.auth_budget_tripped",
      requestId: c.get("requestId"),
      detail: {
        failures: tripped.failures,
        addresses: tripped.addresses,
        window_seconds: ADMIN_AUTH_BUDGET.windowSeconds,
        refused_until: new Date(tripped.until).toISOString(),
        last_address: address,
      },
    };
    await writeAudit(c.env, entry).catch((err: Error) =>
      console.error(JSON.stringify({ msg: "audit_write_failed", action: entry.action, error: err.message })),
    );
  }
  throw new GatewayError("UNAUTHORIZED", "Invalid admin credentials");
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
    return failedLogin(c);
  }
}

/**
 * The admin API is for security and platform teams: `Authorization: Bearer <ADMIN_TOKEN>`
 * or, when ACCESS_TEAM_DOMAIN and ACCESS_AUD are set, a Cloudflare Access JWT in
 * `Cf-Access-Jwt-Assertion`. The actor (token or Access identity) goes into the audit log.
 * A credential from a client address over its failure limit (or caught by the tripped
 * global budget) is refused with 429 before it is compared, the right one too.
 */
export const adminAuth: MiddlewareHandler<AdminEnv> = async (c, next) => {
  const settings = c.get("settings");
  requireFeature(settings, "admin");
  const accessJwt = c.req.header("cf-access-jwt-assertion");
  if (accessJwt && settings.ACCESS_TEAM_DOMAIN && settings.ACCESS_AUD) {
    await refuseLimitedAdminAddress(c.env, clientAddress(c.req.raw.headers));
    c.set("actor", `admin:${await accessActor(c, accessJwt)}`);
    // Outside the verification: an error in the route is the route's, never a failed login.
    return next();
  }
  const match = /^bearer[ \t]+(\S+)[ \t]*$/i.exec(c.req.header("authorization") ?? "");
  if (!settings.ADMIN_TOKEN && !settings.ACCESS_TEAM_DOMAIN) {
    throw new GatewayError("SERVICE_UNAVAILABLE", "Admin API is not configured: set ADMIN_TOKEN or Cloudflare Access");
  }
  // No credential at all: nothing to compare, nothing to count.
  if (!match) throw new GatewayError("UNAUTHORIZED", "Invalid admin credentials");
  await refuseLimitedAdminAddress(c.env, clientAddress(c.req.raw.headers));
  if (!settings.ADMIN_TOKEN || !(await sameSecret(match[1]!, settings.ADMIN_TOKEN))) return failedLogin(c);
  c.set("actor", "admin:token");
  await next();
};
