// Imports one of the Worker's TypeScript modules from a Node script: esbuild bundles it
// (and what it imports) into a temporary ES module, so scripts use the Worker's own code,
// never a copy of it.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";

export const root = new URL("..", import.meta.url).pathname;

/**
 * The module at `path` (relative to the repository root), bundled for Node. The caller
 * casts it to the module's own type, `typeof import("../src/…")`, so what it uses is
 * checked against the Worker's code.
 * @param {string} path
 * @returns {Promise<unknown>}
 */
export async function importTs(path) {
  const dir = mkdtempSync(join(tmpdir(), "zgate-ts-"));
  try {
    const outfile = join(dir, "module.mjs");
    await build({ entryPoints: [join(root, path)], bundle: true, platform: "node", format: "esm", outfile, logLevel: "error" });
    return await import(pathToFileURL(outfile).href);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
