import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { check, dryRun, filledIn, writeConfig } from "./deploy-config";

const work = mkdtempSync(join(tmpdir(), "zgate-deploy-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** `wrangler deploy --dry-run` builds every environment offline with all bindings declared. */
describe("wrangler deploy --dry-run", () => {
  it.each(["", "staging", "production"])("env %j", async (env) => {
    const { text } = await dryRun(env, join(work, `dist-${env || "top"}`));
    expect(text).toContain("--dry-run: exiting now.");
    for (const binding of ["env.ACCOUNT_GUARD (AccountGuard)", "env.KEYS_KV", "env.DB", "env.RESULTS"]) expect(text).toContain(binding);
    // wrangler 4.86 accepts every field, [observability] included: it warns about any it does not know.
    expect(text).not.toContain("WARNING");
  });
});

/** The staging path of docs/deploy.md, offline: `npm run check`, then the build, per environment. */
describe("deploy rehearsal on a filled-in wrangler.toml", () => {
  it.each(["staging", "production"])("%s", async (env) => {
    const config = writeConfig(work, filledIn());
    const checked = await check(env, config);
    expect(checked.text).toContain(`ready: \`npx wrangler deploy --env ${env}\``);
    expect(checked.code).toBe(0);
    const built = await dryRun(env, join(work, `rehearsal-${env}`), config);
    expect(built.text).toContain("--dry-run: exiting now.");
    expect(built.code).toBe(0);
    expect(built.text).toContain(`env.RESULTS (zgate-results-${env})`);
  });
});
