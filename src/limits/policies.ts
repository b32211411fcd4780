import type { Settings } from "../config/settings";
import type { Product, RouteDef } from "../products/types";
import type { GenerationKind, GenerationLimits, KeyLimitOverride, PlanOverrides, WindowPolicy } from "./types";

/**
 * Which limits apply to a request. The edge picks the product's policies for the route
 * and applies the deployment's LIMIT_OVERRIDES; the guard then applies the key's plan
 * and the key's own override (it alone knows them), most specific last.
 */
export interface RequestLimits {
  windows: WindowPolicy[];
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
  const generation = product.limits.generation;
  if (!generation) return { windows };
  const changed = deployment?.generation;
  const limits: GenerationLimits = {
    ...generation,
    concurrentJobsPerKey: changed?.concurrentJobsPerKey ?? generation.concurrentJobsPerKey,
    dailyPerKey: { ...generation.dailyPerKey, ...changed?.dailyPerKey },
    monthlyPerAccount: { ...generation.monthlyPerAccount, ...changed?.monthlyPerAccount },
  };
  return { windows, generation: limits, generates: generation.routes[route.name] };
}

function withOverride(policy: WindowPolicy, override: { limit: number; windowSeconds?: number } | undefined): WindowPolicy {
  return override ? { ...policy, limit: override.limit, windowSeconds: override.windowSeconds ?? policy.windowSeconds } : policy;
}

/** Guard side: the key's plan (or the product's default plan), then the key's own override. */
export function applyKeyLimits(
  windows: WindowPolicy[],
  plans: PlanOverrides | undefined,
  plan: string | null,
  override: KeyLimitOverride | null,
): WindowPolicy[] {
  const planned = plan ? plans?.[plan] : undefined;
  return windows.map((w) => withOverride(withOverride(w, planned?.[w.name]), override?.windows?.[w.name]));
}
