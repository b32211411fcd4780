import { Hono } from "hono";
import type { AppEnv } from "../http/context";
import { requestUrl } from "../http/request-url";
import { pageSecurityHeaders } from "../http/security-headers";
import { fromRegistry, products } from "../products";
import { JWKS_MAX_AGE_SECONDS, publishedKeys } from "../forward/assertion-keys";

/**
 * `/` and `/healthz` on gateway hosts (never a product's own host, where `/` is the
 * product's). `/` tells whoever opened the gateway's address where things are: the API
 * reference (the admin API's too), the OpenAPI document, the security console, the health
 * check and each product's prefix; as JSON, or as a page of links for a browser. `/healthz`
 * answers 200 from the isolate alone (settings loaded; no KV, D1, R2 or guard touched),
 * so an uptime monitor costs one Worker request per check; a deployment whose settings
 * do not load never reaches it and answers its generic 503. `/.well-known/jwks.json` is
 * the public half of the keys zgate signs origin assertions with (docs/origin-signature.md),
 * cacheable for JWKS_MAX_AGE_SECONDS: the rotation steps in docs/deploy.md wait that out.
 */
const PAGE_CSP = "default-src 'none'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

const LINKS = [
  ["docs", "/docs", "API reference (Swagger UI)"],
  ["openapi", "/openapi.json", "OpenAPI document"],
  ["console", "/admin/", "security console"],
  ["health", "/healthz", "health check"],
] as const;

const page = fromRegistry(
  (list) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>zgate</title></head>
<body><h1>zgate</h1>
<p>An API gateway in front of ${list.map((p) => `${p.name} <code>${p.pathPrefix}</code>`).join(", ")}.</p>
<ul>${LINKS.map(([, path, what]) => `<li><a href="${path}">${what}</a> <code>${path}</code></li>`).join("")}</ul>
</body></html>
`,
);

export function createHomeApp() {
  const home = new Hono<AppEnv>();
  home.use("/", pageSecurityHeaders(PAGE_CSP, { Vary: "Accept" }));
  home.get("/", (c) => {
    if (/\btext\/html\b/.test(c.req.header("Accept") ?? "")) return c.html(page());
    const origin = requestUrl(c.req.raw).origin;
    return c.json({
      service: "zgate",
      ...Object.fromEntries(LINKS.map(([name, path]) => [name, origin + path])),
      products: Object.fromEntries(products().map((p) => [p.id, origin + p.pathPrefix])),
    });
  });
  home.get("/healthz", (c) => c.json({ status: "ok" }, 200, { "Cache-Control": "no-store" }));
  home.get("/.well-known/jwks.json", async (c) =>
    c.json(await publishedKeys(c.get("settings").ORIGIN_ASSERTION_KEYS), 200, {
      "Cache-Control": `public, max-age=${JWKS_MAX_AGE_SECONDS}`,
    }),
  );
  return home;
}
