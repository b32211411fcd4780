import { OpenAPIHono, z, type RouteConfig } from "@hono/zod-openapi";
import { ADMIN_ROUTES } from "../admin/routes";
import { errorResponse } from "../admin/schemas";
import { SECURITY_ROUTES } from "../security/routes";
import { products } from "../products";
import type { Product, RouteDef } from "../products/types";

/**
 * The OpenAPI 3.1 document of everything zgate serves: the registered products as routed
 * through it (single-host form, under their path prefix; on a product's own host the
 * prefix is dropped), and zgate's own endpoints. Built from the same route tables and
 * zod schemas the gateway enforces, so the two cannot drift: each product's folder
 * gives its routes' documentation, its error schema, its security schemes and the
 * statuses its reference answers with.
 * `npm run openapi` writes it to openapi/zgate.json; the gateway serves it at /openapi.json.
 */

// Response headers are components, referenced from every response that carries them.
const HEADER_COMPONENTS = {
  XRequestId: { description: "The request id (the caller's well-formed one, or a new UUID)", schema: { type: "string" as const } },
  RateLimitPolicy: { description: 'IETF ratelimit-headers draft, e.g. `"burst";q=20;w=60`', schema: { type: "string" as const } },
  RateLimit: { description: 'IETF ratelimit-headers draft, e.g. `"burst";r=12;t=41`', schema: { type: "string" as const } },
  RetryAfter: {
    description: "Whole seconds until the request would be admitted",
    schema: { type: "string" as const, pattern: "^[0-9]+$" },
  },
};
const ref = (name: keyof typeof HEADER_COMPONENTS) => ({ $ref: `#/components/headers/${name}` });
const REQUEST_ID = { "X-Request-Id": ref("XRequestId") };
const RATE_LIMIT = { "RateLimit-Policy": ref("RateLimitPolicy"), RateLimit: ref("RateLimit") };
const RETRY_AFTER = { "Retry-After": ref("RetryAfter") };

const DESCRIPTIONS: Record<number, string> = {
  400: "Malformed request (unparsable JSON, invalid parameters)",
  401: "Missing, malformed, unknown, revoked or expired credential, or a key of another product (one body for all)",
  403: "Valid credential without the right: missing scope, key management with a key, suspended ZSky key, expired or tampered signed URL",
  404: "Not found (or not the caller's)",
  413: "Body larger than MAX_BODY_BYTES",
  415: "A JSON body without Content-Type: application/json",
  416: "Range not satisfiable",
  409: "The user or account already holds the most active keys allowed",
  422: "Validation error",
  429: "Rate limit, allowance or concurrency exceeded",
  451: "Blocked by the safety filter",
  500: "Internal error",
  502: "Origin unreachable",
  503: "Temporarily unavailable (the limiter or a dependency), or the deployment is misconfigured",
  504: "Origin too slow",
};

/** Which statuses an operation can answer with, from what the route does. */
function errorStatuses(product: Product, route: RouteDef): number[] {
  const statuses = new Set<number>([500, 503]);
  if (route.auth === "signed-url") [403, 404, 416].forEach((s) => statuses.add(s));
  if (route.auth === "required") [401, 403, 429].forEach((s) => statuses.add(s));
  if (product.limits.windows.some((w) => !w.routes || w.routes.includes(route.name))) statuses.add(429);
  if (route.json) [400, 413, product.wrongMediaType === "BAD_REQUEST" ? 400 : 415].forEach((s) => statuses.add(s));
  if (route.body) statuses.add(product.invalidInput === "UNPROCESSABLE" ? 422 : 400);
  if (route.serve && route.json) statuses.add(product.invalidInput === "UNPROCESSABLE" ? 422 : 400);
  route.doc.errors?.forEach((s) => statuses.add(s));
  // A route limited per client address refuses a request that has none.
  if (product.limits.windows.some((w) => w.subject === "ip" && w.routes?.includes(route.name))) statuses.add(400);
  // A job that is not the caller's is no job.
  if (route.jobParam) statuses.add(404);
  if (!route.serve) {
    [502, 504].forEach((s) => statuses.add(s));
    product.referenceStatuses.forEach((s) => statuses.add(s));
  }
  return [...statuses].sort();
}

/** A product's security requirement: any one of its schemes. */
const securityOf = (product: Product) => Object.keys(product.securitySchemes).map((name) => ({ [name]: [] }));

function operation(product: Product, route: RouteDef): RouteConfig[] {
  const doc = route.doc;
  const limited = route.auth === "required" || product.limits.windows.some((w) => w.subject === "ip" && w.routes?.includes(route.name));
  const headers = { ...REQUEST_ID, ...(limited ? RATE_LIMIT : {}) };
  const errorBody = { "application/json": { schema: product.errorSchema } };
  const responses: RouteConfig["responses"] = {};
  const success = doc.success;
  responses[success.status] = {
    description: "Success",
    headers,
    ...(success.binary
      ? { content: { "application/octet-stream": { schema: z.string().openapi({ format: "binary", description: success.binary }) } } }
      : success.schema
        ? { content: { "application/json": { schema: success.schema } } }
        : {}),
  };
  if (route.auth === "signed-url") {
    responses[206] = { description: "One byte range (Content-Range)", headers };
    responses[304] = { description: "Not modified (If-None-Match)", headers };
  }
  for (const status of errorStatuses(product, route)) {
    // A product that suspends keys (ZSky) says when a suspension ends.
    const retry = status === 429 || status === 503 || (status === 403 && product.limits.generation?.suspension !== undefined);
    responses[status] = {
      description: DESCRIPTIONS[status] ?? "Error",
      headers: { ...headers, ...(retry ? RETRY_AFTER : {}) },
      content: errorBody,
    };
  }

  const common = { tags: [product.id], security: route.auth === "required" ? securityOf(product) : [], responses };
  const methods = route.method === "ANY" ? (["get", "post", "put", "patch", "delete"] as const) : ([route.method.toLowerCase()] as const);
  const perMethod = (path: string, suffix: string, summary: string, body?: z.ZodType, extra = {}): RouteConfig[] =>
    methods.map((method) => ({
      ...common,
      method: method as RouteConfig["method"],
      path,
      operationId: `${product.id}.${route.name}${suffix}${route.method === "ANY" ? `.${method}` : ""}`,
      summary,
      request: requestOf(path, body),
      ...extra,
    }));
  const base = `${product.pathPrefix}${route.path.replace(/\/\*$/, "")}`;
  if (!route.path.endsWith("/*")) return perMethod(base, "", doc.summary, doc.request);
  // A module prefix (ZappWay) matches the module itself (`GET /api/v1/agents` lists the
  // agents), the reference's named endpoints under it, and any deeper path (`{path}`:
  // a template cannot say "any depth", hence `x-zgate-prefix`), all routed alike.
  return [
    ...perMethod(base, ".collection", doc.collection ?? doc.summary),
    ...(doc.endpoints ?? []).map((endpoint) => ({
      ...common,
      method: endpoint.method,
      path: `${base}${endpoint.path}`,
      operationId: `${product.id}.${route.name}.${endpoint.name}`,
      summary: endpoint.summary,
      request: requestOf(`${base}${endpoint.path}`, endpoint.request),
    })),
    ...perMethod(`${base}/{path}`, "", doc.summary, undefined, { "x-zgate-prefix": true }),
  ];
}

/** The path parameters a templated path names, and the JSON body when there is one. */
function requestOf(path: string, body?: z.ZodType): RouteConfig["request"] {
  const params = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
  return {
    ...(params.length
      ? { params: z.object(Object.fromEntries(params.map((p) => [p, z.string().openapi({ param: { name: p, in: "path" } })]))) }
      : {}),
    ...(body ? { body: { required: true, content: { "application/json": { schema: body } } } } : {}),
  };
}

/**
 * Where "Try it out" sends requests. The committed openapi/zgate.json names `npm start`'s
 * address unless `npm run openapi -- --server <url>` says otherwise; the served
 * /openapi.json names the origin it was fetched from (src/openapi/routes.ts).
 */
export type OpenApiServer = { url: string; description: string };
const LOCAL_SERVER: OpenApiServer = { url: "http://127.0.0.1:8787", description: "npm start" };

/** An error envelope's shape in a line: `{"detail"}`, `{"error": {"code", "message"}}`. */
function envelopeShape(envelope: unknown): string {
  if (typeof envelope !== "object" || envelope === null) return "";
  const fields = Object.entries(envelope).map(([k, v]) => (typeof v === "object" && v !== null ? `"${k}": ${envelopeShape(v)}` : `"${k}"`));
  return `{${fields.join(", ")}}`;
}

/** "A, B and C". */
const listed = (items: string[]) => (items.length < 2 ? items.join("") : `${items.slice(0, -1).join(", ")} and ${items.at(-1)}`);

export function buildOpenApiDocument(servers: OpenApiServer[] = [LOCAL_SERVER]) {
  const list = products();
  const app = new OpenAPIHono();
  const registry = app.openAPIRegistry;
  for (const [name, h] of Object.entries(HEADER_COMPONENTS)) registry.registerComponent("headers", name, h);
  for (const product of list)
    for (const [name, scheme] of Object.entries(product.securitySchemes)) registry.registerComponent("securitySchemes", name, scheme);
  registry.registerComponent("securitySchemes", "AdminToken", { type: "http", scheme: "bearer", description: "ADMIN_TOKEN" });
  registry.registerComponent("securitySchemes", "CloudflareAccess", {
    type: "apiKey",
    in: "header",
    name: "Cf-Access-Jwt-Assertion",
    description: "Cloudflare Access JWT",
  });

  for (const product of list) for (const route of product.routes) for (const op of operation(product, route)) registry.registerPath(op);
  // The admin API's product names are the registry's: its schemas refer to this component by name.
  registry.register("Product", z.enum(list.map((p) => p.id) as [string, ...string[]]).openapi("Product"));
  const zgateRoutes = [
    ...ADMIN_ROUTES.map(({ route }) => ({ route, prefix: "/admin/v1" })),
    ...SECURITY_ROUTES.map((route) => ({ route, prefix: "/security/v1" })),
  ];
  for (const { route, prefix } of zgateRoutes) {
    registry.registerPath({
      ...route,
      path: `${prefix}${route.path}`,
      responses: Object.fromEntries(
        Object.entries(route.responses).map(([status, r]) => [
          status,
          { ...r, headers: status === "429" || status === "503" ? { ...REQUEST_ID, ...RETRY_AFTER } : REQUEST_ID },
        ]),
      ),
    });
  }

  registry.registerPath({
    method: "get",
    path: "/openapi.json",
    operationId: "zgate.openapi",
    summary: "This document",
    tags: ["zgate"],
    responses: {
      200: {
        description: "OpenAPI 3.1",
        headers: REQUEST_ID,
        content: { "application/json": { schema: z.object({ openapi: z.string() }).passthrough() } },
      },
    },
  });
  registry.registerPath({
    method: "get",
    path: "/docs",
    operationId: "zgate.docs",
    summary: "Interactive reference (Swagger UI) over /openapi.json",
    tags: ["zgate"],
    responses: { 200: { description: "HTML page", headers: REQUEST_ID, content: { "text/html": { schema: z.string() } } } },
  });
  registry.registerPath({
    method: "get",
    path: "/docs/init.js",
    operationId: "zgate.docs_init",
    summary: "The script that starts Swagger UI on /docs (the page runs no inline script: its CSP allows only this origin's)",
    tags: ["zgate"],
    responses: { 200: { description: "JavaScript", headers: REQUEST_ID, content: { "text/javascript": { schema: z.string() } } } },
  });
  const url = z.string().url();
  registry.registerPath({
    method: "get",
    path: "/",
    operationId: "zgate.home",
    summary: "Where things are on this gateway: API reference, OpenAPI document, security console, health check, each product's prefix",
    description:
      "JSON, or a page of links when the client accepts `text/html`. Gateway hosts only: on a product's own host `/` is the product's.",
    tags: ["zgate"],
    responses: {
      200: {
        description: "The gateway's own addresses, absolute",
        headers: REQUEST_ID,
        content: {
          "application/json": {
            schema: z
              .object({
                service: z.literal("zgate"),
                docs: url,
                openapi: url,
                console: url,
                health: url,
                products: z.record(z.string(), url),
              })
              .strict(),
          },
          "text/html": { schema: z.string() },
        },
      },
    },
  });
  registry.registerPath({
    method: "get",
    path: "/healthz",
    operationId: "zgate.health",
    summary: "Health check: 200 when this Worker runs with valid settings (touches no storage)",
    tags: ["zgate"],
    responses: {
      200: {
        description: "Up",
        headers: REQUEST_ID,
        content: { "application/json": { schema: z.object({ status: z.literal("ok") }).strict() } },
      },
      503: {
        ...errorResponse("The deployment's settings do not load (the log names the bad one)"),
        headers: { ...REQUEST_ID, ...RETRY_AFTER },
      },
    },
  });

  registry.registerPath({
    method: "get",
    path: "/.well-known/jwks.json",
    operationId: "zgate.jwks",
    summary: "The public keys origins verify zgate's assertions with (X-Zgate-Assertion); cacheable for 5 minutes",
    tags: ["zgate"],
    responses: {
      200: {
        description: "A JWK Set: one Ed25519 public key per key of ORIGIN_ASSERTION_KEYS",
        headers: REQUEST_ID,
        content: {
          "application/json": {
            schema: z
              .object({
                keys: z.array(
                  z
                    .object({
                      kty: z.literal("OKP"),
                      crv: z.literal("Ed25519"),
                      x: z.string(),
                      kid: z.string(),
                      alg: z.literal("EdDSA"),
                      use: z.literal("sig"),
                    })
                    .strict(),
                ),
              })
              .strict(),
          },
        },
      },
      503: {
        ...errorResponse("The deployment's settings do not load (the log names the bad one)"),
        headers: { ...REQUEST_ID, ...RETRY_AFTER },
      },
    },
  });

  return app.getOpenAPI31Document({
    openapi: "3.1.0",
    info: {
      title: "zgate",
      version: "1.0.0",
      description: `One edge gateway in front of ${listed(list.map((p) => p.name))}. Paths are shown in single-host form: on ${listed(
        list.map((p) => `\`${p.defaultHosts[0]}\``),
      )} drop the ${list.map((p) => `\`${p.pathPrefix}\``).join(", ")} prefix. Every response carries \`X-Request-Id\`; limited routes carry \`RateLimit-Policy\` and \`RateLimit\`.`,
    },
    servers,
    tags: [
      ...list.map((p) => ({ name: p.id, description: `${p.name}: ${p.describes}. Errors: ${envelopeShape(p.envelope("NOT_FOUND", ""))}` })),
      { name: "admin", description: "zgate's admin API for security and platform teams" },
      { name: "security", description: "Leaked-key intake: secret-scanning partner endpoints and the public report (gateway hosts only)" },
      {
        name: "zgate",
        description: "This document, its interactive reference, the gateway's front page, its health check and its assertion keys",
      },
    ],
  });
}
