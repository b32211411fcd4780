import { describe, expect, it } from "vitest";
import { ADMIN_TOKEN, call, json } from "./helpers";

const production = { ENVIRONMENT: "production" };
const adminHeaders = { Authorization: `Bearer ${ADMIN_TOKEN}` };

describe("zgate's own surface lives on gateway hosts only", () => {
  it("a product host answers /admin/v1, /docs and /openapi.json with its own 404, never zgate's", async () => {
    for (const [base, envelope] of [
      ["https://api.zakgt.net", { detail: "Not Found" }],
      ["https://zsky.ai", { error: "Not Found" }],
      ["https://app.zappway.ai", { error: { code: "NOT_FOUND", message: "Not Found" } }],
    ] as const) {
      for (const path of ["/admin/v1/keys", "/docs", "/openapi.json"]) {
        const response = await call(path, { base, headers: adminHeaders, settings: production });
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
