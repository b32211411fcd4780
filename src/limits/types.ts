/**
 * Limits as data. Each product module declares its policies (`Product.limits`); the
 * edge picks the ones that apply to a request and the account guard enforces them,
 * adjusted by the key's plan and per-key override, in one atomic call.
 */
export type Subject = "key" | "user" | "account" | "ip";

/** An exact sliding window: never more than `limit` admitted in any `windowSeconds`. */
export interface WindowPolicy {
  /** Appears in RateLimit-Policy / RateLimit headers and in overrides. */
  name: string;
  subject: Subject;
  limit: number;
  windowSeconds: number;
  /** Route names it applies to; all of the product's routes (with its subject) when absent. */
  routes?: readonly string[];
  /** Only for calls made this way (e.g. the per-key AI chat limit for `zak_live_` calls). */
  via?: "key" | "jwt";
}

/** What a plan changes: a policy's limit (and optionally its window), by policy name. */
export type PlanOverrides = Record<string, Record<string, { limit: number; windowSeconds?: number }>>;

export type GenerationKind = "image" | "video";

/** ZSky's generation allowances (zsky-api.txt "Rate Limits & Allowances" and "Safety"). */
export interface GenerationLimits {
  /** Route name -> what it generates. */
  routes: Readonly<Record<string, GenerationKind>>;
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
  windows?: Record<string, { limit: number; windowSeconds?: number }>;
  dailyPerKey?: Partial<Record<GenerationKind, number>>;
}
