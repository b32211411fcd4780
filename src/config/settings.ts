import { z } from "zod";
import { allowance, MAX_CONCURRENT_JOBS, windowLimit, windowSeconds } from "../limits/bounds";
import { ADDRESS_GUARD_SHARDS, MAX_LEASE_MS, MIN_LEASE_MS } from "../limits/guard-protocol";
import { isNeverForwarded } from "../forward/origin-headers";
import { assertionKeysSetting } from "../forward/assertion-keys";
import { fromRegistry, type builtInProducts } from "../products/index";
import type { Product, ProductSettings } from "../products/types";
import { hostList, jsonText, optionalString, originUrl, positiveInt } from "./setting-types";
import { madeOnce } from "../util/made-once";

/**
 * Every var and secret zgate reads, validated with zod. A deployment whose settings do
 * not parse answers 503 naming the bad setting (never its value): see `loadSettings`.
 * The schema is built from the registered products (each one's `<ID>_HOSTS`,
 * `ORIGIN_<ID>` and the settings its folder declares) and zgate's own settings below.
 * docs/configuration.md's table mirrors it.
 */
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
const windowOverride = z.object({ limit: windowLimit, windowSeconds: windowSeconds.optional() }).strict();
const perKind = z.object({ image: allowance, video: allowance }).partial().strict();
const productOverrides = z
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
  .strict();
// Deployment-wide limit changes, as JSON: {"<product>": {"windows": {"<policy>": {"limit": 60}},
// "plans": {"<plan>": {"<policy>": {"limit": 600}}}, "generation": {"dailyPerKey": {"image": 500},
// "concurrentJobsPerKey": 5}}}, by registered product. See docs/limits.md.
const limitOverrides = (ids: readonly string[]) =>
  optionalString
    .pipe(jsonText.pipe(z.partialRecord(z.enum(ids as [string, ...string[]]), productOverrides)).optional())
    .transform((v): Partial<Record<string, z.output<typeof productOverrides>>> => v ?? {});

/** zgate's own settings, before the products' (`ENVIRONMENT` first: the products' checks read it). */
const ownFirst = {
  ENVIRONMENT: z.enum(["development", "staging", "production"]).default("production"),
};
const ownOrigin = {
  // The gateway's Ed25519 keys for origin assertions, {"<kid>": "<seed>"} (src/forward/assertion-keys.ts).
  ORIGIN_ASSERTION_KEYS: assertionKeysSetting,
  ORIGIN_TIMEOUT_MS: positiveInt(30_000),
  ORIGIN_FORWARD_HEADERS: forwardHeaders.default({ names: new Set<string>(), prefixes: [] }),
};
const ownHosts = {
  // Hosts that serve zgate's own surface (admin API, docs, OpenAPI), never a product host.
  GATEWAY_HOSTS: hostList.default([]),
};
const ownRest = {
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
  // How many guards count client addresses' windows, per scope (src/limits/guard-protocol.ts):
  // changing it moves addresses to other guards, where their windows start afresh once.
  ADDRESS_GUARD_SHARDS: z.coerce.number().int().min(1).max(4096).default(ADDRESS_GUARD_SHARDS),
  // Where sliding windows are counted: the account guard (exact) or Upstash Redis (shared with other services).
  LIMITER_BACKEND: z.enum(["durable-object", "upstash"]).default("durable-object"),
  // How long a guard lease lives near its guard (0: no leases, every request asks the
  // guard); a far guard's leases live longer, from the measured round trip, within a
  // revoke's budget (admit/lease-book.ts). A revoke waits for leases of the revoked key to
  // run out. See guard/lease-registry.ts; the bounds are the guard protocol's (guard-protocol.ts).
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
};
const own = { ...ownFirst, ...ownOrigin, ...ownHosts, ...ownRest };
type OwnSettings = z.output<z.ZodObject<typeof own>> & { LIMIT_OVERRIDES: z.output<ReturnType<typeof limitOverrides>> };

/** The hosts every product has, the key its origin assertions are signed with, and the origin of its test keys where it has some, named from its id. */
function productHostFields(product: Product): z.ZodRawShape {
  return {
    [product.hostsSetting]: hostList.default([...product.defaultHosts]),
    [product.assertionKidSetting]: optionalString,
    ...(product.testOriginSetting ? { [product.testOriginSetting]: optionalString.pipe(originUrl.optional()) } : {}),
  };
}

/** zgate's own settings' secrets. */
const OWN_SECRETS = ["ORIGIN_ASSERTION_KEYS", "ADMIN_TOKEN", "UPSTASH_REDIS_REST_TOKEN", "LEAK_WEBHOOK_SECRET"] as const;

/**
 * zgate's own optional features and the settings that belong to each; the products add
 * theirs (and `test-keys`: every product's test origin). A bad value in one of them
 * turns that feature off (the log says which setting) instead of taking the products
 * down with it: a typo in `wrangler secret put ADMIN_TOKEN` must not be an outage. Every
 * other setting is needed by the products themselves.
 */
const OWN_FEATURES: Record<string, readonly string[]> = {
  admin: ["ADMIN_TOKEN", "ACCESS_TEAM_DOMAIN", "ACCESS_AUD", "ACCESS_JWKS_URL"],
  "secret-scanning": ["SECRET_SCANNING_GITHUB_KEYS_URL", "SECRET_SCANNING_GITLAB_KEYS_URL"],
  "leak-webhook": ["LEAK_WEBHOOK_URL", "LEAK_WEBHOOK_SECRET"],
};

/** The whole schema, from the registered products and zgate's own settings. */
const schemaOf = fromRegistry((products) => {
  const declared = products.map((p): ProductSettings => p.settings ?? { fields: {} });
  const fields = z.object({
    ...ownFirst,
    ...Object.fromEntries(products.map((p) => [p.originSetting, originUrl])),
    ...ownOrigin,
    ...Object.assign({}, ...products.map(productHostFields)),
    ...ownHosts,
    ...Object.assign({}, ...declared.map((d) => d.fields)),
    ...ownRest,
    LIMIT_OVERRIDES: limitOverrides(products.map((p) => p.id)),
  });
  const features: Record<string, readonly string[]> = { ...OWN_FEATURES };
  const requires: Record<string, string> = {};
  const testOrigins = products.flatMap((p) => (p.testOriginSetting ? [p.testOriginSetting] : []));
  if (testOrigins.length > 0) features["test-keys"] = testOrigins;
  for (const d of declared)
    for (const [feature, spec] of Object.entries(d.features ?? {})) {
      features[feature] = spec.settings;
      if (spec.requires) requires[feature] = spec.requires;
    }
  const crossCheck = (s: Record<string, unknown>, ctx: z.RefinementCtx) => {
    for (const d of declared) d.crossCheck?.(s as never, ctx);
    ownCrossCheck(s as OwnSettings, products, ctx);
  };
  return {
    fields,
    schema: fields.superRefine(crossCheck),
    crossCheck,
    features,
    requires,
    secrets: [...OWN_SECRETS, ...declared.flatMap((d) => d.secrets ?? [])],
    urls: [...products.map((p) => p.originSetting), ...testOrigins, ...declared.flatMap((d) => d.urls ?? [])],
  };
});

/** Every setting zgate reads; anything else in an environment's vars is a typo (`npm run check`). */
export const settingNames = (): string[] => Object.keys(schemaOf().fields.shape);

/** Settings that are secrets: put with `wrangler secret put`, never written in wrangler.toml. */
export const secretSettings = (): string[] => schemaOf().secrets;

/** Settings of the products holding a URL zgate sends requests to: their origins, their test origins, then the URLs their folders declare. */
export const productUrlSettings = (): string[] => schemaOf().urls;

/** What no one of zgate's own settings shows: settings that go together or exclude each other. */
function ownCrossCheck(s: OwnSettings, products: readonly Product[], ctx: z.RefinementCtx): void {
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
  assertionKidCheck(s, products, ctx);
  const productHosts = new Set(products.flatMap((p) => productHostsIn(s, p)));
  if (s.GATEWAY_HOSTS.some((h) => productHosts.has(h))) {
    ctx.addIssue({ code: "custom", path: ["GATEWAY_HOSTS"], message: "must not name a product host" });
  }
}

/**
 * Each product's assertions have one key to sign with: the one its `<ID>_ASSERTION_KID`
 * names, or the only key there is. Several keys (a rotation) need every product's kid
 * set, so publishing a new key never moves any product onto it.
 */
function assertionKidCheck(s: OwnSettings, products: readonly Product[], ctx: z.RefinementCtx): void {
  const keys = s.ORIGIN_ASSERTION_KEYS;
  if (!keys) return;
  for (const product of products) {
    const kid = (s as unknown as Record<string, string | undefined>)[product.assertionKidSetting];
    if (kid ? !Object.hasOwn(keys, kid) : Object.keys(keys).length > 1) {
      ctx.addIssue({
        code: "custom",
        path: [product.assertionKidSetting],
        message: kid ? "must name a key of ORIGIN_ASSERTION_KEYS" : "must name the key that signs when ORIGIN_ASSERTION_KEYS holds several",
      });
    }
  }
}

/** The product's own hosts in parsed settings. */
function productHostsIn(settings: object, product: Product): readonly string[] {
  return ((settings as Record<string, unknown>)[product.hostsSetting] as string[] | undefined) ?? [];
}

/** What productSettings() tells of one product. */
export interface ProductSettingsView {
  hosts: readonly string[];
  origin: string;
  testOrigin?: string;
}

// Read on every forwarded request (its origin): each product's, once per parsed settings,
// rather than looked up in the settings by the setting's name each time.
const productViews = new WeakMap<Settings, Map<Product, ProductSettingsView>>();

/** A registered product's settings: its own hosts, its origin, and its test keys' origin (where it has test keys). Shared: never changed. */
export function productSettings(settings: Settings, product: Product): ProductSettingsView {
  // Read twice a forwarded request (made-once.ts: the factories made only when nothing is kept).
  const views = productViews.get(settings) ?? madeOnce(productViews, settings, () => new Map<Product, ProductSettingsView>());
  return (
    views.get(product) ??
    madeOnce(views, product, () => {
      const values = settings as unknown as Record<string, unknown>;
      return {
        hosts: productHostsIn(settings, product),
        origin: values[product.originSetting] as string,
        testOrigin: product.testOriginSetting ? (values[product.testOriginSetting] as string | undefined) : undefined,
      };
    })
  );
}

/** The built-in products' settings (their hosts, origin and what their folders declare), typed for the code that reads them. */
type DeclaredSettings<P> = P extends { settings?: ProductSettings<infer S> } ? z.output<z.ZodObject<S>> : never;
type NamedSettings<P> = P extends { hostsSetting: infer H extends string; originSetting: infer O extends string }
  ? Record<H, string[]> & Record<O, string>
  : never;
type Intersection<U> = (U extends unknown ? (u: U) => void : never) extends (i: infer I) => void ? I : never;
type BuiltInSettings = Intersection<
  DeclaredSettings<ReturnType<typeof builtInProducts>[number]> | NamedSettings<ReturnType<typeof builtInProducts>[number]>
>;

/** An optional feature: zgate's own (`admin`, ...), `test-keys`, or one a product's folder declares. */
export type Feature = string;

const featureOf = (setting: string): Feature | undefined =>
  Object.entries(schemaOf().features).find(([, settings]) => settings.includes(setting))?.[0];

export type Settings = OwnSettings &
  BuiltInSettings & {
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
// so in practice this runs once per isolate, yet a changed env is always re-read (and
// every env is, when the registered products change).
const parsedEnvs = fromRegistry(() => new WeakMap<object, Settings | SettingsError>());

function reasonFor(env: Record<string, unknown>, setting: string, message: string): string {
  // An empty string is how wrangler.toml leaves a var to fill in.
  return env[setting] === undefined || env[setting] === "" ? "is not set" : `is invalid: ${message}`;
}

function parse(env: Record<string, unknown>): Settings | SettingsError {
  const { schema, features, requires } = schemaOf();
  const disabled: Settings["disabled"] = {};
  let input = env;
  for (;;) {
    const outcome = schema.safeParse(input);
    if (outcome.success) {
      const data = outcome.data as Record<string, unknown>;
      for (const [feature, setting] of Object.entries(requires)) {
        if (!disabled[feature] && data[setting] === undefined) {
          disabled[feature] = new SettingsError(setting, "is not set");
        }
      }
      for (const [feature, error] of Object.entries(disabled) as [Feature, SettingsError][]) {
        console.error(JSON.stringify({ msg: "settings_invalid", setting: error.setting, feature, effect: "feature disabled" }));
      }
      return { ...data, disabled } as Settings;
    }
    const issue = outcome.error.issues[0]!;
    const setting = String(issue.path[0] ?? "settings");
    const error = new SettingsError(setting, reasonFor(input, setting, issue.message));
    const feature = featureOf(setting);
    // A feature already dropped cannot fail again; anything else is the products' own.
    if (!feature || disabled[feature]) return error;
    disabled[feature] = error;
    input = { ...input };
    for (const name of features[feature]!) delete input[name];
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
  const { fields, crossCheck, requires } = schemaOf();
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
  const crossed = z.custom<Record<string, unknown>>().superRefine(crossCheck).safeParse(values);
  for (const issue of crossed.error?.issues ?? []) {
    const name = String(issue.path[0]);
    if (!problems.has(name)) problems.set(name, reasonFor(env, name, issue.message));
  }
  for (const name of Object.values(requires)) if (values[name] === undefined && !problems.has(name)) problems.set(name, "is not set");
  return [...problems].map(([setting, reason]) => ({ setting, reason, feature: featureOf(setting) }));
}

export function loadSettings(env: object): Settings {
  const parsed = parsedEnvs();
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
