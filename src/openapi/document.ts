import { OpenAPIHono, z, type RouteConfig } from "@hono/zod-openapi";
import { ADMIN_ROUTES } from "../admin/routes";
import { SECURITY_ROUTES } from "../security/routes";
import { PRODUCTS } from "../products";
import type { Product, ProductId, RouteDef } from "../products/types";
import { OPERATION_DOCS } from "./operation-docs";
import { ERROR_SCHEMAS } from "./schemas";

/**
 * The OpenAPI 3.1 document of everything zgate serves: the three platforms as routed
 * through it (single-host form, under `/zakgt`, `/zsky`, `/zappway`; on a product's own
 * host the prefix is dropped), and zgate's own endpoints. Built from the same route
 * tables and zod schemas the gateway enforces, so the two cannot drift.
 * `npm run openapi` writes it to openapi/zgate.json; the gateway serves it at /openapi.json.
 */
const SECURITY: Record<ProductId, Record<string, string[]>[]> = {
  zakgt: [{ ZakgtAccessToken: [] }, { ZakgtAccessKey: [] }],
  zsky: [{ ZskyApiKey: [] }],
  zappway: [{ ZappwayApiKey: [] }],
};

const REFERENCE_STATUSES: Record<ProductId, number[]> = {
  // The status codes each reference says its API answers with.
  zakgt: [400, 401, 403, 404, 422, 429, 500],
  zsky: [400, 401, 403, 404, 429, 451, 500, 503],
  zappway: [400, 401, 403, 404, 429, 500],
};

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
  if (route.gateway && route.json) statuses.add(product.invalidInput === "UNPROCESSABLE" ? 422 : 400);
  // ZakGT's key endpoints validate bodies and queries (422), cursors (400) and ownership (404).
  if (route.gateway && route.name.startsWith("developer.")) [400, 404, 422].forEach((s) => statuses.add(s));
  if (route.name === "developer.keys.create") statuses.add(409);
  // A route limited per client address refuses a request that has none.
  if (product.limits.windows.some((w) => w.subject === "ip" && w.routes?.includes(route.name))) statuses.add(400);
  if (route.name.startsWith("jobs.")) statuses.add(404);
  if (!route.gateway) {
    [502, 504].forEach((s) => statuses.add(s));
    REFERENCE_STATUSES[product.id].forEach((s) => statuses.add(s));
  }
  return [...statuses].sort();
}

function operation(product: Product, route: RouteDef): RouteConfig[] {
  const doc = OPERATION_DOCS[product.id][route.name];
  if (!doc) throw new Error(`no OpenAPI entry for ${product.id} ${route.name}`);
  const limited = route.auth === "required" || product.limits.windows.some((w) => w.subject === "ip" && w.routes?.includes(route.name));
  const headers = { ...REQUEST_ID, ...(limited ? RATE_LIMIT : {}) };
  const errorBody = { "application/json": { schema: ERROR_SCHEMAS[product.id] } };
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
    const retry = status === 429 || status === 503 || (status === 403 && product.id === "zsky");
    responses[status] = {
      description: DESCRIPTIONS[status] ?? "Error",
      headers: { ...headers, ...(retry ? RETRY_AFTER : {}) },
      content: errorBody,
    };
  }

  const common = { tags: [product.id], security: route.auth === "required" ? SECURITY[product.id] : [], responses };
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

export function buildOpenApiDocument(servers: OpenApiServer[] = [LOCAL_SERVER]) {
  const app = new OpenAPIHono();
  const registry = app.openAPIRegistry;
  for (const [name, h] of Object.entries(HEADER_COMPONENTS)) registry.registerComponent("headers", name, h);
  registry.registerComponent("securitySchemes", "ZakgtAccessToken", {
    type: "http",
    scheme: "bearer",
    bearerFormat: "JWT",
    description: "ZakGT access token from /auth/login",
  });
  registry.registerComponent("securitySchemes", "ZakgtAccessKey", {
    type: "http",
    scheme: "bearer",
    description: "ZakGT personal access key `zak_live_…`",
  });
  registry.registerComponent("securitySchemes", "ZskyApiKey", {
    type: "apiKey",
    in: "header",
    name: "X-API-Key",
    description: "`zsky_live_…`",
  });
  registry.registerComponent("securitySchemes", "ZappwayApiKey", { type: "http", scheme: "bearer", description: "`zw_live_…`" });
  registry.registerComponent("securitySchemes", "AdminToken", { type: "http", scheme: "bearer", description: "ADMIN_TOKEN" });
  registry.registerComponent("securitySchemes", "CloudflareAccess", {
    type: "apiKey",
    in: "header",
    name: "Cf-Access-Jwt-Assertion",
    description: "Cloudflare Access JWT",
  });

  for (const product of PRODUCTS) for (const route of product.routes) for (const op of operation(product, route)) registry.registerPath(op);
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

  return app.getOpenAPI31Document({
    openapi: "3.1.0",
    info: {
      title: "zgate",
      version: "1.0.0",
      description:
        "One edge gateway in front of ZakGT, ZSky and ZappWay. Paths are shown in single-host form: on `api.zakgt.net`, `zsky.ai` and `app.zappway.ai` drop the `/zakgt`, `/zsky`, `/zappway` prefix. Every response carries `X-Request-Id`; limited routes carry `RateLimit-Policy` and `RateLimit`.",
    },
    servers,
    tags: [
      { name: "zakgt", description: 'ZakGT: auth, users, wallet, marketplace, live, tools, AI, developer keys. Errors: {"detail"}' },
      { name: "zsky", description: 'ZSky: image and video jobs. Errors: {"error"}' },
      { name: "zappway", description: 'ZappWay: agents, datastores, datasources, conversations. Errors: {"error": {"code", "message"}}' },
      { name: "admin", description: "zgate's admin API for security and platform teams" },
      { name: "security", description: "Leaked-key intake: secret-scanning partner endpoints and the public report (gateway hosts only)" },
      { name: "zgate", description: "This document and its interactive reference" },
    ],
  });
}
