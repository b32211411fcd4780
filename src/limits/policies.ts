import type { Settings } from "../config/settings";
import type { Product, RouteDef } from "../products/types";
import type { GenerationKind, GenerationLimits, KeyLimitOverride, PlanOverrides, Subject, WindowPolicy } from "./types";

/**
 * Which limits apply to a request. The edge picks the product's policies for the route
 * and applies the deployment's LIMIT_OVERRIDES; the guard then applies the key's plan
 * and the key's own override (it alone knows them), most specific last.
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

export function limitsForRequest(product: Product, route: RouteDef, via: "jwt" | "key" | undefined, settings: Settings): RequestLimits {
  const deployment = settings.LIMIT_OVERRIDES[product.id];
  const windows = product.limits.windows
    .filter((w) => (!w.routes || w.routes.includes(route.name)) && (!w.via || w.via === via))
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
  return { ...base, generation: limits, generates: generation.routes[route.name] };
}

/**
 * Failed key authentications per client address, per product: each one costs the gateway
 * storage lookups, so past this an address is refused (429) before any lookup. A
 * deployment changes it as `LIMIT_OVERRIDES.<product>.windows.auth_failures`.
 */
const FAILED_KEY_AUTH: WindowPolicy = { name: "auth_failures", subject: "ip", limit: 10, windowSeconds: 60 };

export function failedKeyAuthPolicy(product: Product, settings: Settings): WindowPolicy {
  return withOverride(FAILED_KEY_AUTH, settings.LIMIT_OVERRIDES[product.id]?.windows?.[FAILED_KEY_AUTH.name]);
}

/** Failed admin API authentications per client address (a wrong token or Access JWT). */
export const FAILED_ADMIN_AUTH: WindowPolicy = { name: "admin_auth_failures", subject: "ip", limit: 10, windowSeconds: 300 };

function mergePlans(plans: PlanOverrides | undefined, changes: PlanOverrides | undefined): PlanOverrides | undefined {
  if (!changes) return plans;
  const merged: PlanOverrides = { ...plans };
  for (const [plan, policies] of Object.entries(changes)) merged[plan] = { ...merged[plan], ...policies };
  return merged;
}

function withOverride(policy: WindowPolicy, override: { limit: number; windowSeconds?: number } | undefined): WindowPolicy {
  return override ? { ...policy, limit: override.limit, windowSeconds: override.windowSeconds ?? policy.windowSeconds } : policy;
}

/** The key's plan (or the product's default plan), then the key's own override. */
function applyKeyLimits(limits: RequestLimits, plan: string | null, override: KeyLimitOverride | null): WindowPolicy[] {
  const name = plan ?? limits.defaultPlan;
  const planned = name ? limits.plans?.[name] : undefined;
  return limits.windows.map((w) => withOverride(withOverride(w, planned?.[w.name]), override?.windows?.[w.name]));
}

/** One window to count for this request: its policy and the subject it counts (`<policy>:<id>`). */
export interface CountedWindow {
  policy: WindowPolicy;
  subject: string;
}

/**
 * The windows this request is counted in, with the key's plan and override applied and
 * each policy's subject resolved; a policy whose subject this request lacks is skipped.
 * Both limiter backends count exactly these.
 */
export function countedWindows(
  limits: RequestLimits,
  key: { plan: string | null; limitOverride?: KeyLimitOverride | null } | undefined,
  subjects: Partial<Record<Subject, string>>,
): CountedWindow[] {
  const windows = key ? applyKeyLimits(limits, key.plan, key.limitOverride ?? null) : limits.windows;
  return windows.flatMap((policy) => {
    const id = subjects[policy.subject];
    return id === undefined ? [] : [{ policy, subject: `${policy.name}:${id}` }];
  });
}
