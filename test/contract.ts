import { Validator } from "@cfworker/json-schema";
import { expect } from "vitest";
import committedText from "../openapi/zgate.json?raw";
import { buildOpenApiDocument } from "../src/openapi/document";
import { builtInProducts, fromRegistry } from "../src/products";

/**
 * Holds every response the suite sees to the OpenAPI document of the registered products
 * (openapi/zgate.json, plus any product a test registers): `call()` (test/helpers.ts)
 * runs each one through `expectDocumented`. The status must be documented for the
 * operation, the JSON body must validate against its schema, and every header zgate
 * itself adds must be declared on that response. Responses shaped by the simulators'
 * test hooks (X-Sim-*), the security console's HTML pages and requests that match no
 * operation (400/404/405/308) are exempt.
 */
type Json = Record<string, any>;
const GATEWAY_HEADERS = ["x-request-id", "ratelimit-policy", "ratelimit", "retry-after"];

/** The document, its operations, and each product's default host with its path prefix. */
const contract = fromRegistry((products) => {
  // The built-in products' document is the committed one (test/node/openapi.test.ts holds
  // them equal), read rather than built in every test file; a product a test registers is
  // documented by building the document again. It is read as text: as a JSON module, each
  // file's workerd would be sent a 4.5 MB module (every top-level field an export, and a
  // source map) instead of 1.4 MB, about 0.3 s of CPU a file.
  const builtIn = builtInProducts();
  const doc = (
    products.length === builtIn.length && products.every((p, i) => p === builtIn[i]) ? JSON.parse(committedText) : buildOpenApiDocument()
  ) as Json;
  const operations = Object.entries(doc.paths as Json).flatMap(([path, item]) =>
    Object.entries(item as Json).map(([method, op]) => {
      const source = path.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\\\{path\\\}$|\{path\}$/, "__REST__");
      const pattern = source.replace(/\{\w+\}/g, "[^/]+").replace("/__REST__", "(?:/.*)?");
      return {
        method: method.toUpperCase(),
        regex: new RegExp(`^${op["x-zgate-prefix"] ? pattern : pattern.replace("__REST__", "[^/]+")}/?$`),
        op: op as Json,
        path,
      };
    }),
  );
  const hostPrefix: Record<string, string> = Object.fromEntries(products.flatMap((p) => p.defaultHosts.map((h) => [h, p.pathPrefix])));
  return { doc, operations, hostPrefix, validators: new Map<unknown, Validator>() };
});

function findOperation(method: string, url: URL) {
  const { operations, hostPrefix } = contract();
  // A product's host serves that product's paths only; elsewhere zgate's own endpoints and prefixed product paths.
  const prefix = hostPrefix[url.hostname.toLowerCase()];
  const paths = prefix ? [prefix + url.pathname] : [url.pathname];
  const wanted = method === "HEAD" ? "GET" : method;
  // Literal paths before templated ones, as the gateway routes them, and a module's "any
  // deeper path" (`x-zgate-prefix`) after every named path of the module.
  const matches = operations.filter((o) => o.method === wanted && paths.some((p) => o.regex.test(p)));
  const rank = (o: (typeof operations)[number]) => (o.op["x-zgate-prefix"] ? 100 : 0) + (o.path.match(/\{/g)?.length ?? 0);
  return matches.sort((a, b) => rank(a) - rank(b))[0];
}

function validatorFor(schema: Json): Validator {
  const { doc, validators } = contract();
  let v = validators.get(schema);
  if (!v) {
    v = new Validator({ ...schema, components: doc.components }, "2020-12", false);
    validators.set(schema, v);
  }
  return v;
}

const resolve = (node: Json) =>
  node?.$ref
    ? node.$ref
        .split("/")
        .slice(1)
        .reduce((n: Json, k: string) => n[k], contract().doc)
    : node;

export async function expectDocumented(request: Request, response: Response): Promise<void> {
  if ([...request.headers.keys()].some((h) => h.startsWith("x-sim-"))) return;
  const url = new URL(request.url);
  // Hosts configured only for one test cannot be mapped to a product here.
  const { hostPrefix } = contract();
  if (url.hostname !== "localhost" && !hostPrefix[url.hostname.toLowerCase()]) return;
  // The security console (/admin/ outside /admin/v1) is HTML for people, not an API: test/console/ checks it.
  if (!hostPrefix[url.hostname.toLowerCase()] && /^\/admin(\/(?!v1(\/|$))|$)/.test(url.pathname)) return;
  const found = findOperation(request.method, url);
  const label = `${request.method} ${url.pathname} -> ${response.status}`;
  if (!found) {
    // 400: a path zgate refuses to read (src/route/path-hygiene.ts), such as one with `//`.
    expect([308, 400, 404, 405, 503], `${label}: no documented operation`).toContain(response.status);
    return;
  }
  if (response.status === 308) return; // HTTPS redirect: any path, documented in the README
  const documented = found.op.responses[String(response.status)];
  expect(documented, `${label}: status not documented for ${found.path}`).toBeDefined();
  const declared = new Set(Object.keys(documented.headers ?? {}).map((h) => h.toLowerCase()));
  for (const name of GATEWAY_HEADERS) {
    if (response.headers.has(name)) expect(declared.has(name), `${label}: header ${name} not documented`).toBe(true);
  }
  const schema = documented.content?.["application/json"]?.schema;
  if (!schema || request.method === "HEAD" || response.status === 204 || response.status === 304) return;
  // Another representation the operation documents (`/` as a page for a browser).
  const mediaType = response.headers.get("content-type")?.split(";")[0]!.trim() ?? "";
  if (mediaType !== "application/json" && documented.content[mediaType]) return;
  const body = await response.clone().text();
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    throw new Error(`${label}: documented JSON, got ${body.slice(0, 80)}`);
  }
  const result = validatorFor(resolve(schema)).validate(value);
  expect(
    result.valid,
    `${label}: body does not match ${schema.$ref ?? "schema"}: ${JSON.stringify(result.errors.slice(0, 3))} ${body.slice(0, 200)}`,
  ).toBe(true);
}
