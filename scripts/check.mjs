#!/usr/bin/env node
// `npm run check -- --env staging|production [--config wrangler.toml] [--remote] [--offline]`:
// checks a deployment before `wrangler deploy` and after each step of docs/deploy.md. It
// reads wrangler.toml the way wrangler does (its own config reader), validates the
// environment's vars with the Worker's own settings schema (src/config/settings.ts), and
// refuses what would break or endanger a deploy: missing bindings, resources shared with
// the other environment, an origin the Worker serves itself, plain-HTTP URLs in production,
// secrets written in wrangler.toml. With Cloudflare credentials (CLOUDFLARE_API_TOKEN, or
// `--remote` after `wrangler login`) it also checks Cloudflare (scripts/cloudflare.mjs): the
// secrets put, the resources wrangler created, the D1 migrations applied. Without, it names
// what it could not verify and exits 1 unless `--offline` accepts that.
// Other modes: `--new-secrets FILE`, `--put-secrets FILE`, `--put-secret NAME` (stdin)
// (scripts/deploy-secrets.mjs); `--write-ids` writes into wrangler.toml the ids of the
// resources the first deploy created; `--dry-run` builds with `wrangler deploy --dry-run`
// once the check passes (`npm run deploy:dry`). Exit status 1 on any problem.
import { spawn } from "node:child_process";
import { existsSync, realpathSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath, URL } from "node:url";
import { parseArgs } from "node:util";
import { experimental_readRawConfig, unstable_readConfig } from "wrangler";
import { migrationFiles, provisionedKvTitle, remoteState } from "./cloudflare.mjs";
import { describe, FEATURES, neededSecrets, newSecrets, putSecret, putSecrets, SECRETS } from "./deploy-secrets.mjs";
import { importTs, root } from "./import-ts.mjs";
import { writeIds } from "./wrangler-toml.mjs";

/** @typedef {import("wrangler").Unstable_Config} Config An environment's configuration, as wrangler reads it. */
/** @typedef {import("./deploy-secrets.mjs").SettingsModule} SettingsModule */
/** @typedef {typeof import("../src/products/index")} ProductsModule The Worker's product registry (src/products/index.ts). */
/** @typedef {import("./deploy-secrets.mjs").Outcome} Outcome */
/** @typedef {"kv_namespaces" | "d1_databases" | "r2_buckets" | "durable_objects.bindings"} BindingKind */
/**
 * One binding the Worker needs: where wrangler.toml declares it, the field naming it, and
 * what its resource field must look like (or, for the Durable Object, its class).
 * @typedef {{ kind: BindingKind, name: string, field?: string, format?: RegExp, what?: string, className?: string }} BindingSpec
 */
/** @typedef {{ env: string, configPath: string, remote: boolean, offline: boolean | undefined }} CheckArgs */

const ENVIRONMENTS = ["staging", "production"];
const USAGE = `usage: npm run check -- --env ${ENVIRONMENTS.join("|")} [--remote | --offline] [--config FILE] (docs/deploy.md)`;
const KV_ID = /^[0-9a-f]{32}$/;
const D1_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

// The bindings src/env.ts declares. KV and D1 may have no id: the first deploy creates them
// (wrangler's provisioning) and `--write-ids` records the ids.
/** @type {Record<string, BindingSpec>} */
const BINDINGS = {
  KEYS_KV: { kind: "kv_namespaces", name: "binding", field: "id", format: KV_ID, what: "a KV namespace id (32 hex digits)" },
  DB: { kind: "d1_databases", name: "binding", field: "database_id", format: D1_ID, what: "a D1 database id (a UUID)" },
  RESULTS: { kind: "r2_buckets", name: "binding", field: "bucket_name" },
  ACCOUNT_GUARD: { kind: "durable_objects.bindings", name: "name", className: "AccountGuard" },
  USAGE_LOG: { kind: "durable_objects.bindings", name: "name", className: "UsageLog" },
  USAGE_ADDRESSES: { kind: "durable_objects.bindings", name: "name", className: "UsageAddressIndex" },
};

// Settings holding a URL zgate sends requests to (with signed identities, keys or tokens):
// the registered products' (settings.productUrlSettings()), then zgate's own.
const OWN_URL_SETTINGS = [
  "UPSTASH_REDIS_REST_URL",
  "LEAK_WEBHOOK_URL",
  "ACCESS_JWKS_URL",
  "SECRET_SCANNING_GITHUB_KEYS_URL",
  "SECRET_SCANNING_GITLAB_KEYS_URL",
];

// Words that mark a value nobody filled in. Upper case only, so a real host or path that
// happens to contain "replace" passes.
const PLACEHOLDER = /REPLACE_WITH|PLACEHOLDER|CHANGE_?ME|\bTODO\b|\bFIXME\b|<[^>]*>/;

/** A host name as DNS compares it: case and a final dot make no difference. */
const canonicalHost = (/** @type {string} */ host) => host.toLowerCase().replace(/\.+$/, "");

/**
 * Edit distance, for "did you mean".
 * @param {string} a
 * @param {string} b
 */
function distance(a, b) {
  let row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    // Every index read is in range (`?? 0` only satisfies the type).
    for (let j = 1; j <= b.length; j++)
      next[j] = Math.min((row[j] ?? 0) + 1, (next[j - 1] ?? 0) + 1, (row[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length] ?? 0;
}

/**
 * The entries of one binding kind (`durable_objects.bindings` is nested).
 * @param {Config} config
 * @param {BindingKind} kind
 * @returns {Record<string, unknown>[]}
 */
const entries = (config, kind) => (kind === "durable_objects.bindings" ? config.durable_objects?.bindings : config[kind]) ?? [];

/**
 * Problems in the environment's bindings: a list of messages.
 * @param {Config} config
 * @param {string} env
 */
function bindingProblems(config, env) {
  /** @type {string[]} */
  const problems = [];
  const table = (/** @type {BindingKind} */ kind) => `[[env.${env}.${kind}]]`;
  for (const [binding, spec] of Object.entries(BINDINGS)) {
    const bound = entries(config, spec.kind).find((b) => b[spec.name] === binding);
    if (!bound) {
      const near = entries(config, spec.kind)
        .map((b) => b[spec.name])
        .filter((name) => typeof name === "string" && !(name in BINDINGS) && distance(name, binding) <= Math.ceil(binding.length / 3));
      problems.push(
        near.length
          ? `binding ${binding} is missing: ${table(spec.kind)} has "${near[0]}": did you mean ${binding}? (the Worker reads env.${binding})`
          : `binding ${binding} is missing: add ${table(spec.kind)} with ${spec.name} = "${binding}"`,
      );
      continue;
    }
    const { className } = spec;
    if (className) {
      if (bound.class_name !== className) problems.push(`binding ${binding} must name class_name "${className}"`);
      if (!config.migrations?.some((m) => m.new_sqlite_classes?.includes(className)))
        problems.push(`no [[migrations]] step creates ${className} as a SQLite Durable Object (new_sqlite_classes)`);
      continue;
    }
    const field = bound[spec.field ?? ""];
    const value = field === undefined ? undefined : String(field);
    if (value !== undefined && PLACEHOLDER.test(value))
      problems.push(
        spec.kind === "r2_buckets"
          ? `${binding}: bucket_name "${value}" is a placeholder: name the bucket (the first deploy creates it)`
          : `${binding}: ${spec.field} "${value}" is a placeholder: remove the line (the first deploy creates the resource)`,
      );
    else if (value !== undefined && spec.format && !spec.format.test(value))
      problems.push(`${binding}: ${spec.field} "${value}" is not ${spec.what}`);
    if (spec.kind === "d1_databases") {
      if (!bound.database_name) problems.push(`DB: database_name is missing (the name the first deploy creates the database under)`);
      if (bound.migrations_dir !== "migrations") problems.push(`DB: migrations_dir must be "migrations"`);
    }
  }
  return problems;
}

/**
 * Resources this environment shares with the other one: each would mix their data.
 * @param {Config} config
 * @param {{ env: string, config: Config } | undefined} other
 * @param {string} env
 */
function sharedProblems(config, other, env) {
  if (!other) return [];
  /** @type {string[]} */
  const problems = [];
  const same = (/** @type {unknown} */ a, /** @type {unknown} */ b) => a !== undefined && a === b;
  /** @type {(c: Config, kind: BindingKind, binding: string) => Record<string, unknown>} */
  const one = (c, kind, binding) => entries(c, kind).find((b) => b.binding === binding) ?? {};
  const theirs = `${other.env}'s`;
  if (same(config.name, other.config.name)) problems.push(`name "${config.name}" is also ${theirs}: one deploy would replace the other`);
  /** @type {[string, BindingKind, string, string][]} */
  const checks = [
    ["KEYS_KV", "kv_namespaces", "id", "keys"],
    ["DB", "d1_databases", "database_id", "database"],
    ["DB", "d1_databases", "database_name", "database"],
    ["RESULTS", "r2_buckets", "bucket_name", "results"],
  ];
  for (const [binding, kind, field, what] of checks) {
    const value = one(config, kind, binding)[field];
    if (same(value, one(other.config, kind, binding)[field]))
      problems.push(`${binding}: ${field} "${value}" is also ${theirs}: ${env} would read and write ${other.env}'s ${what}`);
  }
  return problems;
}

/**
 * The hosts the Worker answers on or will: its routes, GATEWAY_HOSTS and every product host (listed, or the product's default).
 * @param {Config} config
 * @param {ProductsModule} products
 * @returns {(host: string) => boolean}
 */
function servedHosts(config, products) {
  /** @type {Record<string, unknown>} */
  const vars = config.vars ?? {};
  const list = (/** @type {unknown} */ value) =>
    String(value ?? "")
      .split(",")
      .map((h) => canonicalHost(h.trim()))
      .filter(Boolean);
  const hosts = new Set(list(vars.GATEWAY_HOSTS));
  for (const route of config.routes ?? []) {
    const pattern = typeof route === "string" ? route : route.pattern;
    hosts.add(canonicalHost(pattern.replace(/^\*\.?/, "").split("/")[0] ?? ""));
  }
  for (const product of products.products()) for (const host of list(vars[product.hostsSetting])) hosts.add(host);
  return (host) => {
    if (hosts.has(host)) return true;
    const product = products.resolveProductHost(host, undefined);
    return product !== undefined && !vars[product.hostsSetting];
  };
}

/**
 * Problems and warnings in the vars beyond the schema: loops, plain HTTP, the admin surface's host.
 * @param {Config} config
 * @param {string} env
 * @param {ProductsModule} products
 * @param {SettingsModule} settings
 */
function varsProblems(config, env, products, settings) {
  /** @type {Record<string, unknown>} */
  const vars = config.vars ?? {};
  /** @type {string[]} */
  const problems = [];
  /** @type {string[]} */
  const warnings = [];
  const served = servedHosts(config, products);
  for (const route of config.routes ?? []) {
    const pattern = typeof route === "string" ? route : route.pattern;
    if (PLACEHOLDER.test(pattern)) problems.push(`route "${pattern}" is a placeholder`);
  }
  // An origin on a host the Worker serves would send every request back into the gateway.
  const origins = products.products().flatMap((p) => [p.originSetting, ...(p.testOriginSetting ? [p.testOriginSetting] : [])]);
  for (const name of origins) {
    if (!URL.canParse(String(vars[name] ?? ""))) continue;
    const host = canonicalHost(new URL(String(vars[name])).hostname);
    if (served(host))
      problems.push(
        `${name} is on ${host}, a host this Worker serves: requests would loop back into the gateway (docs/deploy.md, "What you need")`,
      );
  }
  for (const name of [...settings.productUrlSettings(), ...OWN_URL_SETTINGS]) {
    if (!URL.canParse(String(vars[name] ?? "")) || new URL(String(vars[name])).protocol !== "http:") continue;
    const why = `${name} is http://: the identities, keys and tokens zgate sends there would cross the network readable and changeable`;
    if (env === "production") problems.push(`${why}; production takes https:// only`);
    else warnings.push(why);
  }
  if (!vars.GATEWAY_HOSTS)
    warnings.push(
      "GATEWAY_HOSTS is not set: the admin API (/admin/v1), the security console (/admin/) and the leak intake (/security/v1) answer on no host",
    );
  return { problems, warnings };
}

/**
 * Problems in the vars by the Worker's own schema.
 * @param {Record<string, unknown>} vars
 * @param {string} env
 * @param {SettingsModule} settings
 */
function settingsProblems(vars, env, settings) {
  /** @type {string[]} */
  const problems = [];
  /** @type {Set<string>} */
  const secrets = new Set(settings.secretSettings());
  const names = settings.settingNames();
  for (const [name, value] of Object.entries(vars)) {
    if (!names.includes(name)) {
      const near = names.find((s) => distance(s, name) <= 2);
      problems.push(`${name} in [env.${env}.vars] is not a zgate setting${near ? `: did you mean ${near}?` : " (a typo?)"}`);
    }
    if (secrets.has(name)) problems.push(`${name} is a secret: remove it from wrangler.toml and put it with \`--put-secrets FILE\``);
    else if (typeof value === "string" && PLACEHOLDER.test(value)) problems.push(`${name} = "${value}" is a placeholder`);
  }
  // The keys are a secret, so the schema cannot see that the kid to sign with is one of them: it must at least be set.
  if (!vars.RESULT_SIGNING_KEY_ID)
    problems.push(`RESULT_SIGNING_KEY_ID is not set: the kid in RESULT_SIGNING_KEYS that signs (turns off ${FEATURES["result-links"]})`);
  if (vars.ENVIRONMENT !== env)
    problems.push(`ENVIRONMENT must be "${env}" in [env.${env}.vars] (it is ${JSON.stringify(vars.ENVIRONMENT)})`);
  // A secret is not in wrangler.toml: one the schema finds unset is one to put, listed apart.
  for (const problem of settings.settingsProblems(vars))
    if (!(secrets.has(problem.setting) && vars[problem.setting] === undefined)) problems.push(describe(problem));
  return problems;
}

/**
 * Workers Logs and presigned links: what the rest of the configuration needs.
 * @param {Config} config
 * @param {string} env
 */
function platformProblems(config, env) {
  /** @type {string[]} */
  const problems = [];
  const rate = config.observability?.head_sampling_rate;
  if (!config.observability?.enabled)
    problems.push(`[env.${env}.observability] is not enabled: without it no request can be found in Workers Logs`);
  else if (rate !== undefined && !(rate > 0 && rate <= 1)) problems.push(`observability head_sampling_rate must be above 0 and at most 1`);
  const bucket = config.r2_buckets?.find((b) => b.binding === "RESULTS")?.bucket_name;
  if (config.vars?.R2_BUCKET_NAME && bucket && config.vars.R2_BUCKET_NAME !== bucket)
    problems.push(
      `R2_BUCKET_NAME "${config.vars.R2_BUCKET_NAME}" is not the RESULTS bucket "${bucket}": presigned links would point at another bucket`,
    );
  return problems;
}

/**
 * One environment's configuration as wrangler reads it (and the other's, to compare), or why it cannot be read.
 * @param {string} env
 * @param {string} configPath
 * @returns {{ config: Config, other: { env: string, config: Config } | undefined, error?: undefined }
 *   | { error: string, config?: undefined, other?: undefined }}
 */
function loadEnvironment(env, configPath) {
  if (!ENVIRONMENTS.includes(env)) return { error: USAGE };
  if (!existsSync(configPath)) return { error: `${configPath}: no such file` };
  try {
    const { rawConfig } = experimental_readRawConfig({ config: configPath });
    if (!rawConfig.env?.[env]) return { error: `${configPath} has no [env.${env}]` };
    const otherEnv = ENVIRONMENTS.find((e) => e !== env && rawConfig.env?.[e]);
    return {
      config: unstable_readConfig({ config: configPath, env }),
      other: otherEnv ? { env: otherEnv, config: unstable_readConfig({ config: configPath, env: otherEnv }) } : undefined,
    };
  } catch (err) {
    return { error: `${configPath}: wrangler cannot read it: ${/** @type {Error} */ (err).message}` };
  }
}

/** @typedef {Awaited<ReturnType<typeof remoteState>>} RemoteState */

/**
 * What Cloudflare holds for the environment: lines to show and problems, from scripts/cloudflare.mjs.
 * @param {Config} config
 * @param {string} env
 * @param {string[]} needed
 */
async function remoteReport(config, env, needed) {
  /** @type {string[]} */
  const lines = [];
  /** @type {string[]} */
  const problems = [];
  /** @type {RemoteState} */
  let state;
  try {
    state = await remoteState(config, { kvBinding: "KEYS_KV", d1Binding: "DB", r2Binding: "RESULTS" });
  } catch (err) {
    return { lines, problems: [`Cloudflare could not be asked: ${/** @type {Error} */ (err).message}`], deployed: false };
  }
  const writeIds = `\`npm run check -- --env ${env} --write-ids\``;
  // `wrangler secret bulk` before the first deploy makes an empty draft Worker that holds only the secrets.
  const deployed = Boolean(state.worker?.bindings.some((b) => b.name === "ACCOUNT_GUARD"));
  lines.push(
    `Cloudflare: Worker ${config.name} ${deployed ? "is deployed" : state.worker ? "holds its secrets only (not deployed yet)" : "is not deployed yet"}`,
  );
  const kv = config.kv_namespaces.find((b) => b.binding === "KEYS_KV");
  const db = config.d1_databases.find((b) => b.binding === "DB");
  const bucket = config.r2_buckets.find((b) => b.binding === "RESULTS")?.bucket_name;
  /** @type {(binding: string, kind: string, name: string | undefined, inToml: string | undefined, found: { id?: string, bound?: string }) => unknown} */
  const resource = (binding, kind, name, inToml, { id, bound }) => {
    const what = `${kind} ${name}`;
    if (inToml && bound && inToml !== bound) {
      lines.push(`  ${binding.padEnd(8)} ${what}: wrangler.toml has ${inToml}, the Worker is bound to ${bound}`);
      return problems.push(
        `${binding}: wrangler.toml's id ${inToml} is not the one ${config.name} is bound to (${bound}): a deploy would bind another ${kind} and leave the data behind (${writeIds} writes the bound one)`,
      );
    }
    if (inToml) return lines.push(`  ${binding.padEnd(8)} ${what}: in wrangler.toml`);
    if (!id) return lines.push(`  ${binding.padEnd(8)} ${what}: not created yet (the first deploy creates it)`);
    lines.push(`  ${binding.padEnd(8)} ${what}: created (${id}), not in wrangler.toml`);
    problems.push(`${binding}: ${what} exists on Cloudflare (${id}) but wrangler.toml has no id for it: ${writeIds}`);
  };
  resource("KEYS_KV", "KV namespace", kv?.id ?? state.kv.title, kv?.id, state.kv);
  resource("DB", "D1 database", db?.database_name, db?.database_id, state.d1);
  lines.push(`  ${"RESULTS".padEnd(8)} R2 bucket ${bucket}: ${state.r2 ? "exists" : "not created yet (the first deploy creates it)"}`);

  const missing = needed.filter((name) => !state.secrets.includes(name));
  lines.push(`  secrets  ${missing.length ? `${missing.length} of ${needed.length} missing` : "all set"}`);
  for (const name of missing)
    problems.push(`secret ${name} is not set on Cloudflare: \`npm run check -- --env ${env} --put-secrets FILE\``);

  if (state.migrations === null) lines.push(`  D1 migrations: applied once the first deploy has created the database`);
  else {
    const files = migrationFiles();
    const applied = state.migrations;
    const unapplied = files.filter((f) => !applied.includes(f));
    lines.push(`  D1 migrations: ${files.length - unapplied.length} of ${files.length} applied`);
    if (unapplied.length)
      problems.push(
        `D1: ${unapplied.length} migration${unapplied.length > 1 ? "s" : ""} not applied (${unapplied.join(", ")}): \`npx wrangler d1 migrations apply DB --remote --env ${env}\``,
      );
  }
  return { lines, problems, deployed };
}

const NOT_VERIFIED = "the secrets on Cloudflare, the resources the first deploy created, the D1 migrations applied";

/**
 * The check itself (no mode given).
 * @param {CheckArgs} args
 * @returns {Promise<Outcome>}
 */
async function check({ env, configPath, remote, offline }) {
  /** @type {string[]} */
  const out = [];
  const { config, other, error } = loadEnvironment(env, configPath);
  if (error !== undefined) return { ok: false, text: error };
  const [settings, products] = await Promise.all([
    /** @type {Promise<SettingsModule>} */ (importTs("src/config/settings.ts")),
    /** @type {Promise<ProductsModule>} */ (importTs("src/products/index.ts")),
  ]);
  out.push(`zgate check: env "${env}", Worker ${config.name} (${configPath})`);
  const domains = (config.routes ?? []).map((r) => (typeof r === "string" ? r : r.pattern));
  out.push(
    domains.length
      ? `serves ${domains.join(", ")}: a deploy takes their traffic at once`
      : `serves ${config.workers_dev ? "its workers.dev hostname only" : "no hostname (no routes, workers_dev off)"}: a deploy takes no product traffic`,
  );
  const vars = config.vars ?? {};
  const checked = varsProblems(config, env, products, settings);
  const problems = [
    ...bindingProblems(config, env),
    ...sharedProblems(config, other, env),
    ...platformProblems(config, env),
    ...settingsProblems(vars, env, settings),
    ...checked.problems,
  ];
  const needed = neededSecrets(vars, settings);
  out.push(`secrets it needs (\`npm run check -- --env ${env} --new-secrets FILE\` makes a file of them, \`--put-secrets FILE\` puts it):`);
  for (const name of needed) out.push(`  ${name.padEnd(26)} ${SECRETS[name]?.how ?? ""}`);

  let deployed = false;
  if (remote) {
    const report = await remoteReport(config, env, needed);
    out.push(...report.lines);
    problems.push(...report.problems);
    deployed = report.deployed;
  } else {
    const kv = config.kv_namespaces.find((b) => b.binding === "KEYS_KV");
    out.push(
      `not verified (no Cloudflare credentials: set CLOUDFLARE_API_TOKEN, or pass --remote after \`npx wrangler login\`): ${NOT_VERIFIED}`,
    );
    if (kv && !kv.id)
      out.push(`  (KEYS_KV has no id: the first deploy creates KV namespace ${provisionedKvTitle(String(config.name), "KEYS_KV")})`);
  }
  if (checked.warnings.length) {
    out.push(`warnings:`);
    for (const w of checked.warnings) out.push(`  ! ${w}`);
  }
  const deploy = `\`npx wrangler deploy --env ${env}\``;
  if (problems.length) {
    out.push(`${problems.length} problem${problems.length > 1 ? "s" : ""}:`);
    for (const p of problems) out.push(`  x ${p}`);
    out.push(`NOT READY: fix the above, then \`npm run check -- --env ${env}\` again`);
    return { ok: false, text: out.join("\n") };
  }
  if (!remote && !offline) {
    out.push(`NOT VERIFIED: wrangler.toml has no problem, but ${NOT_VERIFIED} were not checked (\`--offline\` accepts that)`);
    return { ok: false, text: out.join("\n") };
  }
  out.push(
    !remote
      ? `ready (offline: ${NOT_VERIFIED} not verified): ${deploy}`
      : deployed
        ? `ready: ${config.name} is deployed with everything it needs; ship a change with ${deploy}`
        : `ready: ${deploy} (the first deploy creates the resources above and the AccountGuard class)`,
  );
  return { ok: true, text: out.join("\n") };
}

/**
 * `--write-ids`: the ids of the resources wrangler created for the environment, into its tables of wrangler.toml.
 * @param {CheckArgs} args
 * @returns {Promise<Outcome>}
 */
async function writeResourceIds({ env, configPath }) {
  const { config, error } = loadEnvironment(env, configPath);
  if (error !== undefined) return { ok: false, text: error };
  /** @type {RemoteState} */
  let state;
  try {
    state = await remoteState(config, { kvBinding: "KEYS_KV", d1Binding: "DB", r2Binding: "RESULTS" });
  } catch (err) {
    return { ok: false, text: `Cloudflare could not be asked: ${/** @type {Error} */ (err).message}` };
  }
  const ids = [
    state.kv.id && { table: "kv_namespaces", binding: "KEYS_KV", field: "id", value: state.kv.id },
    state.d1.id && { table: "d1_databases", binding: "DB", field: "database_id", value: state.d1.id },
  ].filter((id) => !!id);
  if (!ids.length)
    return {
      ok: false,
      text: `nothing to write: no resource of ${config.name} exists yet (the first \`npx wrangler deploy --env ${env}\` creates them)`,
    };
  const written = writeIds(configPath, env, ids);
  return {
    ok: true,
    text: written.length
      ? `wrote into [env.${env}] of ${configPath}: ${written.map((w) => `${w.binding} ${w.field} = "${w.value}"`).join(", ")} (commit it)`
      : `${configPath} already has the ids`,
  };
}

/**
 * `--dry-run`: the build `wrangler deploy` would upload, once the check passes.
 * @param {CheckArgs} args
 * @returns {Promise<Outcome>}
 */
async function dryRun(args) {
  const checked = await check(args);
  if (!checked.ok) return checked;
  console.log(checked.text);
  /** @type {number | null} */
  const code = await new Promise((done) =>
    spawn(
      join(root, "node_modules", ".bin", "wrangler"),
      ["deploy", "--dry-run", "--outdir", "dist", "--env", args.env, "--config", args.configPath],
      {
        cwd: root,
        env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
        stdio: "inherit",
      },
    ).on("close", done),
  );
  return {
    ok: code === 0,
    text: code === 0 ? `built for ${args.env} (dist/), nothing uploaded` : `\`wrangler deploy --dry-run\` failed (exit ${code})`,
  };
}

/** All of stdin, without the newline a command such as `openssl rand -hex 32` ends with. */
async function readStdin() {
  if (process.stdin.isTTY) return "";
  let text = "";
  for await (const chunk of process.stdin) text += chunk;
  return text.replace(/\r?\n$/, "");
}

/**
 * The secrets modes: the vars and schema they check values against.
 * @param {Options} values
 * @param {string} configPath
 * @param {() => Promise<string>} readInput where `--put-secret` reads its value
 * @returns {Promise<Outcome>}
 */
async function secretsMode(values, configPath, readInput) {
  // No --env: loadEnvironment answers with the usage.
  const env = values.env ?? "";
  const { config, error } = loadEnvironment(env, configPath);
  if (error !== undefined) return { ok: false, text: error };
  const settings = /** @type {SettingsModule} */ (await importTs("src/config/settings.ts"));
  const args = { env, configPath, vars: config.vars ?? {}, settings };
  if (values["new-secrets"]) return newSecrets({ ...args, file: resolve(values["new-secrets"]) });
  if (values["put-secrets"]) return putSecrets({ ...args, file: resolve(values["put-secrets"]) });
  return putSecret({ ...args, name: values["put-secret"] ?? "", value: await readInput() });
}

/**
 * The command line's options (parseArgs below).
 * @typedef {{
 *   env?: string,
 *   config?: string,
 *   remote?: boolean,
 *   offline?: boolean,
 *   "put-secret"?: string,
 *   "put-secrets"?: string,
 *   "new-secrets"?: string,
 *   "write-ids"?: boolean,
 *   "dry-run"?: boolean,
 * }} Options
 */

/**
 * `npm run check` with `argv` (the arguments after the script's name): what it prints and
 * whether the deployment passed. `readInput` is where `--put-secret` reads its value
 * (stdin). Tests call this in-process; `node scripts/check.mjs` prints the text and exits
 * 1 on any problem.
 * @param {string[]} argv
 * @param {{ readInput?: () => Promise<string> }} [io]
 * @returns {Promise<Outcome>}
 */
export async function main(argv, { readInput = readStdin } = {}) {
  /** @type {Options} */
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        env: { type: "string" },
        config: { type: "string" },
        remote: { type: "boolean" },
        offline: { type: "boolean" },
        "put-secret": { type: "string" },
        "put-secrets": { type: "string" },
        "new-secrets": { type: "string" },
        "write-ids": { type: "boolean" },
        "dry-run": { type: "boolean" },
      },
    }));
  } catch (err) {
    return { ok: false, text: `${/** @type {Error} */ (err).message}\n${USAGE}` };
  }
  const configPath = resolve(values.config ?? join(root, "wrangler.toml"));
  const remote = !values.offline && (values.remote || Boolean(process.env.CLOUDFLARE_API_TOKEN));
  // No --env: loadEnvironment answers with the usage.
  const args = { env: values.env ?? "", configPath, remote, offline: values.offline };
  if (values["put-secret"] || values["put-secrets"] || values["new-secrets"]) return secretsMode(values, configPath, readInput);
  if (values["write-ids"]) return writeResourceIds(args);
  if (values["dry-run"]) return dryRun(args);
  return check(args);
}

// Run as a script (not imported): print the outcome, exit 1 on any problem.
if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const result = await main(process.argv.slice(2));
  (result.ok ? console.log : console.error)(result.text);
  process.exit(result.ok ? 0 : 1);
}
