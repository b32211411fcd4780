import { mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CloudflareApi, startCloudflareApi } from "./cloudflare-api";
import { checkHere, committed, filledIn, root, run, type Outcome } from "./deploy-config";

/**
 * docs/deploy.md's steps from a clone to a first staging deploy, each followed by the
 * `npm run check` the doc runs after it, then a later version uploaded with no traffic,
 * deployed, and rolled back: the real wrangler against a local stand-in for the
 * Cloudflare API (test/node/cloudflare-api.ts), whose recorded calls and state are what
 * Cloudflare would hold. One sequence, so each step starts from the state the last left.
 */
describe("docs/deploy.md, clone to a first staging deploy, against a stand-in Cloudflare API", () => {
  let api: CloudflareApi;
  // The copy of the repository's wrangler.toml the steps edit, beside a link to migrations/
  // (wrangler finds migrations_dir next to the config).
  const work = mkdtempSync(join(tmpdir(), "zgate-sequence-"));
  const config = join(work, "wrangler.toml");
  const secretsFile = join(work, "staging.secrets.json");
  const migrations = readdirSync(join(root, "migrations")).filter((f) => f.endsWith(".sql"));
  beforeAll(async () => {
    api = await startCloudflareApi();
    // The checks run in this process (checkHere): its credentials are the stand-in's.
    Object.assign(process.env, api.env);
    symlinkSync(join(root, "migrations"), join(work, "migrations"));
  });
  afterAll(async () => {
    for (const name of Object.keys(api.env)) delete process.env[name];
    await api.close();
    rmSync(work, { recursive: true, force: true });
  });

  /** `npm run check -- --env staging` on the config, in this process. */
  const check = (...flags: string[]) => checkHere(["--env", "staging", "--config", config, ...flags]);
  const wrangler = (...args: string[]): Promise<Outcome> =>
    run(join(root, "node_modules", ".bin", "wrangler"), [...args, "--env", "staging", "--config", config], api.env);
  const problems = (text: string) => text.split("\n").filter((l) => l.startsWith("  x "));
  const script = () => api.scripts.get("zgate-staging")!;
  const serving = () => script().deployments[0]!.versions;
  const changes = () => api.calls.filter((c) => c.method !== "GET");

  it("runs every step, each checked, and rolls back", { timeout: 300_000 }, async () => {
    const started = Date.now();
    // Credentials set: the check now reaches Cloudflare, which has nothing yet, and changes nothing there.
    writeFileSync(config, committed());
    let step = await check();
    expect(step.text).toContain("Cloudflare: Worker zgate-staging is not deployed yet");
    expect(step.text).toContain("x ORIGIN_ZAKGT is not set");
    expect(step.text).toContain("x secret ORIGIN_ASSERTION_KEYS is not set on Cloudflare");
    expect(step.code).toBe(1);
    expect(changes()).toEqual([]);

    // Fill in the vars: what is left is the secrets.
    writeFileSync(
      config,
      filledIn().replace("[env.staging.vars]\n", '[env.staging.vars]\nGATEWAY_HOSTS = "zgate-staging.zgate-test.workers.dev"\n'),
    );
    // Make the secrets (a local file: independent of the check, so beside it).
    const [afterVars, made] = await Promise.all([check(), check("--new-secrets", secretsFile)]);
    expect(problems(afterVars.text)).toEqual(
      ["ORIGIN_ASSERTION_KEYS", "RESULT_SIGNING_KEYS", "ADMIN_TOKEN"].map(
        (name) => `  x secret ${name} is not set on Cloudflare: \`npm run check -- --env staging --put-secrets FILE\``,
      ),
    );
    expect(made.code).toBe(0);

    // Put them in one step: ready for the first deploy, nothing created yet.
    const put = await check("--put-secrets", secretsFile);
    expect(put.text).toContain("ORIGIN_ASSERTION_KEYS, RESULT_SIGNING_KEYS, ADMIN_TOKEN put for staging");
    step = await check();
    expect(step.text).toContain("ready: `npx wrangler deploy --env staging` (the first deploy creates the resources above");
    expect(step.code).toBe(0);
    expect([api.kv, api.d1, api.r2]).toEqual([[], [], []]);

    // The first deploy: wrangler creates the KV namespace, D1 database and R2 bucket named in
    // the config (the namespace under the name it gives one), the Durable Object classes, and
    // serves on workers.dev only: no route, no custom domain.
    const deployed = await wrangler("deploy");
    expect(deployed.code).toBe(0);
    // Staging's build (the one test/node/deploy.test.ts's dry run does for production): no warning.
    expect(deployed.text).not.toContain("WARNING");
    expect(api.kv.map((n) => n.title)).toEqual(["zgate-staging-keys-kv"]);
    expect(api.d1.map((db) => db.name)).toEqual(["zgate-staging"]);
    expect(api.r2.map((b) => b.name)).toEqual(["zgate-results-staging"]);
    const first = script().versions.at(-1)!;
    expect(first.metadata.migrations).toMatchObject({
      new_tag: "v2",
      steps: [{ new_sqlite_classes: ["AccountGuard"] }, { new_sqlite_classes: ["UsageLog", "UsageAddressIndex"] }],
    });
    expect(first.metadata.bindings).toEqual(
      expect.arrayContaining([
        { name: "KEYS_KV", type: "kv_namespace", namespace_id: api.kv[0]!.id },
        { name: "DB", type: "d1", id: api.d1[0]!.uuid },
        { name: "RESULTS", type: "r2_bucket", bucket_name: "zgate-results-staging" },
      ]),
    );
    expect(Object.keys(first.secrets).sort()).toEqual(["ADMIN_TOKEN", "ORIGIN_ASSERTION_KEYS", "RESULT_SIGNING_KEYS"]);
    expect(JSON.parse(readFileSync(secretsFile, "utf8"))).toEqual(first.secrets);
    expect(serving()).toEqual([{ version_id: first.id, percentage: 100 }]);
    expect(script().subdomain.enabled).toBe(true);
    expect(api.calls.filter((c) => /\/workers\/domains|\/zones\/|\/routes/.test(c.path))).toEqual([]);
    step = await check();
    expect(step.text).toContain("Cloudflare: Worker zgate-staging is deployed");
    expect(problems(step.text)).toEqual([
      `  x KEYS_KV: KV namespace zgate-staging-keys-kv exists on Cloudflare (${api.kv[0]!.id}) but wrangler.toml has no id for it: \`npm run check -- --env staging --write-ids\``,
      `  x DB: D1 database zgate-staging exists on Cloudflare (${api.d1[0]!.uuid}) but wrangler.toml has no id for it: \`npm run check -- --env staging --write-ids\``,
      `  x D1: ${migrations.length} migration${migrations.length > 1 ? "s" : ""} not applied (${migrations.join(", ")}): \`npx wrangler d1 migrations apply DB --remote --env staging\``,
    ]);

    // The ids into wrangler.toml (staging's tables only, comments kept): what `d1 migrations apply --remote` needs.
    const before = readFileSync(config, "utf8");
    expect((await check("--write-ids")).code).toBe(0);
    const after = readFileSync(config, "utf8");
    expect(after).toBe(
      before
        .replace('[[env.staging.kv_namespaces]]\nbinding = "KEYS_KV"\n', `$&id = "${api.kv[0]!.id}"\n`)
        .replace('[[env.staging.d1_databases]]\nbinding = "DB"\n', `$&database_id = "${api.d1[0]!.uuid}"\n`),
    );
    step = await check();
    expect(problems(step.text)).toHaveLength(1);
    // An id that is not the bound one would move the Worker to an empty namespace on the next deploy.
    const stranger = "0".repeat(32);
    writeFileSync(config, after.replace(api.kv[0]!.id, stranger));
    expect(problems((await check()).text)[0]).toBe(
      `  x KEYS_KV: wrangler.toml's id ${stranger} is not the one zgate-staging is bound to (${api.kv[0]!.id}): a deploy would bind another KV namespace and leave the data behind (\`npm run check -- --env staging --write-ids\` writes the bound one)`,
    );
    writeFileSync(config, after);

    // Migrations in one command: every file, in order. Staging is then complete.
    expect((await wrangler("d1", "migrations", "apply", "DB", "--remote")).code).toBe(0);
    expect(api.d1[0]!.migrations).toEqual(migrations);
    step = await check();
    expect(step.text).toContain("ready: zgate-staging is deployed with everything it needs");
    expect(step.code).toBe(0);

    // A later change: a version uploaded serves nothing until deployed; then deployed; then rolled back.
    const uploaded = await wrangler("versions", "upload", "--message", "second");
    expect(uploaded.code).toBe(0);
    const second = script().versions.at(-1)!;
    expect(uploaded.text).toContain(second.id);
    expect(serving()).toEqual([{ version_id: first.id, percentage: 100 }]);
    expect((await wrangler("versions", "deploy", `${second.id}@100%`, "--yes")).code).toBe(0);
    expect(serving()).toEqual([{ version_id: second.id, percentage: 100 }]);
    const [listed, rolledBack] = [
      await wrangler("deployments", "list", "--json"),
      await wrangler("rollback", "--message", "smoke test failed", "--yes"),
    ];
    expect(
      JSON.parse(listed.text.slice(listed.text.indexOf("["))).map((d: { versions: { version_id: string }[] }) => d.versions[0]!.version_id),
    ).toContain(second.id);
    expect(rolledBack.code).toBe(0);
    expect(script().deployments[0]).toMatchObject({
      versions: [{ version_id: first.id, percentage: 100 }],
      annotations: { "workers/message": "smoke test failed" },
    });

    // Every resource was created once, whatever ran after the first deploy.
    expect([api.kv.length, api.d1.length, api.r2.length]).toEqual([1, 1, 1]);
    console.log(`deploy sequence: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });
});
