import { z } from "zod";
import { allowance, MAX_CONCURRENT_JOBS, windowLimit, windowSeconds } from "../limits/bounds";
import { MAX_LEASE_MS, MIN_LEASE_MS } from "../limits/guard-protocol";
import { isNeverForwarded } from "../forward/origin-headers";

/**
 * Every var and secret zgate reads, validated with zod. A deployment whose settings do
 * not parse answers 503 naming the bad setting (never its value): see `loadSettings`.
 * docs/configuration.md's table mirrors this schema.
 */
const hostList = z.string().transform((s) =>
  s
    .split(",")
    .map((h) => h.trim().toLowerCase())
    .filter(Boolean),
);
// Caller header fields an origin receives besides the standard ones (src/forward/origin-headers.ts).
// Exact names, or `prefix-*` for every name that starts so.
const forwardHeaders = hostList
  .pipe(
    z.array(
      z
        .string()
        .regex(/^[a-z0-9-]+\*?$/, "must be header names or name-* patterns")
        .refine((n) => !isNeverForwarded(n.replace(/\*$/, "")), "lists a header zgate never forwards"),
    ),
  )
  .transform((names) => ({
    names: new Set(names.filter((n) => !n.endsWith("*"))),
    prefixes: names.filter((n) => n.endsWith("*")).map((n) => n.slice(0, -1)),
  }));
const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);
const originUrl = z.url({ protocol: /^https?$/ }).transform((u) => u.replace(/\/+$/, ""));
const optionalString = z
  .string()
  .optional()
  .transform((s) => (s === undefined || s === "" ? undefined : s));

/** A setting whose value is JSON text. */
const jsonText = z.string().transform((text, ctx) => {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    ctx.addIssue({ code: "custom", message: "is not valid JSON" });
    return z.NEVER;
  }
});
const windowOverride = z.object({ limit: windowLimit, windowSeconds: windowSeconds.optional() }).strict();
const perKind = z.object({ image: allowance, video: allowance }).partial().strict();
// Deployment-wide limit changes, as JSON: {"<product>": {"windows": {"<policy>": {"limit": 60}},
// "plans": {"<plan>": {"<policy>": {"limit": 600}}}, "generation": {"dailyPerKey": {"image": 500},
// "concurrentJobsPerKey": 5}}}. See docs/limits.md.
const limitOverrides = jsonText.pipe(
  z.partialRecord(
    z.enum(["zakgt", "zsky", "zappway"]),
    z
      .object({
        windows: z.record(z.string(), windowOverride).optional(),
        plans: z.record(z.string(), z.record(z.string(), windowOverride)).optional(),
        generation: z
          .object({
            concurrentJobsPerKey: z.number().int().positive().max(MAX_CONCURRENT_JOBS),
            dailyPerKey: perKind,
            monthlyPerAccount: perKind,
          })
          .partial()
          .strict()
          .optional(),
      })
      .strict(),
  ),
);

const fields = z.object({
  ENVIRONMENT: z.enum(["development", "staging", "production"]).default("production"),
  ORIGIN_ZAKGT: originUrl,
  ORIGIN_ZSKY: originUrl,
  ORIGIN_ZAPPWAY: originUrl,
  ORIGIN_SIGNING_SECRET: z.string().min(32, "must be at least 32 characters"),
  ORIGIN_TIMEOUT_MS: positiveInt(30_000),
  ORIGIN_FORWARD_HEADERS: forwardHeaders.default({ names: new Set<string>(), prefixes: [] }),
  ZAKGT_HOSTS: hostList.default(["api.zakgt.net"]),
  ZSKY_HOSTS: hostList.default(["zsky.ai"]),
  ZAPPWAY_HOSTS: hostList.default(["app.zappway.ai"]),
  // Hosts that serve zgate's own surface (admin API, docs, OpenAPI), never a product host.
  GATEWAY_HOSTS: hostList.default([]),
  ZAKGT_JWKS_URL: optionalString.pipe(z.url().optional()),
  ZAKGT_JWT_SECRET: optionalString.pipe(z.string().min(32, "must be at least 32 characters").optional()),
  ZAKGT_JWT_ISSUER: z.string().min(1).default("https://api.zakgt.net"),
  ZAKGT_JWT_AUDIENCE: z.string().min(1).default("zakgt-api"),
  // The access-token claim naming the user's account tier, which picks a session's plan limits.
  ZAKGT_TIER_CLAIM: z.string().min(1).max(100).default("tier"),
  JWT_CLOCK_SKEW_SECONDS: z.coerce.number().int().min(0).max(300).default(30),
  JWKS_COOLDOWN_SECONDS: z.coerce.number().int().min(0).default(30),
  MAX_BODY_BYTES: positiveInt(1_048_576),
  // The longest a catalogue read stays in the edge cache, whatever lifetime the origin
  // gives (0: no edge cache). Only answers the origin marks `public` are ever stored.
  EDGE_CACHE_TTL_SECONDS: z.coerce.number().int().min(0).default(300),
  USAGE_RETENTION_DAYS: positiveInt(90),
  // How long an isolate gathers keyed calls before writing their usage (src/usage/usage-log.ts):
  // under the 30 s a request's waitUntil work may run after its response.
  USAGE_FLUSH_MS: z.coerce.number().int().min(0).max(20_000).default(10_000),
  // Most active (unrevoked, unexpired) keys a ZakGT user, and any account, may hold (src/keys/key-store.ts).
  MAX_ACTIVE_KEYS_PER_USER: positiveInt(20),
  MAX_ACTIVE_KEYS_PER_ACCOUNT: positiveInt(100),
  // Where sliding windows are counted: the account guard (exact) or Upstash Redis (shared with other services).
  LIMITER_BACKEND: z.enum(["durable-object", "upstash"]).default("durable-object"),
  // How long a guard lease lives (0: no leases, every request asks the guard). A revoke
  // waits at most this long for leases of the revoked key to run out. See guard/lease-registry.ts;
  // the bounds are the guard protocol's (guard-protocol.ts).
  GUARD_LEASE_MS: z.coerce
    .number()
    .int()
    .refine((ms) => ms === 0 || (ms >= MIN_LEASE_MS && ms <= MAX_LEASE_MS), `must be 0 (off) or ${MIN_LEASE_MS}-${MAX_LEASE_MS}`)
    .default(250),
  UPSTASH_REDIS_REST_URL: optionalString.pipe(z.url({ protocol: /^https?$/ }).optional()),
  UPSTASH_REDIS_REST_TOKEN: optionalString,
  UPSTASH_TIMEOUT_MS: positiveInt(300),
  UPSTASH_FAIL_OPEN: z
    .enum(["true", "false"])
    .optional()
    .transform((v) => v === "true"),
  LIMIT_OVERRIDES: optionalString.pipe(limitOverrides.optional()).transform((v) => v ?? {}),
  // Signing keys for result download URLs, {"<kid>": "<secret>"}, and the kid to sign with.
  // Old kids stay listed until their URLs have expired (24 h) so rotation breaks nothing.
  RESULT_SIGNING_KEYS: optionalString.pipe(
    jsonText
      .pipe(z.record(z.string().regex(/^[A-Za-z0-9_-]{1,32}$/), z.string().min(32, "each secret must be at least 32 characters")))
      .optional(),
  ),
  RESULT_SIGNING_KEY_ID: optionalString,
  // R2's S3 API, for presigned result URLs straight to the bucket (all four, or none).
  R2_ACCOUNT_ID: optionalString,
  R2_ACCESS_KEY_ID: optionalString,
  R2_SECRET_ACCESS_KEY: optionalString,
  R2_BUCKET_NAME: optionalString,
  // ZSky results: the largest one zgate stores (streamed into R2, so memory stays flat
  // whatever the size), and hosts besides ORIGIN_ZSKY a result may be pulled from
  // (`host` or `host:port`, HTTPS only outside development).
  MAX_RESULT_BYTES: positiveInt(104_857_600),
  ZSKY_RESULT_HOSTS: hostList.default([]),
  ORIGIN_ZAKGT_TEST: optionalString.pipe(originUrl.optional()),
  ADMIN_TOKEN: optionalString.pipe(z.string().min(24, "must be at least 24 characters").optional()),
  ACCESS_TEAM_DOMAIN: optionalString.pipe(
    z
      .string()
      .regex(/^[a-z0-9-]+\.cloudflareaccess\.com$/, "must look like <team>.cloudflareaccess.com")
      .optional(),
  ),
  ACCESS_AUD: optionalString,
  // Where Access publishes its signing keys; derived from the team domain unless set.
  ACCESS_JWKS_URL: optionalString.pipe(z.url().optional()),
  // Secret-scanning partner programs: where each publishes the keys it signs reports
  // with (src/security/scanner-keys.ts). GitLab's endpoint answers 503 until its URL is set.
  SECRET_SCANNING_GITHUB_KEYS_URL: z.url().default("https://api.github.com/meta/public_keys/secret_scanning"),
  SECRET_SCANNING_GITLAB_KEYS_URL: optionalString.pipe(z.url().optional()),
  // Where a leaked key's revocation is announced (src/security/leak-notification.ts):
  // a POST signed with LEAK_WEBHOOK_SECRET (HMAC-SHA256), retried. Both or neither.
  LEAK_WEBHOOK_URL: optionalString.pipe(z.url({ protocol: /^https?$/ }).optional()),
  LEAK_WEBHOOK_SECRET: optionalString.pipe(z.string().min(32, "must be at least 32 characters").optional()),
});

/** What no one setting shows: settings that go together or exclude each other. */
function crossCheck(s: z.output<typeof fields>, ctx: z.RefinementCtx): void {
  if (!s.ZAKGT_JWKS_URL && !s.ZAKGT_JWT_SECRET) {
    ctx.addIssue({ code: "custom", path: ["ZAKGT_JWKS_URL"], message: "set ZAKGT_JWKS_URL (or ZAKGT_JWT_SECRET in development)" });
  }
  if (s.RESULT_SIGNING_KEYS && !(s.RESULT_SIGNING_KEY_ID && s.RESULT_SIGNING_KEYS[s.RESULT_SIGNING_KEY_ID])) {
    ctx.addIssue({ code: "custom", path: ["RESULT_SIGNING_KEY_ID"], message: "must name one of RESULT_SIGNING_KEYS" });
  }
  const s3 = [s.R2_ACCOUNT_ID, s.R2_ACCESS_KEY_ID, s.R2_SECRET_ACCESS_KEY, s.R2_BUCKET_NAME].filter(Boolean).length;
  if (s3 !== 0 && s3 !== 4) {
    ctx.addIssue({
      code: "custom",
      path: ["R2_ACCESS_KEY_ID"],
      message: "R2_ACCOUNT_ID, R2_ACCESS_KEY_ID, R2_SECRET_ACCESS_KEY and R2_BUCKET_NAME go together",
    });
  }
  if (s.LIMITER_BACKEND === "upstash" && !(s.UPSTASH_REDIS_REST_URL && s.UPSTASH_REDIS_REST_TOKEN)) {
    ctx.addIssue({
      code: "custom",
      path: [s.UPSTASH_REDIS_REST_URL ? "UPSTASH_REDIS_REST_TOKEN" : "UPSTASH_REDIS_REST_URL"],
      message: "is required when LIMITER_BACKEND is upstash",
    });
  }
  if (Boolean(s.LEAK_WEBHOOK_URL) !== Boolean(s.LEAK_WEBHOOK_SECRET)) {
    ctx.addIssue({
      code: "custom",
      path: [s.LEAK_WEBHOOK_URL ? "LEAK_WEBHOOK_SECRET" : "LEAK_WEBHOOK_URL"],
      message: "LEAK_WEBHOOK_URL and LEAK_WEBHOOK_SECRET go together",
    });
  }
  if (Boolean(s.ACCESS_TEAM_DOMAIN) !== Boolean(s.ACCESS_AUD)) {
    ctx.addIssue({
      code: "custom",
      path: [s.ACCESS_TEAM_DOMAIN ? "ACCESS_AUD" : "ACCESS_TEAM_DOMAIN"],
      message: "ACCESS_TEAM_DOMAIN and ACCESS_AUD go together",
    });
  }
  // A shared HS256 secret is a development convenience; deployed gateways verify
  // against the platform's published keys so the gateway can never mint tokens.
  const productHosts = new Set([...s.ZAKGT_HOSTS, ...s.ZSKY_HOSTS, ...s.ZAPPWAY_HOSTS]);
  if (s.GATEWAY_HOSTS.some((h) => productHosts.has(h))) {
    ctx.addIssue({ code: "custom", path: ["GATEWAY_HOSTS"], message: "must not name a product host" });
  }
  if (s.ZAKGT_JWT_SECRET && s.ENVIRONMENT !== "development") {
    ctx.addIssue({ code: "custom", path: ["ZAKGT_JWT_SECRET"], message: "is only allowed when ENVIRONMENT is development" });
  }
}

const schema = fields.superRefine(crossCheck);

/** Every setting zgate reads; anything else in an environment's vars is a typo (`npm run check`). */
export const SETTING_NAMES = Object.keys(fields.shape);

/** Settings that are secrets: put with `wrangler secret put`, never written in wrangler.toml. */
export const SECRET_SETTINGS = [
  "ORIGIN_SIGNING_SECRET",
  "RESULT_SIGNING_KEYS",
  "ADMIN_TOKEN",
  "ZAKGT_JWT_SECRET",
  "UPSTASH_REDIS_REST_TOKEN",
  "R2_ACCESS_KEY_ID",
  "R2_SECRET_ACCESS_KEY",
  "LEAK_WEBHOOK_SECRET",
] as const satisfies readonly (keyof z.input<typeof fields>)[];

/**
 * Optional features and the settings that belong to each. A bad value in one of them
 * turns that feature off (the log says which setting) instead of taking the three
 * products down with it: a typo in `wrangler secret put ADMIN_TOKEN` must not be an
 * outage. Every other setting is needed by the products themselves.
 */
const FEATURE_SETTINGS = {
  admin: ["ADMIN_TOKEN", "ACCESS_TEAM_DOMAIN", "ACCESS_AUD", "ACCESS_JWKS_URL"],
  "test-keys": ["ORIGIN_ZAKGT_TEST"],
  "presigned-results": ["R2_ACCOUNT_ID", "R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY", "R2_BUCKET_NAME"],
  "result-links": ["RESULT_SIGNING_KEYS", "RESULT_SIGNING_KEY_ID"],
  "secret-scanning": ["SECRET_SCANNING_GITHUB_KEYS_URL", "SECRET_SCANNING_GITLAB_KEYS_URL"],
  "leak-webhook": ["LEAK_WEBHOOK_URL", "LEAK_WEBHOOK_SECRET"],
} as const;

export type Feature = keyof typeof FEATURE_SETTINGS;

// A feature that cannot run at all without a setting: unset, it is off as if the setting were bad.
// Result links have keys of their own, so rotating ORIGIN_SIGNING_SECRET never breaks a live link.
const FEATURE_REQUIRES: Partial<Record<Feature, keyof z.output<typeof fields>>> = { "result-links": "RESULT_SIGNING_KEYS" };

const featureOf = (setting: string) =>
  (Object.keys(FEATURE_SETTINGS) as Feature[]).find((f) => (FEATURE_SETTINGS[f] as readonly string[]).includes(setting));

export type Settings = z.infer<typeof schema> & {
  /** Features turned off by a bad setting, and why (for the log, never for callers). */
  disabled: Partial<Record<Feature, SettingsError>>;
};

/** Settings the gateway cannot serve without. Its message names the setting: for the log only. */
export class SettingsError extends Error {
  constructor(
    readonly setting: string,
    reason: string,
  ) {
    super(`Gateway misconfigured: ${setting} ${reason}`);
  }
}

// Parsing is per env object: workerd hands the same env to every request of an isolate,
// so in practice this runs once per isolate, yet a changed env is always re-read.
const parsed = new WeakMap<object, Settings | SettingsError>();

function reasonFor(env: Record<string, unknown>, setting: string, message: string): string {
  // An empty string is how wrangler.toml leaves a var to fill in.
  return env[setting] === undefined || env[setting] === "" ? "is not set" : `is invalid: ${message}`;
}

function parse(env: Record<string, unknown>): Settings | SettingsError {
  const disabled: Settings["disabled"] = {};
  let input = env;
  for (;;) {
    const outcome = schema.safeParse(input);
    if (outcome.success) {
      for (const [feature, setting] of Object.entries(FEATURE_REQUIRES) as [Feature, keyof z.output<typeof fields>][]) {
        if (!disabled[feature] && outcome.data[setting] === undefined) {
          disabled[feature] = new SettingsError(setting, "is not set");
        }
      }
      for (const [feature, error] of Object.entries(disabled)) {
        console.error(JSON.stringify({ msg: "settings_invalid", setting: error.setting, feature, effect: "feature disabled" }));
      }
      return { ...outcome.data, disabled };
    }
    const issue = outcome.error.issues[0]!;
    const setting = String(issue.path[0] ?? "settings");
    const error = new SettingsError(setting, reasonFor(input, setting, issue.message));
    const feature = featureOf(setting);
    // A feature already dropped cannot fail again; anything else is the products' own.
    if (!feature || disabled[feature]) return error;
    disabled[feature] = error;
    input = { ...input };
    for (const name of FEATURE_SETTINGS[feature]) delete input[name];
  }
}

/** A setting `settingsProblems` found wrong, and the feature it turns off (none: the products are down). */
export interface SettingsProblem {
  setting: string;
  reason: string;
  feature?: Feature;
}

/**
 * Every problem in a set of settings, each setting once: `npm run check` reports them all
 * before a deploy, where the Worker stops at the first one that matters. Each setting is
 * parsed on its own (a bad one reads as its default, or unset, for the rest), so the
 * checks across settings run even when some setting is bad.
 */
export function settingsProblems(env: Record<string, unknown>): SettingsProblem[] {
  const problems = new Map<string, string>();
  const values: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(fields.shape) as [string, z.ZodType][]) {
    const one = field.safeParse(env[name]);
    if (one.success) values[name] = one.data;
    else {
      problems.set(name, reasonFor(env, name, one.error.issues[0]!.message));
      const fallback = field.safeParse(undefined);
      if (fallback.success) values[name] = fallback.data;
    }
  }
  const crossed = z.custom<z.output<typeof fields>>().superRefine(crossCheck).safeParse(values);
  for (const issue of crossed.error?.issues ?? []) {
    const name = String(issue.path[0]);
    if (!problems.has(name)) problems.set(name, reasonFor(env, name, issue.message));
  }
  for (const name of Object.values(FEATURE_REQUIRES))
    if (values[name] === undefined && !problems.has(name)) problems.set(name, "is not set");
  return [...problems].map(([setting, reason]) => ({ setting, reason, feature: featureOf(setting) }));
}

export function loadSettings(env: object): Settings {
  let result = parsed.get(env);
  if (!result) {
    result = parse(env as Record<string, unknown>);
    parsed.set(env, result);
  }
  if (result instanceof SettingsError) throw result;
  return result;
}

/** Where a feature is used: refused (a generic 503 for the caller, the setting in the log) when a bad setting turned it off. */
export function requireFeature(settings: Settings, feature: Feature): void {
  const error = settings.disabled[feature];
  if (error) throw error;
}
