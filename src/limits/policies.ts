import type { Settings } from "../config/settings";
import type { Product, RouteDef } from "../products/types";
import type { AccountPlan, GenerationKind, GenerationLimits, KeyLimitOverride, PlanOverrides, Subject, WindowPolicy } from "./types";
import { madeOnce } from "../util/made-once";

/**
 * Which limits apply to a request. The edge picks the product's policies for the route
 * and applies the deployment's LIMIT_OVERRIDES; the guard then applies the plan, the
 * account's own limits and the key's own override (it alone knows them), most specific last.
 */
export interface RequestLimits {
  windows: WindowPolicy[];
  /** The product's plans (with deployment overrides) and the plan of keys that name none. */
  plans?: PlanOverrides;
  defaultPlan?: string;
  /** The product's generation allowances (ZSky), for every route of the product. */
  generation?: GenerationLimits;
  /** What this route generates, when it is a generate call. */
  generates?: GenerationKind;
}

// The same for every request of one product, route and kind of credential under one parsed
// settings: made once each (filters, overrides, plans), not on every request.
const madeLimits = new WeakMap<Pick<Settings, "LIMIT_OVERRIDES">, WeakMap<RouteDef, Map<string, RequestLimits>>>();

/** The limits of a request (shared between requests: never changed). */
export function limitsForRequest(
  product: Product,
  route: RouteDef,
  via: "jwt" | "key" | undefined,
  settings: Pick<Settings, "LIMIT_OVERRIDES">,
): RequestLimits {
  // Asked on every request (made-once.ts: the factories made only when nothing is kept).
  const byRoute = madeLimits.get(settings) ?? madeOnce(madeLimits, settings, () => new WeakMap<RouteDef, Map<string, RequestLimits>>());
  // A route belongs to one product: its object names both.
  const byVia = byRoute.get(route) ?? madeOnce(byRoute, route, () => new Map<string, RequestLimits>());
  return byVia.get(via ?? "") ?? madeOnce(byVia, via ?? "", () => makeLimits(product, route, via, settings));
}

function makeLimits(
  product: Product,
  route: RouteDef,
  via: "jwt" | "key" | undefined,
  settings: Pick<Settings, "LIMIT_OVERRIDES">,
): RequestLimits {
  const deployment = settings.LIMIT_OVERRIDES[product.id];
  const windows = product.limits.windows
    .filter((w) => (!w.routes || w.routes.includes(route.name)) && !w.exceptRoutes?.includes(route.name) && (!w.via || w.via === via))
    // Without a credential only per-IP windows can be counted; with one, never per-IP.
    .filter((w) => (via === undefined) === (w.subject === "ip"))
    .map((w) => withOverride(w, deployment?.windows?.[w.name]));
  const plans = mergePlans(product.limits.plans, deployment?.plans);
  const base = { windows, plans, defaultPlan: product.limits.defaultPlan };
  const generation = product.limits.generation;
  if (!generation) return base;
  const changed = deployment?.generation;
  const limits: GenerationLimits = {
    ...generation,
    concurrentJobsPerKey: changed?.concurrentJobsPerKey ?? generation.concurrentJobsPerKey,
    dailyPerKey: { ...generation.dailyPerKey, ...changed?.dailyPerKey },
    monthlyPerAccount: { ...generation.monthlyPerAccount, ...changed?.monthlyPerAccount },
  };
  return { ...base, generation: limits, generates: route.generates };
}

/**
 * Failed key authentications per client address, per product (lookups that found no key):
 * each one costs the gateway storage lookups and a guard call, so past this an address's
 * unknown keys are refused (429) after a KV read alone; a key that exists still passes. A
 * deployment changes it as `LIMIT_OVERRIDES.<product>.windows.auth_failures`.
 */
const FAILED_KEY_AUTH: WindowPolicy = { name: "auth_failures", subject: "ip", limit: 10, windowSeconds: 60 };

export function failedKeyAuthPolicy(product: Product, settings: Settings): WindowPolicy {
  return withOverride(FAILED_KEY_AUTH, settings.LIMIT_OVERRIDES[product.id]?.windows?.[FAILED_KEY_AUTH.name]);
}

/**
 * Failed admin credentials (a wrong token or Access JWT, the console's sign-in) per client
 * address: past it the address's admin credentials are refused before they are compared.
 */
export const FAILED_ADMIN_AUTH: WindowPolicy = { name: "admin_auth_failures", subject: "ip", limit: 10, windowSeconds: 300 };

/**
 * Failed admin credentials from all addresses together: reaching it trips the budget for
 * one window, and meanwhile every address that failed in the window is refused (one
 * guess each from addresses beyond it), while one that did not fail is still let in.
 */
export const ADMIN_AUTH_BUDGET: WindowPolicy = { name: "admin_auth_budget", subject: "ip", limit: 100, windowSeconds: 600 };

/** Calls of the public leaked-key report per client address (each names up to 100 keys). */
export const PUBLIC_REPORTS: WindowPolicy = { name: "key_reports", subject: "ip", limit: 10, windowSeconds: 3600 };

/** The plans an account may be put on: the product's, those a deployment adds, and its default. */
export function planNames(product: Product, settings: Settings): string[] {
  const plans = mergePlans(product.limits.plans, settings.LIMIT_OVERRIDES[product.id]?.plans);
  return [...new Set([...(product.limits.defaultPlan ? [product.limits.defaultPlan] : []), ...Object.keys(plans ?? {})])];
}

function mergePlans(plans: PlanOverrides | undefined, changes: PlanOverrides | undefined): PlanOverrides | undefined {
  if (!changes) return plans;
  const merged: PlanOverrides = { ...plans };
  for (const [plan, policies] of Object.entries(changes)) merged[plan] = { ...merged[plan], ...policies };
  return merged;
}

function withOverride(policy: WindowPolicy, override: { limit: number; windowSeconds?: number } | undefined): WindowPolicy {
  return override ? { ...policy, limit: override.limit, windowSeconds: override.windowSeconds ?? policy.windowSeconds } : policy;
}

/** What the guard knows that picks a request's limits. */
export interface LimitBasis {
  /** The account's plan and limits, when an admin has set them. */
  account?: AccountPlan | null;
  /** The key, for key calls, with the tier its owner's sessions last presented (ZakGT). */
  key?: { plan: string | null; limitOverride?: KeyLimitOverride | null; ownerTier?: string | null };
  /** A session's tier, from its verified access token (ZAKGT_TIER_CLAIM). */
  tier?: string;
}

/**
 * The plan of a request: the account's, when an admin has set one (an operator's word
 * outranks a credential's); else the credential's own, the key's plan or the session's
 * tier claim; else, for a user's key, the tier the user's sessions present; else the
 * product's default. A name the product has no plan for changes nothing.
 */
export function planOf(limits: Pick<RequestLimits, "defaultPlan">, basis: LimitBasis): string | undefined {
  return basis.account?.plan ?? basis.key?.plan ?? basis.tier ?? basis.key?.ownerTier ?? limits.defaultPlan;
}

/** The plan's limits, then the account's own, then the key's own override: most specific last. */
function applyLimits(limits: RequestLimits, basis: LimitBasis): WindowPolicy[] {
  const name = planOf(limits, basis);
  const planned = name !== undefined && Object.hasOwn(limits.plans ?? {}, name) ? limits.plans![name] : undefined;
  return limits.windows.map((w) =>
    withOverride(
      withOverride(withOverride(w, planned?.[w.name]), basis.account?.windows?.[w.name]),
      basis.key?.limitOverride?.windows?.[w.name],
    ),
  );
}

/** One window to count for this request: its policy and the subject it counts (`<policy>:<id>`). */
export interface CountedWindow {
  policy: WindowPolicy;
  subject: string;
}

/** The ids a request's windows count it under; a subject the request lacks is absent. */
export function subjectIds(
  credential: { keyId?: string; userId?: string; tokenId?: string } | undefined,
  key: { ownerUserId: string | null; countsAs?: string | null } | undefined,
  accountId: string | undefined,
  ip: string | undefined,
): Partial<Record<Subject, string>> {
  // A key in its roll's grace period counts in the windows of its chain's head (the key that replaced it, or the one that replaced that).
  const keyId = key?.countsAs ?? credential?.keyId;
  return {
    key: keyId,
    user: credential?.userId ?? key?.ownerUserId ?? undefined,
    account: accountId,
    ip,
    credential: keyId ?? credential?.tokenId,
  };
}

/**
 * The windows this request is counted in, with its plan and overrides applied and each
 * policy's subject resolved; a policy whose subject this request lacks is skipped. Both
 * limiter backends count exactly these. A window whose length an override changed is
 * counted apart (`<policy>@<seconds>`): keys of one account may hold different lengths
 * of a shared window, and a shorter one must never drop admissions a longer one still counts.
 */
export function countedWindows(limits: RequestLimits, basis: LimitBasis, subjects: Partial<Record<Subject, string>>): CountedWindow[] {
  const base = limits.windows;
  return applyLimits(limits, basis).flatMap((policy, i) => {
    const id = subjects[policy.subject];
    const name = policy.windowSeconds === base[i]!.windowSeconds ? policy.name : `${policy.name}@${policy.windowSeconds}`;
    return id === undefined ? [] : [{ policy, subject: `${name}:${id}` }];
  });
}
