import { z } from "@hono/zod-openapi";
import { describe, expect, it } from "vitest";
import { loadSettings, productSettings, settingNames } from "../src/config/settings";
import { generateKey, keyModeOf, keyPrefixes } from "../src/keys/key-format";
import { buildOpenApiDocument } from "../src/openapi/document";
import { productProblems } from "../src/products/completeness";
import { products, registerProduct } from "../src/products";
import type { Product } from "../src/products/types";
import { zfour } from "./fixtures/products/zfour";
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
    const settings = loadSettings({ ...sims.originSettings, ORIGIN_ASSERTION_KEYS: sims.assertionKeys, ZAKGT_JWKS_URL: sims.jwksUrl });
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

describe("registering a product", () => {
  it("a product that lacks a piece, or takes another's, is refused, naming the product and the piece", () => {
    const refused = (change: Partial<Product>) => () => registerProduct({ ...zfour, ...change });
    expect(refused({ errorSchema: z.object({ message: z.string() }) })).toThrow(
      "product zfour: its envelope does not match its error schema",
    );
    expect(refused({ keyPrefixes: { live: "zsky_live_" } })).toThrow("product zfour: key prefix zsky_live_ overlaps another product's");
    expect(refused({ pathPrefix: "/zsky" })).toThrow("product zfour: path prefix /zsky is taken");
    // zgate's own paths on a gateway host: a product under one would shadow it, or be shadowed.
    expect(refused({ pathPrefix: "/healthz" })).toThrow("product zfour: path prefix /healthz is not a path of its own");
    expect(refused({ defaultHosts: ["zsky.ai"] })).toThrow("product zfour: host zsky.ai is another product's");
    expect(refused({ id: "zsky" })).toThrow("product zsky: the id zsky is taken");
    expect(
      refused({ limits: { windows: [{ name: "minute", subject: "key", limit: 3, windowSeconds: 60, routes: ["things.all"] }] } }),
    ).toThrow("product zfour: window minute names route things.all, which it does not have");
    expect(products().map((p) => p.id)).toEqual(["zakgt", "zsky", "zappway"]);
  });

  it("a product registered is in every list derived from the registry, and leaves them when it goes", () => {
    const unregister = registerProduct(zfour);
    try {
      expect(settingNames()).toEqual(expect.arrayContaining(["ORIGIN_ZFOUR", "ZFOUR_HOSTS"]));
      expect(keyPrefixes()["zf_live_"]).toEqual({ product: "zfour", mode: "live" });
      expect(Object.keys(buildOpenApiDocument().paths ?? {})).toContain("/zfour/v2/things");
    } finally {
      unregister();
    }
    expect(settingNames()).not.toContain("ORIGIN_ZFOUR");
    expect(keyPrefixes()["zf_live_"]).toBeUndefined();
  });
});
