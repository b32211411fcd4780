import { swaggerUI } from "@hono/swagger-ui";
import { Hono } from "hono";
import type { AppEnv } from "../http/context";
import { pageSecurityHeaders } from "../http/security-headers";
import { fromRegistry } from "../products/index";
import { buildOpenApiDocument } from "./document";

/**
 * `/openapi.json` (the document, built once per isolate, and per registered products, from the same definitions as
 * openapi/zgate.json) and `/docs`, Swagger UI. Its script and stylesheet are served
 * from this deployment's static assets (`/docs/assets/`, copied from swagger-ui-dist
 * by `npm install`), never from a CDN, and the script that starts it is `/docs/init.js`,
 * so the page has no inline script and runs under `script-src 'self'`: it shares its
 * origin with the security console, and a script injected into it could act there.
 * The served document's `servers` is the origin it was fetched from (scheme, host and
 * port), so "Try it out" calls the deployment the reader is on, whatever its host or PORT.
 */
const document = fromRegistry(() => buildOpenApiDocument());

/** Script and data only from this origin ("Try it out" calls it too), images also inline (Swagger UI's icons), never framed. */
const DOCS_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

// No validator badge: it would load an image from validator.swagger.io.
const INIT_SCRIPT = `window.ui = SwaggerUIBundle({ dom_id: "#swagger-ui", url: "/openapi.json", validatorUrl: null });\n`;

export function createDocsApp() {
  const docs = new Hono<AppEnv>();
  docs.get("/openapi.json", (c) =>
    c.json({ ...document(), servers: [{ url: new URL(c.req.url).origin, description: "this deployment" }] }),
  );
  docs.use("/docs", pageSecurityHeaders(DOCS_CSP));
  docs.get(
    "/docs",
    swaggerUI({
      url: "/openapi.json",
      baseUrl: "/docs/assets",
      title: "zgate API reference",
      manuallySwaggerUIHtml: (asset) => `
        <div id="swagger-ui"></div>
        ${asset.css.map((href) => `<link rel="stylesheet" href="${href}" />`).join("")}
        ${asset.js.map((src) => `<script src="${src}"></script>`).join("")}
        <script src="/docs/init.js"></script>`,
    }),
  );
  docs.get("/docs/init.js", (c) => c.body(INIT_SCRIPT, 200, { "Content-Type": "text/javascript; charset=utf-8" }));
  return docs;
}
