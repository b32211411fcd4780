import { swaggerUI } from "@hono/swagger-ui";
import { Hono } from "hono";
import type { AppEnv } from "../http/context";
import { buildOpenApiDocument } from "./document";

/**
 * `/openapi.json` (the document, built once per isolate from the same definitions as
 * openapi/zgate.json) and `/docs`, Swagger UI. Its script and stylesheet are served
 * from this deployment's static assets (`/docs/assets/`, copied from swagger-ui-dist
 * by `npm install`), never from a CDN, so the page works offline and under a strict CSP.
 * The served document's `servers` is the origin it was fetched from (scheme, host and
 * port), so "Try it out" calls the deployment the reader is on, whatever its host or PORT.
 */
let document: ReturnType<typeof buildOpenApiDocument> | undefined;

export function createDocsApp() {
  const docs = new Hono<AppEnv>();
  docs.get("/openapi.json", (c) =>
    c.json({ ...(document ??= buildOpenApiDocument()), servers: [{ url: new URL(c.req.url).origin, description: "this deployment" }] }),
  );
  docs.get("/docs", swaggerUI({ url: "/openapi.json", baseUrl: "/docs/assets", title: "zgate API reference" }));
  return docs;
}
