#!/usr/bin/env node
// Copies Swagger UI's script and stylesheet from node_modules into the Worker's static
// assets directory (wrangler.toml [assets]), so /docs needs no CDN. Run on `npm install`.
import { copyFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const source = dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));
const target = join(root, ".docs-assets", "docs", "assets", "swagger-ui-dist");
mkdirSync(target, { recursive: true });
for (const file of ["swagger-ui.css", "swagger-ui-bundle.js"]) copyFileSync(join(source, file), join(target, file));
