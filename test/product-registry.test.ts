import { describe, expect, it } from "vitest";
import { loadSettings } from "../src/config/settings";
import { KEY_PREFIXES, generateKey, keyModeOf } from "../src/keys/key-format";
import { buildOpenApiDocument } from "../src/openapi/document";
import { PRODUCTS } from "../src/products";
import { sims } from "./helpers";

/**
 * A product is a module in src/products/ plus the pieces the rest of zgate derives from
 * it. This fails, naming the product, when one of them is missing: key prefixes, its
 * settings, a local origin simulator, or OpenAPI entries for every route.
 */
describe("every product module is complete", () => {
  it.each(PRODUCTS.map((p) => [p.id, p] as const))("%s: key prefixes, derived into the key format", (id, product) => {
    expect(product.keyPrefixes.live).toMatch(/^[a-z]+_live_$/);
    if (product.keyPrefixes.test) expect(product.keyPrefixes.test).toMatch(/^[a-z]+_test_$/);
    for (const [mode, prefix] of Object.entries(product.keyPrefixes)) {
      expect(KEY_PREFIXES[prefix!]).toEqual({ product: id, mode });
      expect(keyModeOf(generateKey(prefix!))).toBe(mode);
    }
  });

  it("no two products share a prefix, and no prefix starts another", () => {
    const prefixes = PRODUCTS.flatMap((p) => Object.values(p.keyPrefixes));
    for (const a of prefixes) for (const b of prefixes) if (a !== b) expect(b.startsWith(a!), `${a} / ${b}`).toBe(false);
  });

  it.each(PRODUCTS.map((p) => [p.id, p] as const))(
    "%s: its hosts and origin are settings, and a simulator serves it",
    async (id, product) => {
      const env = Object.fromEntries(PRODUCTS.map((p) => [p.originSetting, (sims.origins as Record<string, string | undefined>)[p.id]]));
      const settings = loadSettings({ ...env, ORIGIN_SIGNING_SECRET: "x".repeat(32), ZAKGT_JWKS_URL: sims.jwksUrl });
      expect(settings[product.originSetting], `${id}: no simulator in origins/serve.ts`).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(settings[product.hostsSetting].length).toBeGreaterThan(0);
      // The simulator answers (an unsigned request is refused, as a real origin would).
      const response = await fetch(`${settings[product.originSetting]}/__no_such_path__`);
      expect(response.status).toBe(401);
    },
  );

  it.each(PRODUCTS.map((p) => [p.id, p] as const))("%s: every route is in the OpenAPI document", (id, product) => {
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
