import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { publishedKeys } from "../src/forward/assertion-keys";
import { registerProduct } from "../src/products";
import { Browser } from "./console/browser";
import { zfour } from "./fixtures/products/zfour";
import { createZfourSimulator } from "./fixtures/products/zfour/origin";
import { admin, bearer, call, freshAccount, json, sims } from "./helpers";

/**
 * A product is its folder: ZFour (test/fixtures/products/zfour/), registered here and
 * nowhere else, is routed, authenticated, limited, documented and listed by the console.
 * Its origin is a simulator of its own (fixtures/products/zfour/origin.ts) that trusts
 * only zgate's assertion for it, as the three products' simulators do; inside workerd a
 * test cannot listen on a socket, so it answers the requests zgate sends to ORIGIN_ZFOUR
 * in-process, and every other request goes out as usual.
 */
const ORIGIN = "http://origin.zfour.test";
// A deployment that serves ZFour sets its origin like any product's: ORIGIN_<ID>.
const settings = { ORIGIN_ZFOUR: ORIGIN };
const origin = createZfourSimulator(await publishedKeys(JSON.parse(sims.assertionKeys)));

let unregister = () => {};
beforeAll(() => {
  unregister = registerProduct(zfour);
  const network = globalThis.fetch;
  vi.spyOn(globalThis, "fetch").mockImplementation((input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    return url.startsWith(`${ORIGIN}/`) ? origin(new Request(input, init)) : network(input, init);
  });
});
afterAll(() => {
  vi.restoreAllMocks();
  unregister();
});

/** A key through the admin API, a ZFour key as any product's. */
async function keyOf(product = "zfour"): Promise<{ id: string; key: string; account: string }> {
  const account = freshAccount(product);
  const response = await admin("/keys", { json: { product, account }, settings });
  expect(response.status).toBe(201);
  const body = await json(response);
  return { id: body.id, key: body.key, account };
}

describe("a fourth product, registered from its folder", () => {
  it("is routed by its host and by its path prefix to its own origin, which sees zgate's assertion", async () => {
    const { key, account } = await keyOf();
    const byPrefix = await call("/zfour/v2/things", { headers: bearer(key), settings });
    expect(byPrefix.status).toBe(200);
    expect(await json(byPrefix)).toEqual({ things: [{ id: "t1", name: "first thing" }], seen_by: account });
    const byHost = await call("/v2/things/t7", { base: "https://api.zfour.test", headers: bearer(key), settings });
    expect(await json(byHost)).toEqual({ id: "t7", name: "thing t7" });
    // Its route table: unknown paths and methods in its own envelope.
    const missing = await call("/zfour/v2/nothing", { headers: bearer(key), settings });
    expect(missing.status).toBe(404);
    expect(await json(missing)).toEqual({ fault: { kind: "NOT_FOUND", reason: "Not Found" } });
    const wrongMethod = await call("/zfour/v2/things", { method: "POST", headers: bearer(key), settings });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get("allow")).toBe("GET, HEAD");
  });

  it("is authenticated by its own credential convention and key prefix; another product's key is no key of it", async () => {
    const { id, key, account } = await keyOf();
    expect(key).toMatch(/^zf_live_[0-9A-Za-z]{36}$/);
    const none = await call("/zfour/v2/things", { settings });
    expect(none.status).toBe(401);
    expect(await json(none)).toEqual({ fault: { kind: "UNAUTHORIZED", reason: "No ZFour key" } });
    const zappway = await keyOf("zappway");
    const foreign = await call("/zfour/v2/things", { headers: bearer(zappway.key), settings });
    expect(foreign.status).toBe(401);
    expect(await json(foreign)).toEqual({ fault: { kind: "UNAUTHORIZED", reason: "Unknown ZFour key" } });
    // A route zgate answers itself, by the handler the route carries.
    const whoami = await call("/zfour/v2/whoami", { headers: bearer(key), settings });
    expect(await json(whoami)).toEqual({ key_id: id, account });
  });

  it("is limited by its own windows: the fourth call in a minute is a 429 in its envelope, with RateLimit fields and Retry-After", async () => {
    const { key } = await keyOf();
    for (let i = 0; i < 3; i++) {
      const ok = await call("/zfour/v2/things", { headers: bearer(key), settings });
      expect(ok.status).toBe(200);
      expect(ok.headers.get("ratelimit-policy")).toBe('"minute";q=3;w=60');
      expect(ok.headers.get("ratelimit")).toMatch(new RegExp(`^"minute";r=${2 - i};t=\\d+$`));
    }
    const refused = await call("/zfour/v2/things", { headers: bearer(key), settings });
    expect(refused.status).toBe(429);
    expect(await json(refused)).toEqual({ fault: { kind: "RATE_LIMITED", reason: "Rate limit exceeded" } });
    expect(refused.headers.get("ratelimit-policy")).toBe('"minute";q=3;w=60');
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
  });

  it("is documented in the OpenAPI document: its operations, security scheme, error envelope, tag and product name", async () => {
    const doc = await json(await call("/openapi.json", { settings }));
    const list = doc.paths["/zfour/v2/things"].get;
    expect(list.operationId).toBe("zfour.things.list");
    expect(list.tags).toEqual(["zfour"]);
    expect(list.security).toEqual([{ ZfourApiKey: [] }]);
    expect(list.responses["200"].content["application/json"].schema.$ref).toBe("#/components/schemas/ZfourThingList");
    expect(list.responses["429"].content["application/json"].schema.$ref).toBe("#/components/schemas/ZfourError");
    expect(Object.keys(list.responses["429"].headers)).toEqual(expect.arrayContaining(["RateLimit", "Retry-After"]));
    expect(doc.paths["/zfour/v2/whoami"].get.responses).not.toHaveProperty("502");
    expect(doc.components.securitySchemes.ZfourApiKey).toEqual({ type: "http", scheme: "bearer", description: "`zf_live_…`" });
    expect(doc.components.schemas.Product.enum).toEqual(["zakgt", "zsky", "zappway", "zfour"]);
    expect(doc.tags).toContainEqual({ name: "zfour", description: 'ZFour: things. Errors: {"fault": {"kind", "reason"}}' });
    expect(doc.info.description).toContain("in front of ZakGT, ZSky, ZappWay and ZFour");
  });

  it("is listed by the console: its product filters and key form name it, and its keys are found by it", async () => {
    const { account } = await keyOf();
    const browser = new Browser({ settings });
    await browser.signIn();
    for (const page of ["/admin/", "/admin/calls", "/admin/keys/new"]) {
      const html = await (await browser.get(page)).text();
      expect(html, page).toMatch(/<option value="zfour"/);
    }
    const found = await (await browser.get(`/admin/?product=zfour&account=${account}`)).text();
    expect(found).toContain(account);
    expect(found).toContain("zf_live_");
  });
});
