import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { check as checkConfig, filledIn, root, run, writeConfig } from "./deploy-config";

const work = mkdtempSync(join(tmpdir(), "zgate-check-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** `npm run check` on the committed wrangler.toml, or on a copy with this text. */
const check = (env: string, text?: string, extraEnv?: Record<string, string>) =>
  checkConfig(env, text === undefined ? undefined : writeConfig(work, text), extraEnv);

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
  it.each(["staging", "production"])("refuses the committed wrangler.toml for %s: placeholder ids and empty origins", async (env) => {
    const { code, text } = await check(env);
    expect(code).toBe(1);
    expect(text).toContain(`KEYS_KV: id "REPLACE_WITH_${env.toUpperCase()}_KV_NAMESPACE_ID" is a placeholder`);
    expect(text).toContain(`npx wrangler kv namespace create zgate-keys-${env}`);
    expect(text).toContain(`DB: database_id "REPLACE_WITH_${env.toUpperCase()}_D1_DATABASE_ID" is a placeholder`);
    for (const name of ["ORIGIN_ZAKGT", "ORIGIN_ZSKY", "ORIGIN_ZAPPWAY", "ZAKGT_JWKS_URL"]) {
      expect(text).toContain(`x ${name} is not set (all three products would answer 503)`);
    }
    expect(text).toContain(`NOT READY`);
    // What the deploy would take over: staging nothing live, production the three product hosts.
    expect(text).toContain(
      env === "staging"
        ? "serves its workers.dev hostname only"
        : "serves api.zakgt.net, zsky.ai, app.zappway.ai: a deploy takes their traffic at once",
    );
  });

  it("passes a filled-in configuration and lists the secrets to put, with how to make each", async () => {
    const { code, text } = await check("production", filledIn());
    expect(text).toContain("ready: `npx wrangler deploy --env production`");
    expect(code).toBe(0);
    expect(text).toMatch(/ORIGIN_SIGNING_SECRET +openssl rand -hex 32/);
    expect(text).toMatch(/RESULT_SIGNING_KEYS +printf/);
    expect(text).toMatch(/ADMIN_TOKEN +openssl rand -hex 32/);
    expect(text).toContain("secrets on Cloudflare: not checked (no credentials");
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
      "ORIGIN_ZSKI in [env.production.vars] is not a zgate setting",
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
      filledIn().replace(/^id = "[0-9a-f]{32}"$/gm, 'id = "zgate-keys"'),
      'KEYS_KV: id "zgate-keys" is not a KV namespace id',
    ],
    [
      "a missing binding",
      filledIn().replace(/\[\[env\.production\.r2_buckets\]\]\nbinding = "RESULTS"\n/, ""),
      "binding RESULTS is missing: `npx wrangler r2 bucket create zgate-results-production`",
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
    expect((await run(process.execPath, [join(root, "scripts", "check.mjs")])).code).toBe(1);
  });
});

/** A local stand-in for the Cloudflare API (CLOUDFLARE_API_BASE_URL): it holds one secret, ORIGIN_SIGNING_SECRET. */
describe("npm run check with Cloudflare credentials", () => {
  let api: Server;
  const asked: { request: string; body: string }[] = [];
  let credentials: Record<string, string>;
  beforeAll(async () => {
    api = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        asked.push({ request: `${req.method} ${req.url} ${req.headers.authorization}`, body });
        const result =
          req.method === "GET"
            ? [{ name: "ORIGIN_SIGNING_SECRET", type: "secret_text" }]
            : { name: JSON.parse(body).name, type: "secret_text" };
        res.writeHead(200, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ success: true, errors: [], messages: [], result }));
      });
    });
    await new Promise<void>((r) => api.listen(0, "127.0.0.1", r));
    credentials = {
      CLOUDFLARE_API_TOKEN: "test-token",
      CLOUDFLARE_ACCOUNT_ID: "0123456789abcdef0123456789abcdef",
      CLOUDFLARE_API_BASE_URL: `http://127.0.0.1:${(api.address() as AddressInfo).port}/client/v4`,
    };
  });
  afterAll(() => new Promise((r) => api.close(r)));
  const secrets = "GET /client/v4/accounts/0123456789abcdef0123456789abcdef/workers/scripts/zgate-production/secrets Bearer test-token";

  it("names the needed secrets Cloudflare does not have (wrangler secret list)", async () => {
    const { code, text } = await check("production", filledIn(), credentials);
    expect(asked.map((a) => a.request)).toContain(secrets);
    expect(code).toBe(1);
    expect(text).toContain("secrets on Cloudflare: 2 missing");
    expect(text).toContain("x secret RESULT_SIGNING_KEYS is not set on Cloudflare");
    expect(text).toContain("x secret ADMIN_TOKEN is not set on Cloudflare");
    expect(text).not.toContain("secret ORIGIN_SIGNING_SECRET is not set");
  });

  /** `<value> | npm run check -- --env production --put-secret <name>`. */
  const putSecret = (name: string, value: string) =>
    run(process.execPath, [join(root, "scripts", "check.mjs"), "--env", "production", "--put-secret", name], credentials, value);

  it("--put-secret refuses a value the Worker would refuse, before anything reaches Cloudflare", async () => {
    asked.length = 0;
    const short = await putSecret("ADMIN_TOKEN", "only-twenty-chars-xx\n");
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
    expect(asked).toEqual([]);
  });

  it("--put-secret hands a good value to wrangler secret put, without its trailing newline", async () => {
    asked.length = 0;
    const value = "a-good-admin-token-0123456789abcdef";
    const { code, text } = await putSecret("ADMIN_TOKEN", `${value}\n`);
    expect(code).toBe(0);
    expect(text).toContain("ADMIN_TOKEN put for production");
    expect(text).not.toContain(value);
    expect(asked.map((a) => a.request)).toEqual([secrets.replace("GET", "PUT")]);
    expect(JSON.parse(asked[0]!.body)).toMatchObject({ name: "ADMIN_TOKEN", text: value });
  });
});
