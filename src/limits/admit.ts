import type { MiddlewareHandler } from "hono";
import { actorOf } from "../auth/identity";
import type { AppEnv } from "../http/context";
import { GatewayError } from "../http/errors";
import { revokeUserCredentials } from "../keys/key-lifecycle";
import type { RouteDef } from "../products/types";
import { guardFor } from "./guard-client";

/** A route's scope is its module, the first part of its name (`ai.chat` -> `ai`). */
export function routeScope(route: RouteDef): string {
  return route.name.split(".")[0]!;
}

/**
 * Asks the caller's guard, once, whether the request may proceed. If the guard cannot
 * be reached the request fails closed (503): admitting it could let a revoked
 * credential through, which is worse than a retry.
 */
export const admit: MiddlewareHandler<AppEnv> = async (c, next) => {
  const identity = c.var.identity;
  if (!identity) return next();
  const { product } = c.var.target;
  let decision;
  try {
    decision = await guardFor(c.env, identity).admit({
      via: identity.via,
      keyId: identity.keyId,
      userId: identity.userId,
      tokenId: identity.tokenId,
      issuedAt: identity.issuedAt,
    });
  } catch {
    throw new GatewayError("SERVICE_UNAVAILABLE", "Service temporarily unavailable, please retry", { "Retry-After": "1" });
  }
  // Unknown, revoked and expired credentials all get the same 401 body.
  if (!decision.allow) throw new GatewayError("UNAUTHORIZED", product.unauthorized.invalid);

  if (decision.key) {
    c.set("identity", {
      ...identity,
      userId: decision.key.ownerUserId ?? undefined,
      scopes: decision.key.scopes,
      plan: decision.key.plan,
    });
    if (identity.product !== product.id) throw new GatewayError("FORBIDDEN", "This key is not valid for this API");
    if (c.var.route.sessionOnly) throw new GatewayError("FORBIDDEN", "This endpoint needs a signed-in session, not an API key");
    const scope = routeScope(c.var.route);
    if (!decision.key.scopes.includes("*") && !decision.key.scopes.includes(scope)) {
      throw new GatewayError("FORBIDDEN", `This key does not have the '${scope}' scope`);
    }
  }
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

/** Account deactivation: once the origin confirms it, every key and session of the user dies at the edge too. */
export const revokeDeactivatedUser: MiddlewareHandler<AppEnv> = async (c, next) => {
  await next();
  const identity = c.var.identity;
  if (c.var.route.deactivatesUser && c.res.ok && identity?.userId) {
    await revokeUserCredentials(c.env, identity.userId, { actor: actorOf(identity), requestId: c.var.requestId }, true);
  }
};
