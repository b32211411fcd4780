import type { MiddlewareHandler } from "hono";
import type { Identity } from "../auth/identity";
import type { Env } from "../env";
import type { AppEnv } from "../http/context";
import { GatewayError } from "../http/errors";

/** The guard object that owns an account's mutable credential state. */
export function guardFor(env: Env, identity: Pick<Identity, "product" | "accountId">) {
  return env.ACCOUNT_GUARD.get(env.ACCOUNT_GUARD.idFromName(`${identity.product}:${identity.accountId}`));
}

/**
 * Asks the caller's guard, once, whether the request may proceed. If the guard cannot
 * be reached the request fails closed (503): admitting it could let a revoked
 * credential through, which is worse than a retry.
 */
export const admit: MiddlewareHandler<AppEnv> = async (c, next) => {
  const identity = c.var.identity;
  if (!identity) return next();
  let decision;
  try {
    decision = await guardFor(c.env, identity).admit({
      via: identity.via,
      userId: identity.userId,
      tokenId: identity.tokenId,
      issuedAt: identity.issuedAt,
    });
  } catch {
    throw new GatewayError("SERVICE_UNAVAILABLE", "Service temporarily unavailable, please retry", { "Retry-After": "1" });
  }
  if (!decision.allow) throw new GatewayError("UNAUTHORIZED", c.var.target.product.unauthorized.invalid);
  await next();
};

/** Logout: the presented access token is refused from now on, before the origin hears of it. */
export const revokePresentedSession: MiddlewareHandler<AppEnv> = async (c, next) => {
  const identity = c.var.identity;
  if (c.var.route.revokesSession && identity?.tokenId && identity.expiresAt) {
    await guardFor(c.env, identity).revokeToken(identity.tokenId, identity.expiresAt);
  }
  await next();
};
