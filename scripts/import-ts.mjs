// Imports one of the Worker's TypeScript modules from a Node script: esbuild bundles it
// (and what it imports) into a temporary ES module, so scripts use the Worker's own code,
// never a copy of it.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";

export const root = new URL("..", import.meta.url).pathname;

/** @type {Map<string, Promise<unknown>>} */
const loaded = new Map();

/**
 * The module at `path` (relative to the repository root), bundled for Node. The caller
 * casts it to the module's own type, `typeof import("../src/…")`, so what it uses is
 * checked against the Worker's code. Bundled once per process, like any import (the
 * tests call `npm run check` in-process dozens of times).
 * @param {string} path
 * @returns {Promise<unknown>}
 */
export function importTs(path) {
  let module = loaded.get(path);
  if (!module) {
    module = bundleAndImport(path);
    loaded.set(path, module);
  }
  return module;
}

/** @param {string} path */
async function bundleAndImport(path) {
  const dir = mkdtempSync(join(tmpdir(), "zgate-ts-"));
  try {
    const outfile = join(dir, "module.mjs");
    await build({ entryPoints: [join(root, path)], bundle: true, platform: "node", format: "esm", outfile, logLevel: "error" });
    return await import(pathToFileURL(outfile).href);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
