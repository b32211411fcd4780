// The secrets half of `npm run check`: which secrets an environment needs, a file of new
// ones (`--new-secrets FILE`), and putting them on Cloudflare only once the Worker's own
// settings schema accepts them with the environment's vars (`--put-secrets FILE`, all in
// one `wrangler secret bulk`; `--put-secret NAME`, one from stdin, for a rotation).
// `wrangler secret put` and `secret bulk` deploy at once: a refused value is never sent.
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { wrangler } from "./cloudflare.mjs";

/** @typedef {typeof import("../src/config/settings")} SettingsModule The Worker's settings module (src/config/settings.ts). */
/** @typedef {Record<string, unknown>} Vars An environment's vars, as wrangler reads them from wrangler.toml. */
/** @typedef {{ ok: boolean, text: string }} Outcome What a mode of `npm run check` prints, and whether it exits 0. */

const hex32 = () => randomBytes(32).toString("hex");

/**
 * The kid a first assertion key gets: the one the vars already name (any product's
 * `<ID>_ASSERTION_KID`), else `a1`.
 * @param {Vars} vars
 */
const assertionKid = (vars) => String(Object.entries(vars).find(([name, value]) => name.endsWith("_ASSERTION_KID") && value)?.[1] ?? "a1");

/**
 * How to make each secret; `make(vars)` where `--new-secrets` can make it itself.
 * @type {Record<string, { how: string, make?: (vars: Vars) => string }>}
 */
export const SECRETS = {
  ORIGIN_ASSERTION_KEYS: {
    how: `{"<kid>": "<Ed25519 private key>"} (\`npm run jwks -- --add-key FILE\`; origins get only the public keys)`,
    // An Ed25519 private key is any 32 random bytes (src/forward/assertion-keys.ts).
    make: (vars) => JSON.stringify({ [assertionKid(vars)]: randomBytes(32).toString("base64url") }),
  },
  RESULT_SIGNING_KEYS: {
    how: `{"<RESULT_SIGNING_KEY_ID>": "<openssl rand -hex 32>"}`,
    make: (vars) => JSON.stringify({ [String(vars.RESULT_SIGNING_KEY_ID || "r1")]: hex32() }),
  },
  ADMIN_TOKEN: { how: "openssl rand -hex 32 (the admin API's bearer token)", make: hex32 },
  UPSTASH_REDIS_REST_TOKEN: { how: "from the Upstash console" },
  R2_ACCESS_KEY_ID: { how: "an R2 API token's access key id (Cloudflare dashboard, R2, Manage API tokens)" },
  R2_SECRET_ACCESS_KEY: { how: "the same R2 API token's secret" },
  LEAK_WEBHOOK_SECRET: { how: "openssl rand -hex 32 (shared with the webhook's receiver)", make: hex32 },
};

/**
 * A settings problem as the Worker would live it.
 * @type {Record<import("../src/config/settings").Feature, string>}
 */
export const FEATURES = {
  admin: "the admin API",
  "test-keys": "zak_test_ keys",
  "presigned-results": "presigned result links",
  "result-links": "ZSky result links",
  "secret-scanning": "secret-scanning intake",
  "leak-webhook": "the leak webhook",
};
/** @type {(problem: import("../src/config/settings").SettingsProblem) => string} */
export const describe = ({ setting, reason, feature }) =>
  `${setting} ${reason} (${feature ? `turns off ${FEATURES[feature]}` : "all three products would answer 503"})`;

/**
 * The secrets the vars call for: always the origin and result-link keys, the admin token unless Access guards the admin API, and any a setting needs.
 * @param {Vars} vars
 * @param {SettingsModule} settings
 */
export function neededSecrets(vars, settings) {
  const needed = new Set(["ORIGIN_ASSERTION_KEYS", "RESULT_SIGNING_KEYS"]);
  if (!(vars.ACCESS_TEAM_DOMAIN && vars.ACCESS_AUD)) needed.add("ADMIN_TOKEN");
  for (const { setting } of settings.settingsProblems(vars))
    if (settings.secretSettings().includes(setting) && vars[setting] === undefined) needed.add(setting);
  return [...needed];
}

/**
 * Problems `values` (secret name to value) would add to the environment's vars: none means the Worker accepts them.
 * @param {Vars} vars
 * @param {Record<string, string>} values
 * @param {SettingsModule} settings
 */
function refused(vars, values, settings) {
  const key = (/** @type {import("../src/config/settings").SettingsProblem} */ p) => `${p.setting} ${p.reason}`;
  const before = new Set(settings.settingsProblems(vars).map(key));
  return settings.settingsProblems({ ...vars, ...values }).filter((p) => !before.has(key(p)));
}

/**
 * A secrets file's content (a JSON object of strings, as `wrangler secret bulk` takes), or a problem.
 * @param {string} file
 * @returns {{ values: Record<string, string>, error?: undefined } | { error: string, values?: undefined }}
 */
function readSecretsFile(file) {
  if (!existsSync(file)) return { error: `${file}: no such file (\`--new-secrets ${file}\` makes one)` };
  try {
    const values = JSON.parse(readFileSync(file, "utf8"));
    if (values && typeof values === "object" && !Array.isArray(values) && Object.values(values).every((v) => typeof v === "string"))
      return { values };
  } catch {
    // reported below, never with the file's text: it holds secrets
  }
  return { error: `${file} is not a JSON object of strings ({"NAME": "value", ...})` };
}

/**
 * Checks `values` with the vars by the Worker's schema and, if it accepts them, puts them
 * all with one `wrangler secret bulk` (which creates the Worker as an empty draft if it
 * does not exist yet, and deploys the change at once if it does).
 * @param {{ env: string, configPath: string, vars: Vars, settings: SettingsModule, values: Record<string, string>, source: string }} put
 * @returns {Promise<Outcome>}
 */
async function put({ env, configPath, vars, settings, values, source }) {
  const names = Object.keys(values);
  /** @type {readonly string[]} */
  const secrets = settings.secretSettings();
  const unknown = names.filter((n) => !secrets.includes(n));
  if (unknown.length)
    return {
      ok: false,
      text: `${unknown.join(", ")} ${unknown.length > 1 ? "are" : "is"} not a zgate secret (${secrets.join(", ")}); vars go in wrangler.toml`,
    };
  const empty = names.filter((n) => !values[n]);
  if (empty.length) return { ok: false, text: `no value for ${empty.join(", ")} in ${source}` };
  const caused = refused(vars, values, settings);
  if (caused.length)
    return {
      ok: false,
      text: [
        `${names.join(", ")} not put: the value${names.length > 1 ? "s are" : " is"} refused (nothing was sent)`,
        ...caused.map((p) => `  x ${describe(p)}`),
      ].join("\n"),
    };
  try {
    await wrangler(["secret", "bulk", "--env", env, "--config", configPath], JSON.stringify(values));
  } catch (err) {
    return { ok: false, text: /** @type {Error} */ (err).message };
  }
  return { ok: true, text: `${names.join(", ")} put for ${env}` };
}

/**
 * `--put-secret NAME`: one value, read from stdin (never an argument: shell history).
 * @param {{ env: string, configPath: string, vars: Vars, settings: SettingsModule, name: string, value: string }} args
 * @returns {Outcome | Promise<Outcome>}
 */
export function putSecret({ env, configPath, vars, settings, name, value }) {
  if (!value)
    return { ok: false, text: `no value on stdin: e.g. \`openssl rand -hex 32 | npm run check -- --env ${env} --put-secret ${name}\`` };
  return put({ env, configPath, vars, settings, values: { [name]: value }, source: "stdin" });
}

/**
 * `--put-secrets FILE`: every secret in the file, in one step.
 * @param {{ env: string, configPath: string, vars: Vars, settings: SettingsModule, file: string }} args
 * @returns {Outcome | Promise<Outcome>}
 */
export function putSecrets({ env, configPath, vars, settings, file }) {
  const { values, error } = readSecretsFile(file);
  if (error !== undefined) return { ok: false, text: error };
  return put({ env, configPath, vars, settings, values, source: file });
}

/**
 * `--new-secrets FILE`: a new value for each needed secret zgate can make, written mode 0600 to a file that does not exist yet.
 * @param {{ env: string, vars: Vars, settings: SettingsModule, file: string }} args
 * @returns {Outcome}
 */
export function newSecrets({ env, vars, settings, file }) {
  if (existsSync(file)) return { ok: false, text: `${file} exists: new secrets never replace kept ones (choose another file)` };
  const needed = neededSecrets(vars, settings);
  const made = Object.fromEntries(
    needed.flatMap((n) => {
      const make = SECRETS[n]?.make;
      return make ? [[n, make(vars)]] : [];
    }),
  );
  writeFileSync(file, `${JSON.stringify(made, null, 2)}\n`, { mode: 0o600, flag: "wx" });
  const byHand = needed.filter((n) => !made[n]);
  return {
    ok: true,
    text: [
      `wrote ${file} (mode 0600): ${Object.keys(made).join(", ")}`,
      ...byHand.map((n) => `  add by hand: ${n} (${SECRETS[n]?.how ?? "see docs/configuration.md"})`),
      `keep it in your secret manager (wrangler never shows a secret again); origins need only the public keys (\`npm run jwks -- --public ${file}\`, or /.well-known/jwks.json)`,
      `next: \`npm run check -- --env ${env} --put-secrets ${file}\``,
    ].join("\n"),
  };
}
