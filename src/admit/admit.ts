import type { Stage, StageContext } from "../http/context";
import { GatewayError } from "../http/errors";
import { setResponseHeaders } from "../http/response";
import type { Product, RouteDef } from "../products/types";
import type { Settings } from "../config/settings";
import { identityOf, type Identity } from "../identify/identity";
import { leaseBookKey, type AdmitDecision, type AdmitRequest } from "../limits/guard-protocol";
import { limitsForRequest, type RequestLimits } from "../limits/policies";
import { clientAddress } from "../http/client-address";
import { accountGuardName, addressGuardNameOf, guardNamed } from "./guard-client";
import { rateLimitHeaders } from "./rate-limit-headers";
import { standingRefusalsFor } from "./standing-refusals";
import { admissionFor, type AdmissionLink } from "./windows";

/** A route's scope is its module, the first part of its name (`ai.chat` -> `ai`). */
export function routeScope(route: RouteDef): string {
  const dot = route.name.indexOf(".");
  return dot < 0 ? route.name : route.name.slice(0, dot);
}

/**
 * Asks one guard, once, whether the request may proceed: credential status, sliding
 * windows, allowances, job slots and suspension, decided atomically. If the guard
 * cannot be reached the request fails closed (503): admitting it could let a revoked
 * key through or overrun a limit, which is worse than a retry.
 */
export const admit: Stage = { before: decideAdmission };

async function decideAdmission(c: StageContext): Promise<void> {
  const identity = c.get("identity");
  const { product } = c.get("target");
  const route = c.get("route");
  const settings = c.get("settings");
  const limits = limitsForRequest(product, route, identity?.via, settings);
  if (!identity && limits.windows.length === 0) return;

  // Only a request without a credential is counted by its address (limits/policies.ts: a
  // credential's windows are never per address), so only its address is parsed.
  const ip = identity ? undefined : clientAddress(c.req.raw.headers);
  // Without an address these windows would be one bucket shared by every such request.
  // Only in-process callers lack one: Cloudflare and `wrangler dev` always set it.
  if (!identity && ip === undefined) throw new GatewayError("BAD_REQUEST", "Client address unknown");
  const request = admitRequest(c, product, route, settings, identity, limits, ip);
  const guardName = identity ? accountGuardName(identity) : await addressGuardNameOf(c.env, product.id, ip!);
  // The route's own guard question goes out with admission's call, or right after a lease admits.
  let alongsideStarted = route.alongsideAdmission === undefined;
  const startAlongside = () => {
    if (alongsideStarted) return;
    alongsideStarted = true;
    route.alongsideAdmission!(c);
  };
  const link: AdmissionLink = {
    guard: () => guardNamed(c.env, guardName),
    guardName,
    bookKey: leaseBookKey(request, route.name),
    waitUntil: (work) => c.executionCtx.waitUntil(work),
    asking: startAlongside,
  };
  const admission = admissionFor(settings);
  let decision: AdmitDecision;
  try {
    // A full window's refusal is repeated while the guard lets it stand: the same subject's next requests cost no guard call.
    decision = await standingRefusalsFor(settings).admit(link.bookKey, () => admission.admit(request, link));
    // A full job pool may hold jobs that ended unpolled (ZSky): if the product freed any, ask once more.
    const recheck = product.hooks?.onConcurrencyRefusal;
    if (!decision.allow && decision.refusal === "concurrency" && recheck && limits.generation && (await recheck(c, limits.generation))) {
      decision = await admission.admit(request, link);
    }
  } catch (err) {
    if (err instanceof GatewayError) throw err;
    throw new GatewayError("SERVICE_UNAVAILABLE", "Service temporarily unavailable, please retry", { "Retry-After": "1" });
  }
  if (!decision.allow) throw refusal(decision, product);
  startAlongside();
  c.set("admission", {
    windows: decision.windows,
    reservationId: decision.reservationId,
    usage: decision.usage,
    generation: limits.generation,
    job: decision.job,
  });

  if (identity && decision.key) {
    // A copy in the one shape every identity has (identity.ts), with what the guard knows of the key.
    const admitted = identityOf(identity);
    admitted.userId = decision.key.ownerUserId ?? undefined;
    admitted.scopes = decision.key.scopes;
    admitted.plan = decision.key.plan;
    c.set("identity", admitted);
  }
}

/** What the guard is asked about this request. */
function admitRequest(
  c: StageContext,
  product: Product,
  route: RouteDef,
  settings: Settings,
  identity: Identity | undefined,
  limits: RequestLimits,
  ip: string | undefined,
): AdmitRequest {
  return {
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
    jobId: route.jobParam ? (c.get("params")[route.jobParam] ?? "") : undefined,
    wantUsage: route.readsAllowance === true,
    stand: settings.GUARD_LEASE_MS,
  };
}

/** The error a refused request is answered with. */
function refusal(decision: Extract<AdmitDecision, { allow: false }>, product: Product): GatewayError {
  // Unknown, revoked and expired credentials all get the same 401 body.
  if (decision.refusal === "credential") return new GatewayError("UNAUTHORIZED", product.unauthorized.invalid);
  if (decision.refusal === "forbidden") return new GatewayError("FORBIDDEN", decision.message);
  if (decision.refusal === "not_found") return new GatewayError("NOT_FOUND", "Job not found", rateLimitHeaders(decision.windows));
  const headers = { ...rateLimitHeaders(decision.windows), "Retry-After": String(decision.retryAfter) };
  return new GatewayError(decision.refusal === "suspended" ? "FORBIDDEN" : "RATE_LIMITED", decision.message, headers);
}

/** Every response to a limited route carries its RateLimit fields (refusals get them with their error). */
export const rateLimitFields: Stage = {
  after(c) {
    const windows = c.get("admission")?.windows;
    if (windows) setResponseHeaders(c, rateLimitHeaders(windows));
  },
};
