#!/usr/bin/env node
// `npm run openapi`: writes openapi/zgate.json from the route tables and zod schemas
// (src/openapi/document.ts). `--check` exits 1 when the committed file is stale.
// `--server <url>` (repeatable) names the deployment(s) "Try it out" calls instead of
// `npm start`'s http://127.0.0.1:8787 (the gateway's own /openapi.json always names
// the origin it is served from); `--out <file>` writes somewhere else than the committed file.
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { pathToFileURL } from "node:url";
import { importTs, root } from "./import-ts.mjs";

const committed = join(root, "openapi", "zgate.json");

/** @typedef {typeof import("../src/openapi/document")} DocumentModule */
/** @typedef {NonNullable<Parameters<DocumentModule["buildOpenApiDocument"]>[0]>[number]} Server */

/**
 * A server is an origin: the document's paths start at the host, prefixes included.
 * @param {string} text
 * @returns {Server}
 */
export function serverOf(text) {
  let url;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`--server ${text}: not a URL`);
  }
  if (!/^https?:$/.test(url.protocol) || url.username || url.password || url.pathname !== "/" || url.search || url.hash) {
    throw new Error(`--server ${text}: must be http(s)://host[:port] with no path, query or credentials`);
  }
  return { url: url.origin, description: "deployment" };
}

/**
 * The document as `npm run openapi` writes it, naming `servers` (default: `npm start`'s gateway).
 * @param {Server[]} [servers]
 */
export async function renderDocument(servers) {
  const { buildOpenApiDocument } = /** @type {DocumentModule} */ (await importTs("src/openapi/document.ts"));
  return `${JSON.stringify(buildOpenApiDocument(servers), null, 2)}\n`;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  let options;
  try {
    const { values } = parseArgs({
      options: { check: { type: "boolean" }, server: { type: "string", multiple: true }, out: { type: "string" } },
    });
    options = { ...values, servers: values.server?.map(serverOf) };
  } catch (err) {
    console.error(`npm run openapi: ${/** @type {Error} */ (err).message}`);
    process.exit(2);
  }
  const target = options.out ? resolve(options.out) : committed;
  const text = await renderDocument(options.servers);
  if (options.check) {
    if (readFileSync(target, "utf8") !== text) {
      console.error(`${target} is stale: run \`npm run openapi\``);
      process.exit(1);
    }
  } else {
    writeFileSync(target, text);
    console.log(`wrote ${target} (${Object.keys(JSON.parse(text).paths).length} paths)`);
  }
}
