#!/usr/bin/env node
// `npm run check -- --env production|staging [--config wrangler.toml] [--remote]`: checks a
// deployment's configuration before `wrangler deploy`, offline. It reads wrangler.toml the
// way wrangler does (its own config reader), validates the environment's vars with the
// Worker's own settings schema (src/config/settings.ts), and refuses placeholder ids,
// missing bindings and secrets written in wrangler.toml. It lists the secrets the
// environment needs; with Cloudflare credentials (CLOUDFLARE_API_TOKEN, or `--remote`
// after `wrangler login`) it asks `wrangler secret list` which of them are missing.
// Exit status 1 on any problem. `--put-secret NAME` checks a secret's value (stdin) the same
// way before handing it to `wrangler secret put`. The steps around it are in docs/deploy.md.
import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs, promisify } from "node:util";
import { experimental_readRawConfig, unstable_readConfig } from "wrangler";
import { importTs, root } from "./import-ts.mjs";

const ENVIRONMENTS = ["staging", "production"];

// The bindings src/env.ts declares, and the command that creates each resource.
const BINDINGS = {
  KEYS_KV: { kind: "kv_namespaces", create: (env) => `npx wrangler kv namespace create zgate-keys-${env}` },
  DB: { kind: "d1_databases", create: (env) => `npx wrangler d1 create zgate-${env}` },
  RESULTS: { kind: "r2_buckets", create: (env) => `npx wrangler r2 bucket create zgate-results-${env}` },
  ACCOUNT_GUARD: { kind: "durable_objects", className: "AccountGuard" },
};

// How to make each secret (docs/deploy.md, "Secrets").
const GENERATE = {
  ORIGIN_SIGNING_SECRET: "openssl rand -hex 32",
  RESULT_SIGNING_KEYS: `printf '{"r1":"%s"}' "$(openssl rand -hex 32)"   (with RESULT_SIGNING_KEY_ID = "r1")`,
  ADMIN_TOKEN: "openssl rand -hex 32",
  UPSTASH_REDIS_REST_TOKEN: "from the Upstash console",
  R2_ACCESS_KEY_ID: "an R2 API token's access key id (Cloudflare dashboard, R2, Manage API tokens)",
  R2_SECRET_ACCESS_KEY: "the same R2 API token's secret",
};

const FEATURES = {
  admin: "the admin API",
  "test-keys": "zak_test_ keys",
  "presigned-results": "presigned result links",
  "result-links": "ZSky result links",
};

// Words that mark a value nobody filled in (the committed wrangler.toml has REPLACE_WITH_…).
// Upper case only, so a real host or path that happens to contain "replace" passes.
const PLACEHOLDER = /REPLACE_WITH|PLACEHOLDER|CHANGE_?ME|\bTODO\b|\bFIXME\b|<[^>]*>/;
const KV_ID = /^[0-9a-f]{32}$/;
const D1_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Where in one environment's configuration something is missing or wrong: a list of messages. */
function configProblems(config, env) {
  const problems = [];
  const table = (kind) => `[[env.${env}.${kind}]]`;
  for (const [binding, spec] of Object.entries(BINDINGS)) {
    if (spec.kind === "durable_objects") {
      const bound = config.durable_objects?.bindings?.find((b) => b.name === binding);
      if (!bound) problems.push(`binding ${binding} is missing: add ${table("durable_objects.bindings")} name = "${binding}"`);
      else if (bound.class_name !== spec.className) problems.push(`binding ${binding} must name class_name "${spec.className}"`);
      if (!config.migrations?.some((m) => m.new_sqlite_classes?.includes(spec.className))) {
        problems.push(`no [[migrations]] step creates ${spec.className} as a SQLite Durable Object (new_sqlite_classes)`);
      }
      continue;
    }
    const bound = config[spec.kind]?.find((b) => b.binding === binding);
    if (!bound) {
      problems.push(`binding ${binding} is missing: \`${spec.create(env)}\`, then add it under ${table(spec.kind)}`);
      continue;
    }
    const [field, format] = { kv_namespaces: ["id", KV_ID], d1_databases: ["database_id", D1_ID], r2_buckets: ["bucket_name", /./] }[
      spec.kind
    ];
    const value = String(bound[field] ?? "");
    if (!value || PLACEHOLDER.test(value)) {
      problems.push(
        `${binding}: ${field} "${value}" is a placeholder: \`${spec.create(env)}\` prints the real one; put it in ${table(spec.kind)}`,
      );
    } else if (!format.test(value)) {
      problems.push(
        `${binding}: ${field} "${value}" is not a ${spec.kind === "kv_namespaces" ? "KV namespace id (32 hex digits)" : "D1 database id (a UUID)"}`,
      );
    }
    if (spec.kind === "d1_databases" && bound.migrations_dir !== "migrations") problems.push(`DB: migrations_dir must be "migrations"`);
  }
  if (!config.triggers?.crons?.length)
    problems.push(`no cron trigger: [env.${env}.triggers] crons = ["17 * * * *"] (result and usage retention)`);
  const rate = config.observability?.head_sampling_rate;
  if (!config.observability?.enabled)
    problems.push(`[env.${env}.observability] is not enabled: without it no request can be found in Workers Logs`);
  else if (rate !== undefined && !(rate > 0 && rate <= 1)) problems.push(`observability head_sampling_rate must be above 0 and at most 1`);
  const bucket = config.r2_buckets?.find((b) => b.binding === "RESULTS")?.bucket_name;
  if (config.vars?.R2_BUCKET_NAME && bucket && config.vars.R2_BUCKET_NAME !== bucket) {
    problems.push(
      `R2_BUCKET_NAME "${config.vars.R2_BUCKET_NAME}" is not the RESULTS bucket "${bucket}": presigned links would point at another bucket`,
    );
  }
  const served = new Set();
  for (const route of config.routes ?? []) {
    const pattern = typeof route === "string" ? route : route.pattern;
    if (PLACEHOLDER.test(pattern)) problems.push(`route "${pattern}" is a placeholder`);
    served.add(
      pattern
        .replace(/^\*\.?/, "")
        .split("/")[0]
        .toLowerCase(),
    );
  }
  // An origin on a host the Worker serves would send every request back into the gateway.
  for (const name of ["ORIGIN_ZAKGT", "ORIGIN_ZSKY", "ORIGIN_ZAPPWAY", "ORIGIN_ZAKGT_TEST"]) {
    const host = URL.canParse(config.vars?.[name] ?? "") ? new URL(config.vars[name]).hostname : null;
    if (host && served.has(host))
      problems.push(
        `${name} is on ${host}, a host this Worker serves: requests would loop back into the gateway (docs/deploy.md, "What you need")`,
      );
  }
  return problems;
}

/** A settings problem as the Worker would live it. */
const describe = ({ setting, reason, feature }) =>
  `${setting} ${reason} (${feature ? `turns off ${FEATURES[feature]}` : "all three products would answer 503"})`;

/** Problems in the vars, by the Worker's own schema, and the secrets the environment needs. */
function settingsReport(vars, env, settings) {
  const problems = [];
  const secrets = new Set(settings.SECRET_SETTINGS);
  for (const [name, value] of Object.entries(vars)) {
    if (!settings.SETTING_NAMES.includes(name)) problems.push(`${name} in [env.${env}.vars] is not a zgate setting (a typo?)`);
    if (secrets.has(name))
      problems.push(
        `${name} is a secret: remove it from wrangler.toml and put it with \`npm run check -- --env ${env} --put-secret ${name}\``,
      );
    else if (typeof value === "string" && PLACEHOLDER.test(value)) problems.push(`${name} = "${value}" is a placeholder`);
  }
  // The keys are a secret, so the schema cannot see that the kid to sign with is one of them: it must at least be set.
  if (!vars.RESULT_SIGNING_KEY_ID)
    problems.push(`RESULT_SIGNING_KEY_ID is not set: the kid in RESULT_SIGNING_KEYS that signs (turns off ${FEATURES["result-links"]})`);
  if (vars.ENVIRONMENT !== env)
    problems.push(`ENVIRONMENT must be "${env}" in [env.${env}.vars] (it is ${JSON.stringify(vars.ENVIRONMENT)})`);

  // Secrets are not in wrangler.toml: a secret the schema finds unset is one to put, not a problem here.
  const needed = new Set(["ORIGIN_SIGNING_SECRET", "RESULT_SIGNING_KEYS"]);
  if (!(vars.ACCESS_TEAM_DOMAIN && vars.ACCESS_AUD)) needed.add("ADMIN_TOKEN");
  for (const { setting, reason, feature } of settings.settingsProblems(vars)) {
    if (secrets.has(setting) && vars[setting] === undefined) {
      needed.add(setting);
      continue;
    }
    problems.push(describe({ setting, reason, feature }));
  }
  return { problems, needed: [...needed] };
}

/** The secret names Cloudflare holds for the environment's Worker, or a problem. */
async function remoteSecrets(env, configPath) {
  try {
    const { stdout } = await promisify(execFile)(
      join(root, "node_modules", ".bin", "wrangler"),
      ["secret", "list", "--env", env, "--config", configPath, "--format", "json"],
      { cwd: root, env: { ...process.env, WRANGLER_SEND_METRICS: "false" }, timeout: 60_000 },
    );
    return { names: JSON.parse(stdout).map((s) => s.name) };
  } catch (err) {
    return {
      error: `\`wrangler secret list --env ${env}\` failed: ${String(err.stderr || err.message)
        .trim()
        .split("\n")
        .slice(-3)
        .join(" ")}`,
    };
  }
}

/** One environment's configuration as wrangler reads it, or why it cannot be read. */
function loadEnvironment(env, configPath) {
  if (!ENVIRONMENTS.includes(env)) return { error: `usage: npm run check -- --env ${ENVIRONMENTS.join("|")} [--put-secret NAME]` };
  if (!existsSync(configPath)) return { error: `${configPath}: no such file` };
  try {
    const { rawConfig } = experimental_readRawConfig({ config: configPath });
    if (!rawConfig.env?.[env]) return { error: `${configPath} has no [env.${env}]` };
    return { config: unstable_readConfig({ config: configPath, env }) };
  } catch (err) {
    return { error: `${configPath}: wrangler cannot read it: ${err.message}` };
  }
}

async function check({ env, configPath, remote }) {
  const out = [];
  const problems = [];
  const { config, error } = loadEnvironment(env, configPath);
  if (error) return { ok: false, text: error };
  out.push(`zgate check: env "${env}", Worker ${config.name} (${configPath})`);
  const domains = (config.routes ?? []).map((r) => (typeof r === "string" ? r : r.pattern));
  out.push(
    domains.length
      ? `serves ${domains.join(", ")}: a deploy takes their traffic at once (a first one: docs/deploy.md, "Production cutover")`
      : `serves ${config.workers_dev ? "its workers.dev hostname only" : "no hostname (no routes, workers_dev off)"}`,
  );
  problems.push(...configProblems(config, env));
  const settings = await importTs("src/config/settings.ts");
  const report = settingsReport(config.vars ?? {}, env, settings);
  problems.push(...report.problems);

  out.push(`secrets it needs (\`npm run check -- --env ${env} --put-secret <NAME>\`, value on stdin from the command beside it):`);
  for (const name of report.needed) out.push(`  ${name.padEnd(26)} ${GENERATE[name] ?? ""}`);
  if (remote) {
    const listed = await remoteSecrets(env, configPath);
    if (listed.error) problems.push(listed.error);
    else {
      const missing = report.needed.filter((name) => !listed.names.includes(name));
      for (const name of missing)
        problems.push(`secret ${name} is not set on Cloudflare: \`npm run check -- --env ${env} --put-secret ${name}\``);
      out.push(`secrets on Cloudflare: ${missing.length ? `${missing.length} missing` : "all set"}`);
    }
  } else {
    out.push(`secrets on Cloudflare: not checked (no credentials: set CLOUDFLARE_API_TOKEN, or pass --remote after \`wrangler login\`)`);
  }
  if (problems.length) {
    out.push(`${problems.length} problem${problems.length > 1 ? "s" : ""}:`);
    for (const p of problems) out.push(`  x ${p}`);
    out.push(`NOT READY: fix the above before \`npx wrangler deploy --env ${env}\``);
  } else {
    out.push(`ready: \`npx wrangler deploy --env ${env}\``);
  }
  return { ok: problems.length === 0, text: out.join("\n") };
}

/**
 * `--put-secret NAME`: the value, read from stdin (never an argument: shell history), is
 * checked with the environment's vars by the same schema, and only a value that adds no
 * problem goes on to `wrangler secret put`, which deploys it at once. A typo in a secret
 * is then refused here instead of being an outage.
 */
async function putSecret({ env, configPath, name, value }) {
  const { config, error } = loadEnvironment(env, configPath);
  if (error) return { ok: false, text: error };
  const settings = await importTs("src/config/settings.ts");
  if (!settings.SECRET_SETTINGS.includes(name)) {
    return { ok: false, text: `${name} is not a zgate secret (${settings.SECRET_SETTINGS.join(", ")}); vars go in wrangler.toml` };
  }
  if (!value)
    return { ok: false, text: `no value on stdin: e.g. \`openssl rand -hex 32 | npm run check -- --env ${env} --put-secret ${name}\`` };
  const vars = config.vars ?? {};
  const key = (p) => `${p.setting} ${p.reason}`;
  const before = new Set(settings.settingsProblems(vars).map(key));
  const caused = settings.settingsProblems({ ...vars, [name]: value }).filter((p) => !before.has(key(p)));
  if (caused.length) {
    return {
      ok: false,
      text: [`${name} not put: the value is refused (nothing was sent)`, ...caused.map((p) => `  x ${describe(p)}`)].join("\n"),
    };
  }
  const code = await new Promise((done) => {
    const child = spawn(join(root, "node_modules", ".bin", "wrangler"), ["secret", "put", name, "--env", env, "--config", configPath], {
      cwd: root,
      env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
      stdio: ["pipe", "inherit", "inherit"],
    });
    child.on("close", done);
    child.stdin.end(value);
  });
  return { ok: code === 0, text: code === 0 ? `${name} put for ${env}` : `\`wrangler secret put ${name}\` failed (exit ${code})` };
}

/** All of stdin, without the newline a command such as `openssl rand -hex 32` ends with. */
async function readStdin() {
  if (process.stdin.isTTY) return "";
  let text = "";
  for await (const chunk of process.stdin) text += chunk;
  return text.replace(/\r?\n$/, "");
}

const { values } = parseArgs({
  options: { env: { type: "string" }, config: { type: "string" }, remote: { type: "boolean" }, "put-secret": { type: "string" } },
});
const configPath = resolve(values.config ?? join(root, "wrangler.toml"));
const result = values["put-secret"]
  ? await putSecret({ env: values.env, configPath, name: values["put-secret"], value: await readStdin() })
  : await check({ env: values.env, configPath, remote: values.remote || Boolean(process.env.CLOUDFLARE_API_TOKEN) });
(result.ok ? console.log : console.error)(result.text);
process.exit(result.ok ? 0 : 1);
