import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { dryRun, filledIn, run, writeConfig } from "./deploy-config";

const work = mkdtempSync(join(tmpdir(), "zgate-deploy-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** `wrangler deploy --dry-run` builds every environment offline with all bindings declared. */
describe("wrangler deploy --dry-run", () => {
  it.each(["", "staging", "production"])("env %j", async (env) => {
    const { text } = await dryRun(env, join(work, `dist-${env || "top"}`));
    expect(text).toContain("--dry-run: exiting now.");
    for (const binding of [
      "env.ACCOUNT_GUARD (AccountGuard)",
      "env.USAGE_LOG (UsageLog)",
      "env.USAGE_ADDRESSES (UsageAddressIndex)",
      "env.KEYS_KV",
      "env.DB",
      "env.RESULTS",
    ])
      expect(text).toContain(binding);
    // wrangler 4.86 accepts every field, [observability] included: it warns about any it does not know.
    expect(text).not.toContain("WARNING");
  });
});

/** `npm run deploy:dry`: the check first, then the build, offline. */
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

  it.each(["staging", "production"])("builds %s once its wrangler.toml is filled in", async (env) => {
    const config = writeConfig(work, filledIn());
    const built = await deployDry("--env", env, "--config", config);
    expect(built.text).toContain(`ready (offline:`);
    expect(built.text).toContain("--dry-run: exiting now.");
    expect(built.text).toContain(`env.RESULTS (zgate-results-${env})`);
    expect(built.code).toBe(0);
  });
});
