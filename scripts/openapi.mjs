#!/usr/bin/env node
// `npm run openapi`: writes openapi/zgate.json from the route tables and zod schemas
// (src/openapi/document.ts). `--check` exits 1 when the committed file is stale.
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";

const root = new URL("..", import.meta.url).pathname;
const target = join(root, "openapi", "zgate.json");

export async function renderDocument() {
  const dir = mkdtempSync(join(tmpdir(), "zgate-openapi-"));
  try {
    const outfile = join(dir, "document.mjs");
    await build({
      entryPoints: [join(root, "src", "openapi", "document.ts")],
      bundle: true,
      platform: "node",
      format: "esm",
      outfile,
      logLevel: "error",
    });
    const { buildOpenApiDocument } = await import(pathToFileURL(outfile).href);
    return `${JSON.stringify(buildOpenApiDocument(), null, 2)}\n`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const text = await renderDocument();
  if (process.argv.includes("--check")) {
    if (readFileSync(target, "utf8") !== text) {
      console.error("openapi/zgate.json is stale: run `npm run openapi`");
      process.exit(1);
    }
  } else {
    writeFileSync(target, text);
    console.log(`wrote ${target} (${Object.keys(JSON.parse(text).paths).length} paths)`);
  }
}
