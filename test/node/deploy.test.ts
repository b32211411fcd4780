import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { unstable_readConfig } from "wrangler";
import { filledIn, root, run, writeConfig } from "./deploy-config";

const work = mkdtempSync(join(tmpdir(), "zgate-deploy-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/**
 * Every environment as `wrangler deploy` reads it, with wrangler's own config reader (the
 * one its dry run and deploy use): all bindings declared, and no field wrangler does not
 * know (it warns about any). What each environment's build then does is the same bundle:
 * `npm run deploy:dry` below builds it for production, test/node/deploy-sequence.test.ts
 * deploys staging with the real wrangler, and `wrangler dev` runs the top level for the
 * node tests that need a running gateway.
 */
describe("wrangler.toml as wrangler reads it", () => {
  it.each(["", "staging", "production"])("env %j: every binding declared, no warning", (env) => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined);
    try {
      const config = unstable_readConfig({ config: join(root, "wrangler.toml"), env: env || undefined });
      // wrangler 4.86 accepts every field, [observability] included: it warns about any it does not know.
      expect(warn.mock.calls.map((args) => args.join(" "))).toEqual([]);
      expect(config.durable_objects.bindings).toEqual([
        { name: "ACCOUNT_GUARD", class_name: "AccountGuard" },
        { name: "USAGE_LOG", class_name: "UsageLog" },
        { name: "USAGE_ADDRESSES", class_name: "UsageAddressIndex" },
      ]);
      expect(config.kv_namespaces.map((b: { binding: string }) => b.binding)).toEqual(["KEYS_KV"]);
      expect(config.d1_databases.map((b: { binding: string }) => b.binding)).toEqual(["DB"]);
      expect(config.r2_buckets).toEqual([{ binding: "RESULTS", bucket_name: env ? `zgate-results-${env}` : "zgate-results" }]);
    } finally {
      warn.mockRestore();
    }
  });
});

/** `npm run deploy:dry`: the check first, then the build (`wrangler deploy --dry-run`), offline. */
describe("npm run deploy:dry", () => {
  /** `npm run deploy:dry [-- ...args]`. */
  const deployDry = (...args: string[]) => run("npm", ["run", "--silent", "deploy:dry", "--", ...args]);

  it("refuses the committed, unfilled wrangler.toml before building anything", async () => {
    const { code, text } = await deployDry();
    expect(code).toBe(1);
    expect(text).toContain("x ORIGIN_ZAKGT is not set (all three products would answer 503)");
    expect(text).toContain("NOT READY");
    expect(text).not.toContain("--dry-run: exiting now.");
  });

  it("builds production once its wrangler.toml is filled in, with every binding and no warning", async () => {
    const config = writeConfig(work, filledIn());
    const built = await deployDry("--env", "production", "--config", config);
    expect(built.text).toContain(`ready (offline:`);
    expect(built.text).toContain("--dry-run: exiting now.");
    for (const binding of [
      "env.ACCOUNT_GUARD (AccountGuard)",
      "env.KEYS_KV",
      "env.DB (zgate-production)",
      "env.RESULTS (zgate-results-production)",
    ])
      expect(built.text).toContain(binding);
    expect(built.text).not.toContain("WARNING");
    expect(built.code).toBe(0);
  });
});
