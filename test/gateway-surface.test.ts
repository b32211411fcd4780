import { describe, expect, it } from "vitest";
import { ADMIN_TOKEN, call, json } from "./helpers";

const production = { ENVIRONMENT: "production" };
const adminHeaders = { Authorization: `Bearer ${ADMIN_TOKEN}` };

describe("zgate's own surface lives on gateway hosts only", () => {
  it("a product host answers /admin/v1, /docs, /openapi.json, / and /healthz with its own 404, never zgate's", async () => {
    for (const [base, envelope] of [
      ["https://api.zakgt.net", { detail: "Not Found" }],
      ["https://zsky.ai", { error: "Not Found" }],
      ["https://app.zappway.ai", { error: { code: "NOT_FOUND", message: "Not Found" } }],
    ] as const) {
      for (const path of ["/admin/v1/keys", "/docs", "/openapi.json", "/", "/healthz"]) {
        const headers = { ...adminHeaders, Accept: "text/html" };
        const response = await call(path, { base, headers, settings: production });
        expect(response.status, `${base}${path}`).toBe(404);
        expect(await json(response)).toEqual(envelope);
      }
    }
    // The same holds in development: a product's host is the product's.
    expect((await call("/admin/v1/keys", { base: "http://api.zakgt.net", headers: adminHeaders })).status).toBe(404);
  });

  it("a GATEWAY_HOSTS host serves them, and still routes products by prefix", async () => {
    const settings = { ...production, GATEWAY_HOSTS: "gw.zgate.example" };
    expect((await call("/admin/v1/keys", { base: "https://gw.zgate.example", headers: adminHeaders, settings })).status).toBe(200);
    const doc = await call("/openapi.json", { base: "https://gw.zgate.example", settings });
    expect(doc.status).toBe(200);
    expect((await json(doc)).openapi).toMatch(/^3\./);
    expect((await call("/zsky/v1/usage", { base: "https://gw.zgate.example", settings })).status).toBe(401);
  });

  it("/ on a gateway host names the API reference, the OpenAPI document, the console, the health check and the products, each answering there", async () => {
    const settings = { ...production, GATEWAY_HOSTS: "gw.zgate.example" };
    const base = "https://gw.zgate.example";
    const home = await call("/", { base, settings });
    expect(home.status).toBe(200);
    const links = await json(home);
    expect(links).toEqual({
      service: "zgate",
      docs: `${base}/docs`,
      openapi: `${base}/openapi.json`,
      console: `${base}/admin/`,
      health: `${base}/healthz`,
      products: { zakgt: `${base}/zakgt`, zsky: `${base}/zsky`, zappway: `${base}/zappway` },
    });
    const at = (url: string) => call(new URL(url).pathname, { base, settings, redirect: "manual" });
    expect((await at(links.docs)).headers.get("Content-Type")).toMatch(/^text\/html/);
    expect((await json(await at(links.openapi))).openapi).toMatch(/^3\./);
    expect(new URL((await at(links.console)).headers.get("Location")!, base).pathname).toBe("/admin/sign-in");
    const health = await at(links.health);
    expect(health.status).toBe(200);
    expect(health.headers.get("Cache-Control")).toBe("no-store");
    expect(await json(health)).toEqual({ status: "ok" });
    expect((await at(`${links.products.zsky}/v1/usage`)).status).toBe(401);

    // npm start's address (a host that is no product's, in development) is a gateway host too.
    expect((await json(await call("/"))).console).toBe("http://localhost/admin/");
  });

  it("/ is a page of those links for a browser, under a CSP that allows nothing but them", async () => {
    const settings = { ...production, GATEWAY_HOSTS: "gw.zgate.example" };
    const page = await call("/", {
      base: "https://gw.zgate.example",
      settings,
      headers: { Accept: "text/html,application/xhtml+xml,*/*;q=0.8" },
    });
    expect(page.status).toBe(200);
    expect(page.headers.get("Content-Type")).toMatch(/^text\/html/);
    expect(page.headers.get("Vary")).toMatch(/Accept/);
    expect(page.headers.get("Content-Security-Policy")).toBe(
      "default-src 'none'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
    );
    expect(page.headers.get("X-Frame-Options")).toBe("DENY");
    const html = await page.text();
    expect([...html.matchAll(/href="([^"]+)"/g)].map((m) => m[1])).toEqual(["/docs", "/openapi.json", "/admin/", "/healthz"]);
    expect(html).toContain("health check");
  });

  it("/healthz: 200 while the deployment's settings load, the generic 503 when they do not", async () => {
    expect((await call("/healthz")).status).toBe(200);
    const response = await call("/healthz", { settings: { GATEWAY_HOSTS: "zsky.ai" } });
    expect(response.status).toBe(503);
    expect(response.headers.get("Retry-After")).toBe("60");
    expect(await json(response)).toEqual({ error: { code: "SERVICE_UNAVAILABLE", message: "Service temporarily unavailable" } });
  });

  it("/docs runs no inline script: a CSP of script-src 'self' and frame-ancestors 'none', its start script served beside it", async () => {
    const settings = { ...production, GATEWAY_HOSTS: "gw.zgate.example" };
    const page = await call("/docs", { base: "https://gw.zgate.example", settings });
    expect(page.status).toBe(200);
    const csp = page.headers.get("Content-Security-Policy")!;
    expect(csp.split("; ")).toEqual(expect.arrayContaining(["default-src 'none'", "script-src 'self'", "frame-ancestors 'none'"]));
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|https?:/);
    expect(page.headers.get("X-Frame-Options")).toBe("DENY");
    expect(page.headers.get("X-Content-Type-Options")).toBe("nosniff");
    const html = await page.text();
    const scripts = [...html.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.map((m) => /src="([^"]+)"/.exec(m[1]!)?.[1])).toEqual([
      "/docs/assets/swagger-ui-dist/swagger-ui-bundle.js",
      "/docs/init.js",
    ]);
    expect(scripts.every((m) => m[2]!.trim() === "")).toBe(true);

    const init = await call("/docs/init.js", { base: "https://gw.zgate.example", settings });
    expect(init.headers.get("Content-Type")).toMatch(/^text\/javascript/);
    expect(await init.text()).toContain('SwaggerUIBundle({ dom_id: "#swagger-ui", url: "/openapi.json"');
  });

  it("outside development, a host that is neither answers no admin API", async () => {
    const response = await call("/admin/v1/keys", {
      base: "https://zgate.example.workers.dev",
      headers: adminHeaders,
      settings: production,
    });
    expect(response.status).toBe(404);
    expect(await json(response)).toEqual({ error: { code: "NOT_FOUND", message: "Not Found" } });
  });

  it("a GATEWAY_HOSTS entry that names a product host is a settings error", async () => {
    const response = await call("/zsky/v1/usage", { settings: { GATEWAY_HOSTS: "zsky.ai" } });
    expect(response.status).toBe(503);
  });
});
