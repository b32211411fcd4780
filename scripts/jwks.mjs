#!/usr/bin/env node
// `npm run jwks`: the gateway's origin-assertion keys in a secrets file (the JSON object
// `npm run check -- --new-secrets FILE` writes, whose ORIGIN_ASSERTION_KEYS it reads and edits):
//   --public FILE         prints the public JWK Set, what /.well-known/jwks.json serves: for
//                         origins that must not fetch it (nothing secret is printed)
//   --add-key FILE        adds a new key (rotation step 1, docs/deploy.md) and prints its kid
//   --remove-key KID FILE removes a key (the rotation's last step)
// The file stays mode 0600; `npm run check -- --env <env> --put-secrets FILE` puts it.
import { chmodSync, existsSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { importTs } from "./import-ts.mjs";

/** @typedef {import("./deploy-secrets.mjs").Outcome} Outcome */

const USAGE = "usage: npm run jwks -- --public FILE | --add-key FILE | --remove-key KID FILE";

const keysModule = /** @type {() => Promise<typeof import("../src/forward/assertion-keys")>} */ (
  () => importTs("src/forward/assertion-keys.ts")
);

/**
 * The file's secrets and its parsed ORIGIN_ASSERTION_KEYS, or a problem (never the file's text: it holds secrets).
 * @param {string} file
 * @param {Awaited<ReturnType<typeof keysModule>>} keys
 * @returns {{ secrets: Record<string, string>, assertionKeys: Record<string, string>, error?: undefined } | { error: string }}
 */
function read(file, keys) {
  if (!existsSync(file)) return { error: `${file}: no such file` };
  /** @type {unknown} */
  let secrets;
  try {
    secrets = JSON.parse(readFileSync(file, "utf8"));
  } catch {
    return { error: `${file} is not JSON` };
  }
  if (!secrets || typeof secrets !== "object" || Array.isArray(secrets)) return { error: `${file} is not a JSON object of secrets` };
  const text = /** @type {Record<string, unknown>} */ (secrets).ORIGIN_ASSERTION_KEYS;
  if (typeof text !== "string") return { error: `${file} has no ORIGIN_ASSERTION_KEYS` };
  const parsed = keys.assertionKeysSetting.safeParse(text);
  if (!parsed.success) return { error: `ORIGIN_ASSERTION_KEYS in ${file} ${parsed.error.issues[0]?.message}` };
  return { secrets: /** @type {Record<string, string>} */ (secrets), assertionKeys: parsed.data };
}

/**
 * @param {string} file
 * @param {Record<string, string>} secrets
 * @param {Record<string, string>} assertionKeys
 */
function write(file, secrets, assertionKeys) {
  writeFileSync(file, `${JSON.stringify({ ...secrets, ORIGIN_ASSERTION_KEYS: JSON.stringify(assertionKeys) }, null, 2)}\n`);
  chmodSync(file, 0o600);
}

/**
 * `npm run jwks` with `argv`: what it prints and whether it succeeded. Tests call this in-process.
 * @param {string[]} argv
 * @returns {Promise<Outcome>}
 */
export async function main(argv) {
  /** @type {{ public?: string, "add-key"?: string, "remove-key"?: string }} */
  let values;
  /** @type {string[]} */
  let positionals;
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { public: { type: "string" }, "add-key": { type: "string" }, "remove-key": { type: "string" } },
    }));
  } catch (err) {
    return { ok: false, text: `${/** @type {Error} */ (err).message}\n${USAGE}` };
  }
  const keys = await keysModule();
  const file = values.public ?? values["add-key"] ?? positionals[0];
  if (!file) return { ok: false, text: USAGE };
  const found = read(file, keys);
  if (found.error !== undefined) return { ok: false, text: found.error };
  const { secrets, assertionKeys } = found;
  if (values.public) return { ok: true, text: JSON.stringify(await keys.publishedKeys(assertionKeys), null, 2) };
  if (values["add-key"]) {
    // a1, a2, ...: one more than the highest listed, so a removed kid is never reused.
    const kid = `a${1 + Math.max(0, ...Object.keys(assertionKeys).map((k) => Number(/^a(\d+)$/.exec(k)?.[1] ?? 0)))}`;
    write(file, secrets, { ...assertionKeys, [kid]: keys.newAssertionKey() });
    return {
      ok: true,
      text: `added key ${kid} to ORIGIN_ASSERTION_KEYS in ${file}: put it, wait at least ${keys.JWKS_MAX_AGE_SECONDS + 60} s, then sign with it (docs/deploy.md)`,
    };
  }
  const kid = values["remove-key"];
  if (kid) {
    if (!Object.hasOwn(assertionKeys, kid))
      return { ok: false, text: `${file} has no key ${kid} (${Object.keys(assertionKeys).join(", ")})` };
    const rest = Object.fromEntries(Object.entries(assertionKeys).filter(([k]) => k !== kid));
    if (Object.keys(rest).length === 0) return { ok: false, text: `${kid} is the only key in ${file}: add its successor first` };
    write(file, secrets, rest);
    return { ok: true, text: `removed key ${kid} from ORIGIN_ASSERTION_KEYS in ${file}` };
  }
  return { ok: false, text: USAGE };
}

// Run as a script (not imported): print the outcome, exit 1 on a problem.
if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const result = await main(process.argv.slice(2));
  (result.ok ? console.log : console.error)(result.text);
  process.exit(result.ok ? 0 : 1);
}
