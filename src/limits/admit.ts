import type { Context, MiddlewareHandler } from "hono";
import { actorOf } from "../auth/identity";
import type { AppEnv } from "../http/context";
import { GatewayError } from "../http/errors";
import { setResponseHeaders } from "../http/response";
import { revokeUserCredentials } from "../keys/key-lifecycle";
import type { RouteDef } from "../products/types";
import { leasable, type AdmitDecision, type AdmitRequest, type WindowReport } from "./account-guard";
import { clientAddress } from "./client-address";
import { guardFor, ipGuardFor } from "./guard-client";
import { releaseFinishedJobs } from "./job-recheck";
import { rateLimitHeaders } from "./headers";
import { leaseBookFor } from "./lease-book";
import { countedWindows, limitsForRequest, subjectIds } from "./policies";
import type { GenerationLimits } from "./types";
import { upstashWindows } from "./upstash-windows";

/** A route's scope is its module, the first part of its name (`ai.chat` -> `ai`). */
export function routeScope(route: RouteDef): string {
  return route.name.split(".")[0]!;
}

/**
 * Asks one guard, once, whether the request may proceed: credential status, sliding
 * windows, allowances, job slots and suspension, decided atomically. If the guard
 * cannot be reached the request fails closed (503): admitting it could let a revoked
 * key through or overrun a limit, which is worse than a retry.
 */
export const admit: MiddlewareHandler<AppEnv> = async (c, next) => {
  const identity = c.get("identity");
  const { product } = c.get("target");
  const route = c.get("route");
  const settings = c.get("settings");
  const limits = limitsForRequest(product, route, identity?.via, settings);
  if (!identity && limits.windows.length === 0) return next();

  const ip = clientAddress(c.req.raw.headers);
  // Without an address these windows would be one bucket shared by every such request.
  // Only in-process callers lack one: Cloudflare and `wrangler dev` always set it.
  if (!identity && ip === undefined) throw new GatewayError("BAD_REQUEST", "Client address unknown");
  const windowsElsewhere = settings.LIMITER_BACKEND === "upstash";
  let decision: AdmitDecision = { allow: true, windows: [] };
  if (identity || !windowsElsewhere) {
    const jobId = route.jobParam ? (c.get("params")[route.jobParam] ?? "") : undefined;
    const request: AdmitRequest = {
      product: product.id,
      route: { scope: routeScope(route), sessionOnly: route.sessionOnly === true },
      credential: identity && {
        via: identity.via,
        product: identity.product,
        keyId: identity.keyId,
        userId: identity.userId,
        tokenId: identity.tokenId,
        issuedAt: identity.issuedAt,
        tier: identity.tier,
      },
      accountId: identity?.accountId,
      ip,
      limits,
      windowsElsewhere,
      jobId,
      wantUsage: route.readsAllowance === true,
    };
    // Resolved only when called: a request admitted from a lease never needs the stub.
    const guard = () => (identity ? guardFor(c.env, identity) : ipGuardFor(c.env, product.id, ip!));
    const book = leasable(request) ? leaseBookFor(settings) : undefined;
    try {
      decision = book
        ? await book.admit(`${product.id}|${identity!.accountId}|${identity!.keyId ?? `jwt:${identity!.tokenId}`}|${route.name}|${jobId ?? ""}`, {
            ask: (lease) => guard().admit({ ...request, lease }),
            refund: (returns) => guard().refundLeases(returns),
            waitUntil: (work) => c.executionCtx.waitUntil(work),
          })
        : await guard().admit(request);
      // ZSky: a full job pool may hold jobs that ended unpolled; if any did, ask once more.
      if (!decision.allow && decision.refusal === "concurrency" && limits.generation && (await releaseFinishedJobs(c, limits.generation))) {
        decision = await guard().admit(request);
      }
    } catch {
      throw new GatewayError("SERVICE_UNAVAILABLE", "Service temporarily unavailable, please retry", { "Retry-After": "1" });
    }
  }
  // Unknown, revoked and expired credentials all get the same 401 body.
  if (!decision.allow && decision.refusal === "credential") throw new GatewayError("UNAUTHORIZED", product.unauthorized.invalid);
  if (!decision.allow && decision.refusal === "forbidden") throw new GatewayError("FORBIDDEN", decision.message);
  if (!decision.allow && decision.refusal === "not_found") {
    throw new GatewayError("NOT_FOUND", "Job not found", rateLimitHeaders(decision.windows));
  }
  if (!decision.allow) refuse(decision.refusal, decision.message, decision.windows, decision.retryAfter);

  if (windowsElsewhere && decision.allow) {
    const basis = { account: decision.accountPlan, key: decision.key, tier: identity?.tier };
    const counted = countedWindows(limits, basis, subjectIds(identity, decision.key, identity?.accountId, ip));
    const verdict = await upstashWindows(settings, counted, (p) => c.executionCtx.waitUntil(p)).catch(async (err: unknown) => {
      await releaseReservation(c, decision, limits.generation);
      throw err;
    });
    if (!verdict.allowed) {
      await releaseReservation(c, decision, limits.generation);
      refuse("rate_limited", "Rate limit exceeded", verdict.windows, verdict.retryAfter);
    }
    decision = { ...decision, windows: verdict.windows };
  }
  c.set("admission", { windows: decision.windows, reservationId: decision.reservationId, usage: decision.usage, generation: limits.generation });

  if (identity && decision.key) {
    c.set("identity", { ...identity, userId: decision.key.ownerUserId ?? undefined, scopes: decision.key.scopes, plan: decision.key.plan });
  }
  await next();
};

function refuse(refusal: string, message: string, windows: WindowReport[], retryAfter: number): never {
  const headers = { ...rateLimitHeaders(windows), "Retry-After": String(retryAfter) };
  throw new GatewayError(refusal === "suspended" ? "FORBIDDEN" : "RATE_LIMITED", message, headers);
}

/** A generate call refused after the guard reserved for it gives its allowance and slot back. */
async function releaseReservation(c: Context<AppEnv>, decision: AdmitDecision, generation: GenerationLimits | undefined): Promise<void> {
  const identity = c.get("identity");
  if (!decision.allow || !decision.reservationId || !identity || !generation) return;
  await guardFor(c.env, identity).settleGeneration(decision.reservationId, "refused", null, generation);
}

/** Every response to a limited route carries its RateLimit fields (refusals get them with their error). */
export const rateLimitFields: MiddlewareHandler<AppEnv> = async (c, next) => {
  await next();
  const windows = c.get("admission")?.windows;
  if (!windows) return;
  setResponseHeaders(c, rateLimitHeaders(windows));
};

/** Logout: the presented access token is refused from now on, before the origin hears of it. */
export const revokePresentedSession: MiddlewareHandler<AppEnv> = async (c, next) => {
  const identity = c.get("identity");
  if (c.get("route").revokesSession && identity?.tokenId && identity.expiresAt) {
    await guardFor(c.env, identity).revokeToken(identity.tokenId, identity.expiresAt);
  }
  await next();
};

/** Account deactivation: once the origin confirms it, every key and session of the user dies at the edge too. */
export const revokeDeactivatedUser: MiddlewareHandler<AppEnv> = async (c, next) => {
  await next();
  const identity = c.get("identity");
  if (c.get("route").deactivatesUser && c.res.ok && identity?.userId) {
    await revokeUserCredentials(c.env, identity.userId, { actor: actorOf(identity), requestId: c.get("requestId") }, true);
  }
};
