import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CloudflareApi, startCloudflareApi } from "./cloudflare-api";
import { checkHere, filledIn, root, run, writeConfig } from "./deploy-config";

const work = mkdtempSync(join(tmpdir(), "zgate-check-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
// As `run` does for the command: never the caller's Cloudflare credentials.
delete process.env.CLOUDFLARE_API_TOKEN;

/** The command itself: `node scripts/check.mjs <args>` (`npm run check -- <args>`). */
const command = (args: string[], env: Record<string, string> = {}, input = "") =>
  run(process.execPath, [join(root, "scripts", "check.mjs"), ...args], env, input);

/**
 * `npm run check -- --offline` on the committed wrangler.toml, or on a copy with this text:
 * what wrangler.toml alone shows. In this process (checkHere); `command` runs the real one.
 */
const check = (env: string, text?: string, flags = ["--offline"]) =>
  checkHere(["--env", env, ...(text === undefined ? [] : ["--config", writeConfig(work, text)]), ...flags]);

/** `text` with the last `from` (the production environment's, the last section) made `to`. */
function inProduction(text: string, from: string, to: string): string {
  const at = text.lastIndexOf(from);
  return text.slice(0, at) + to + text.slice(at + from.length);
}

/** The filled-in file with `lines` added to one environment's vars. */
function withVars(env: string, ...lines: string[]): string {
  return filledIn().replace(`[env.${env}.vars]\n`, `[env.${env}.vars]\n${lines.join("\n")}\n`);
}

describe("npm run check", () => {
  it.each(["staging", "production"])("refuses the committed wrangler.toml for %s: empty origins; no ids is no problem", async (env) => {
    const { code, text } = await check(env);
    expect(code).toBe(1);
    for (const name of ["ORIGIN_ZAKGT", "ORIGIN_ZSKY", "ORIGIN_ZAPPWAY", "ZAKGT_JWKS_URL"]) {
      expect(text).toContain(`x ${name} is not set (all three products would answer 503)`);
    }
    expect(text).toContain("4 problems");
    expect(text).toContain(`NOT READY`);
    expect(text).toContain(`the first deploy creates KV namespace zgate-${env}-keys-kv`);
    // Neither takes a live hostname at once: production's custom domains come one at a time (docs/deploy.md).
    expect(text).toContain("serves its workers.dev hostname only: a deploy takes no product traffic");
  });

  it("passes a filled-in configuration with --offline, saying what it did not verify, and lists the secrets to put", async () => {
    const { code, text } = await check("production", filledIn());
    expect(text).toContain(
      "ready (offline: the secrets on Cloudflare, the resources the first deploy created, the D1 migrations applied not verified): `npx wrangler deploy --env production`",
    );
    expect(code).toBe(0);
    expect(text).toMatch(/ORIGIN_ASSERTION_KEYS +\{"<kid>": "<Ed25519 private key>"\}/);
    expect(text).toMatch(/RESULT_SIGNING_KEYS +\{"<RESULT_SIGNING_KEY_ID>"/);
    expect(text).toMatch(/ADMIN_TOKEN +openssl rand -hex 32/);
    // A warning, not a problem: GATEWAY_HOSTS is optional, but unset it leaves zgate's own surface on no host.
    expect(text).toContain(
      "! GATEWAY_HOSTS is not set: the admin API (/admin/v1), the security console (/admin/) and the leak intake (/security/v1) answer on no host",
    );
  });

  it("offline without --offline, names what it could not verify and exits 1", async () => {
    const { code, text } = await check("production", filledIn(), []);
    expect(code).toBe(1);
    expect(text).toContain(
      "NOT VERIFIED: wrangler.toml has no problem, but the secrets on Cloudflare, the resources the first deploy created, the D1 migrations applied were not checked (`--offline` accepts that)",
    );
    expect(text).not.toMatch(/^ready/m);
  });

  it("has no GATEWAY_HOSTS warning once it is set", async () => {
    const set = await check("production", withVars("production", 'GATEWAY_HOSTS = "gateway.zakgt.net"'));
    expect(set.code).toBe(0);
    expect(set.text).not.toContain("GATEWAY_HOSTS");
  });

  it("warns about a plain-HTTP origin in staging, where it refuses one in production", async () => {
    const http = (text: string) => text.replace(/^ORIGIN_ZSKY = "https:/gm, 'ORIGIN_ZSKY = "http:');
    const staging = await check("staging", http(filledIn()));
    expect(staging.code).toBe(0);
    expect(staging.text).toContain("! ORIGIN_ZSKY is http://");
    const production = await check("production", http(filledIn()));
    expect(production.text).toContain(
      "x ORIGIN_ZSKY is http://: the identities, keys and tokens zgate sends there would cross the network readable and changeable; production takes https:// only",
    );
    expect(production.code).toBe(1);
  });

  it("refuses a KV namespace and a D1 database staging and production share", async () => {
    const shared = inProduction(
      filledIn().replace(/(\[\[env\.\w+\.kv_namespaces\]\]\nbinding = "KEYS_KV"\n)/g, '$1id = "0123456789abcdef0123456789abcdef"\n'),
      'database_name = "zgate-production"',
      'database_name = "zgate-staging"',
    );
    const { code, text } = await check("production", shared);
    expect(text).toContain(
      "x KEYS_KV: id \"0123456789abcdef0123456789abcdef\" is also staging's: production would read and write staging's keys",
    );
    expect(text).toContain("x DB: database_name \"zgate-staging\" is also staging's: production would read and write staging's database");
    expect(code).toBe(1);
  });

  it("refuses an origin on a host the Worker serves whatever its case or final dot: a product host, a gateway host", async () => {
    const looping = inProduction(
      inProduction(
        withVars("production", 'GATEWAY_HOSTS = "Gateway.zakgt.net"'),
        'ORIGIN_ZSKY = "https://origin.zsky.example"',
        'ORIGIN_ZSKY = "https://ZSKY.ai."',
      ),
      'ORIGIN_ZAKGT = "https://origin.zakgt.example"',
      'ORIGIN_ZAKGT = "https://gateway.zakgt.net./v1"',
    );
    const { code, text } = await check("production", looping);
    expect(text).toContain("x ORIGIN_ZSKY is on zsky.ai, a host this Worker serves: requests would loop back into the gateway");
    expect(text).toContain("x ORIGIN_ZAKGT is on gateway.zakgt.net, a host this Worker serves");
    expect(code).toBe(1);
  });

  it("with Cloudflare Access for the admin API, ADMIN_TOKEN is not needed", async () => {
    const { code, text } = await check(
      "production",
      withVars("production", 'ACCESS_TEAM_DOMAIN = "acme.cloudflareaccess.com"', 'ACCESS_AUD = "aud"'),
    );
    expect(code).toBe(0);
    expect(text).not.toContain("ADMIN_TOKEN");
  });

  it.each([
    [
      "a secret written in wrangler.toml",
      withVars("production", 'ADMIN_TOKEN = "only-twenty-chars-xx"'),
      "ADMIN_TOKEN is a secret: remove it from wrangler.toml",
    ],
    [
      "an origin that is not a URL",
      inProduction(filledIn(), 'ORIGIN_ZSKY = "https://origin.zsky.example"', 'ORIGIN_ZSKY = "origin.zsky"'),
      "x ORIGIN_ZSKY is invalid: Invalid URL (all three products would answer 503)",
    ],
    [
      "a misspelt setting",
      withVars("production", 'ORIGIN_ZSKI = "https://x.example"'),
      "ORIGIN_ZSKI in [env.production.vars] is not a zgate setting: did you mean ORIGIN_ZSKY?",
    ],
    [
      "a bad optional setting, named with what it turns off",
      withVars("production", 'ACCESS_TEAM_DOMAIN = "acme.example.com"'),
      "x ACCESS_TEAM_DOMAIN is invalid: must look like <team>.cloudflareaccess.com (turns off the admin API)",
    ],
    ["a number that is not one", withVars("production", 'MAX_BODY_BYTES = "lots"'), "x MAX_BODY_BYTES is invalid"],
    [
      "JSON limits that do not parse",
      withVars("production", `LIMIT_OVERRIDES = '{"zsky": {'`),
      "x LIMIT_OVERRIDES is invalid: is not valid JSON",
    ],
    [
      "a gateway host that is a product host",
      withVars("production", 'GATEWAY_HOSTS = "zsky.ai"'),
      "x GATEWAY_HOSTS is invalid: must not name a product host",
    ],
    ["the Upstash backend without its URL", withVars("production", 'LIMITER_BACKEND = "upstash"'), "x UPSTASH_REDIS_REST_URL is not set"],
    [
      "the wrong ENVIRONMENT",
      filledIn().replace('ENVIRONMENT = "production"', 'ENVIRONMENT = "staging"'),
      'ENVIRONMENT must be "production"',
    ],
    ["no signing kid for result links", filledIn().replace(/^RESULT_SIGNING_KEY_ID = .*$/gm, ""), "RESULT_SIGNING_KEY_ID is not set"],
    [
      "a KV id that is not one",
      inProduction(filledIn(), 'binding = "KEYS_KV"\n', 'binding = "KEYS_KV"\nid = "zgate-keys"\n'),
      'KEYS_KV: id "zgate-keys" is not a KV namespace id',
    ],
    [
      "a placeholder id",
      inProduction(filledIn(), 'binding = "KEYS_KV"\n', 'binding = "KEYS_KV"\nid = "REPLACE_WITH_PRODUCTION_KV_NAMESPACE_ID"\n'),
      'KEYS_KV: id "REPLACE_WITH_PRODUCTION_KV_NAMESPACE_ID" is a placeholder: remove the line (the first deploy creates the resource)',
    ],
    [
      "a missing binding",
      filledIn().replace(/\[\[env\.production\.r2_buckets\]\]\nbinding = "RESULTS"\n/, ""),
      'binding RESULTS is missing: add [[env.production.r2_buckets]] with binding = "RESULTS"',
    ],
    [
      "a misspelt binding, with the name it meant",
      inProduction(filledIn(), 'binding = "KEYS_KV"', 'binding = "KEY_KV"'),
      'binding KEYS_KV is missing: [[env.production.kv_namespaces]] has "KEY_KV": did you mean KEYS_KV?',
    ],
    [
      "no Workers Logs",
      filledIn().replace("[observability]\nenabled = true", "[observability]\nenabled = false"),
      "[env.production.observability] is not enabled",
    ],
    [
      "presigned links to another bucket",
      withVars("production", 'R2_BUCKET_NAME = "other"', 'R2_ACCOUNT_ID = "a"'),
      'R2_BUCKET_NAME "other" is not the RESULTS bucket',
    ],
    [
      "an origin on a host the gateway serves",
      inProduction(filledIn(), 'ORIGIN_ZSKY = "https://origin.zsky.example"', 'ORIGIN_ZSKY = "https://zsky.ai"'),
      "ORIGIN_ZSKY is on zsky.ai, a host this Worker serves: requests would loop back into the gateway",
    ],
    ["a file wrangler cannot read", "name = \n", "wrangler cannot read it"],
  ])("refuses %s", async (_, text, message) => {
    const outcome = await check("production", text);
    expect(outcome.text).toContain(message);
    expect(outcome.code).toBe(1);
  });

  it("reports every problem at once, the cross-setting ones too, and the secrets a setting calls for", async () => {
    const text = inProduction(
      withVars(
        "production",
        'GATEWAY_HOSTS = "zsky.ai"',
        'LIMITER_BACKEND = "upstash"',
        'UPSTASH_REDIS_REST_URL = "https://redis.example"',
      ),
      'ORIGIN_ZSKY = "https://origin.zsky.example"',
      'ORIGIN_ZSKY = "nope"',
    );
    const { code, text: out } = await check("production", text);
    expect(code).toBe(1);
    expect(out).toContain("2 problems");
    expect(out).toContain("x ORIGIN_ZSKY is invalid");
    expect(out).toContain("x GATEWAY_HOSTS is invalid: must not name a product host");
    expect(out).toMatch(/UPSTASH_REDIS_REST_TOKEN +from the Upstash console/);
  });

  it("refuses an environment it does not know, and none", async () => {
    expect((await check("qa")).text).toContain("usage: npm run check -- --env staging|production");
    // The command itself: its usage, and exit status 1.
    const none = await command([]);
    expect(none.text).toContain("usage: npm run check -- --env staging|production");
    expect(none.code).toBe(1);
  });
});

/** Secrets through the local stand-in for the Cloudflare API (test/node/cloudflare-api.ts). */
describe("npm run check's secrets", () => {
  let api: CloudflareApi;
  beforeAll(async () => {
    api = await startCloudflareApi();
    // In this process too: whatever checkHere would send goes to the stand-in, never to Cloudflare.
    Object.assign(process.env, api.env);
  });
  afterAll(() => {
    for (const name of Object.keys(api.env)) delete process.env[name];
    return api.close();
  });

  /** `<value> | npm run check -- --env production --put-secret <name>`, in this process. */
  const putSecret = (name: string, value: string) => checkHere(["--env", "production", "--put-secret", name], value);
  /** `npm run check -- --env production --put-secrets <file>` (or `--new-secrets`), in this process. */
  const secretsFile = (flag: string, file: string) => checkHere(["--env", "production", flag, file]);

  it("--put-secret refuses a value the Worker would refuse, before anything reaches Cloudflare", async () => {
    const short = await putSecret("ADMIN_TOKEN", "only-twenty-chars-xx");
    expect(short.code).toBe(1);
    expect(short.text).toContain("ADMIN_TOKEN not put: the value is refused (nothing was sent)");
    expect(short.text).toContain("x ADMIN_TOKEN is invalid: must be at least 24 characters (turns off the admin API)");
    expect(short.text).not.toContain("only-twenty-chars-xx");
    // Keys that lack the kid wrangler.toml signs with (RESULT_SIGNING_KEY_ID = "r1").
    const noKid = await putSecret("RESULT_SIGNING_KEYS", JSON.stringify({ r2: "x".repeat(64) }));
    expect(noKid.text).toContain("x RESULT_SIGNING_KEY_ID is invalid: must name one of RESULT_SIGNING_KEYS (turns off ZSky result links)");
    expect((await putSecret("ZAKGT_JWT_SECRET", "y".repeat(40))).text).toContain("is only allowed when ENVIRONMENT is development");
    expect((await putSecret("ORIGIN_ZSKY", "https://x.example")).text).toContain("ORIGIN_ZSKY is not a zgate secret");
    expect((await putSecret("ADMIN_TOKEN", "")).text).toContain("no value on stdin");
    expect(api.calls).toEqual([]);
  });

  it("--put-secret ORIGIN_ASSERTION_KEYS refuses what is no Ed25519 key, and a second key while no product names its signing key", async () => {
    const bad = await putSecret("ORIGIN_ASSERTION_KEYS", JSON.stringify({ a1: "not-an-ed25519-key" }));
    expect(bad.code).toBe(1);
    expect(bad.text).toContain("x ORIGIN_ASSERTION_KEYS is invalid: each key must be an Ed25519 private key");
    expect(bad.text).not.toContain("not-an-ed25519-key");
    // Publishing a second key (a rotation's first step) needs each product's <ID>_ASSERTION_KID first.
    const two = await putSecret("ORIGIN_ASSERTION_KEYS", JSON.stringify({ a1: "A".repeat(43), a2: "B".repeat(43) }));
    expect(two.code).toBe(1);
    for (const kid of ["ZAKGT_ASSERTION_KID", "ZSKY_ASSERTION_KID", "ZAPPWAY_ASSERTION_KID"])
      expect(two.text).toContain(`x ${kid} is not set`);
    expect(api.calls).toEqual([]);
  });

  it("--put-secrets refuses a file with one bad value, sending none of it, and never prints a value", async () => {
    const file = join(work, "bad.secrets.json");
    writeFileSync(
      file,
      JSON.stringify({ ORIGIN_ASSERTION_KEYS: JSON.stringify({ a1: "s".repeat(43) }), ADMIN_TOKEN: "short-token-value" }),
    );
    const { code, text } = await secretsFile("--put-secrets", file);
    expect(code).toBe(1);
    expect(text).toContain("ORIGIN_ASSERTION_KEYS, ADMIN_TOKEN not put: the values are refused (nothing was sent)");
    expect(text).toContain("x ADMIN_TOKEN is invalid: must be at least 24 characters");
    expect(text).not.toContain("short-token-value");
    writeFileSync(file, "ADMIN_TOKEN=abc");
    expect((await secretsFile("--put-secrets", file)).text).toContain("is not a JSON object of strings");
    expect(api.calls).toEqual([]);
  });

  it("--put-secret hands a good value to Cloudflare, without its trailing newline and without printing it", async () => {
    const value = "a-good-admin-token-0123456789abcdef";
    // The command itself, the value on its stdin as `openssl rand -hex 32 | ...` gives it.
    const { code, text } = await command(["--env", "production", "--put-secret", "ADMIN_TOKEN"], api.env, `${value}\n`);
    expect(code).toBe(0);
    expect(text).toContain("ADMIN_TOKEN put for production");
    expect(text).not.toContain(value);
    const put = api.calls.find((c) => c.method === "PATCH" && c.path.endsWith("/workers/scripts/zgate-production/settings"))!;
    expect(put.body).toContain(JSON.stringify({ type: "secret_text", name: "ADMIN_TOKEN", text: value }));
  });

  it("--new-secrets writes a new value for each secret it can make, mode 0600, and never over a file", async () => {
    const file = join(work, "production.secrets.json");
    const { code, text } = await secretsFile("--new-secrets", file);
    expect(code).toBe(0);
    expect(text).toContain(`wrote ${file} (mode 0600): ORIGIN_ASSERTION_KEYS, RESULT_SIGNING_KEYS, ADMIN_TOKEN`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const made = JSON.parse(readFileSync(file, "utf8"));
    expect(made.ORIGIN_ASSERTION_KEYS).toMatch(/^\{"a1":"[\w-]{43}"\}$/);
    expect(made.ADMIN_TOKEN).toMatch(/^[0-9a-f]{64}$/);
    expect(Object.keys(JSON.parse(made.RESULT_SIGNING_KEYS))).toEqual(["r1"]);
    for (const value of Object.values(made)) expect(text).not.toContain(value);
    const again = await secretsFile("--new-secrets", file);
    expect(again.code).toBe(1);
    expect(again.text).toContain("exists: new secrets never replace kept ones");
    expect(readFileSync(file, "utf8")).toBe(`${JSON.stringify(made, null, 2)}\n`);
  });
});
