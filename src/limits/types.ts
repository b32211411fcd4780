/**
 * Limits as data. Each product module declares its policies (`Product.limits`); the
 * edge picks the ones that apply to a request and the account guard enforces them,
 * adjusted by the plan and the account's and key's own limits, in one atomic call.
 */
/**
 * Who a window counts: a key, a ZakGT user (session calls), an account (a ZappWay
 * organization), a client address, or the one credential presented (the key, or the
 * session's `jti`), so a leaked credential can only fill its own window.
 */
export type Subject = "key" | "user" | "account" | "ip" | "credential";

/** An exact sliding window: never more than `limit` admitted in any `windowSeconds`. */
export interface WindowPolicy {
  /** Appears in RateLimit-Policy / RateLimit headers and in overrides. */
  name: string;
  subject: Subject;
  limit: number;
  windowSeconds: number;
  /** Route names it applies to; all of the product's routes (with its subject) when absent. */
  routes?: readonly string[];
  /** Route names it never applies to (revoking a credential must not wait on that credential's own traffic). */
  exceptRoutes?: readonly string[];
  /** Only for calls made this way (e.g. the per-key AI chat limit for `zak_live_` calls). */
  via?: "key" | "jwt";
}

/** A policy's limit (and optionally its window), by policy name. */
export type WindowOverrides = Record<string, { limit: number; windowSeconds?: number }>;

/** What a plan changes, by plan name. */
export type PlanOverrides = Record<string, WindowOverrides>;

export type GenerationKind = "image" | "video";

/**
 * ZSky's generation allowances (zsky-api.txt "Rate Limits & Allowances" and "Safety"):
 * what a route generates is the route's own (`RouteDef.generates`).
 */
export interface GenerationLimits {
  concurrentJobsPerKey: number;
  dailyPerKey: Record<GenerationKind, number>;
  monthlyPerAccount: Record<GenerationKind, number>;
  overagePriceCents: Record<GenerationKind, number>;
  suspension: { windowMinutes: number; minAttempts: number; rejectedShare: number; hours: number };
  /**
   * How long a job usually runs, by kind: a full pool's Retry-After is when its first
   * slot-holding job should end by this measure.
   */
  typicalJobSeconds: Record<GenerationKind, number>;
  /** Retry-After once every slot-holding job has run past its typical time (and the origin says it is still running). */
  concurrencyRetryAfterSeconds: number;
}

export interface ProductLimits {
  windows: readonly WindowPolicy[];
  plans?: PlanOverrides;
  /** Plan assumed for keys created without one. */
  defaultPlan?: string;
  generation?: GenerationLimits;
}

/** A key's own limits, set by an admin: window limits by policy name, lifted daily caps. */
export interface KeyLimitOverride {
  windows?: WindowOverrides;
  dailyPerKey?: Partial<Record<GenerationKind, number>>;
}

/**
 * An account's own plan and limits, set by an admin and held by its guard: the plan of
 * every call of the account (a ZappWay organization's keys, a ZakGT user's keys and
 * sessions), and window limits of its own (a ZappWay Enterprise rate).
 */
export interface AccountPlan {
  plan: string | null;
  windows: WindowOverrides | null;
}
