import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);
const root = new URL("../..", import.meta.url).pathname;

/** `wrangler deploy --dry-run` builds every environment offline with all bindings declared. */
describe("wrangler deploy --dry-run", () => {
  it.each(["", "staging", "production"])("env %j", async (env) => {
    const out = mkdtempSync(join(tmpdir(), "zgate-dist-"));
    try {
      const { stdout, stderr } = await run(
        join(root, "node_modules", ".bin", "wrangler"),
        ["deploy", "--dry-run", "--outdir", out, `--env=${env}`],
        { cwd: root, env: { ...process.env, WRANGLER_SEND_METRICS: "false" }, timeout: 90_000 },
      );
      const text = stdout + stderr;
      expect(text).toContain("--dry-run: exiting now.");
      for (const binding of ["env.ACCOUNT_GUARD (AccountGuard)", "env.KEYS_KV", "env.DB", "env.RESULTS"]) expect(text).toContain(binding);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
