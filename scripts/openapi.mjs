#!/usr/bin/env node
// `npm run openapi`: writes openapi/zgate.json from the route tables and zod schemas
// (src/openapi/document.ts). `--check` exits 1 when the committed file is stale.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { importTs, root } from "./import-ts.mjs";

const target = join(root, "openapi", "zgate.json");

export async function renderDocument() {
  const { buildOpenApiDocument } = await importTs("src/openapi/document.ts");
  return `${JSON.stringify(buildOpenApiDocument(), null, 2)}\n`;
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
