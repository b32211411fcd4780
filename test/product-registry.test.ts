import { describe, expect, it } from "vitest";
import { loadSettings, productSettings } from "../src/config/settings";
import { generateKey, keyModeOf, keyPrefixes } from "../src/keys/key-format";
import { buildOpenApiDocument } from "../src/openapi/document";
import { productProblems } from "../src/products/completeness";
import { products } from "../src/products";
import { sims } from "./helpers";

/**
 * A product is its folder in src/products/ plus one line in the registry; the rest of
 * zgate derives from it. This fails, naming the product, when a registered product lacks
 * a piece the type checker cannot see (key prefixes of its own, an envelope matching its
 * error schema, windows naming its routes, ...), a local origin simulator, its settings,
 * or OpenAPI entries for every route.
 */
const registered = products().map((p) => [p.id, p] as const);

describe("every registered product is complete", () => {
  it.each(registered)("%s: nothing missing, nothing taken from another product", (id, product) => {
    expect(productProblems(product, products()), id).toEqual([]);
  });

  it.each(registered)("%s: key prefixes, derived into the key format", (id, product) => {
    for (const [mode, prefix] of Object.entries(product.keyPrefixes)) {
      expect(keyPrefixes()[prefix!]).toEqual({ product: id, mode });
      expect(keyModeOf(generateKey(prefix!))).toBe(mode);
    }
  });

  it.each(registered)("%s: its hosts and origin are settings, and a simulator serves it", async (id, product) => {
    const origin = sims.originSettings[product.originSetting];
    expect(origin, `${id}: no simulator in origins/serve.ts`).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const settings = loadSettings({ ...sims.originSettings, ORIGIN_SIGNING_SECRET: "x".repeat(32), ZAKGT_JWKS_URL: sims.jwksUrl });
    expect(productSettings(settings, product).origin).toBe(origin);
    expect(productSettings(settings, product).hosts).toEqual(product.defaultHosts);
    // The simulator answers (an unsigned request is refused, as a real origin would).
    const response = await fetch(`${origin}/__no_such_path__`);
    expect(response.status).toBe(401);
  });

  it.each(registered)("%s: every route is in the OpenAPI document", (id, product) => {
    const document = buildOpenApiDocument() as unknown as { paths: Record<string, Record<string, { operationId?: string }>> };
    const operations = Object.values(document.paths).flatMap((item) => Object.values(item));
    for (const route of product.routes) {
      expect(
        operations.some((op) => op.operationId === `${id}.${route.name}` || op.operationId?.startsWith(`${id}.${route.name}.`)),
        `${id} ${route.name} has no OpenAPI operation`,
      ).toBe(true);
    }
  });
});
