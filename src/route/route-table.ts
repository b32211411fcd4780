import type { RouteDef } from "../products/types";

/**
 * Matches an origin path against a product's route table. The most specific pattern
 * that accepts the method wins: literal segments beat parameters (so `/tools/my-tools`
 * is never taken for `/tools/{tool_id}`). A path that exists only under other methods
 * yields the union of their methods as the `Allow` list for a 405.
 */
type Segment = { literal: string } | { param: string };

interface CompiledRoute {
  def: RouteDef;
  segments: Segment[];
  /** Trailing `/*`: the route also matches any deeper path. */
  prefix: boolean;
}

export type RouteMatch =
  | { kind: "route"; def: RouteDef; params: Record<string, string> }
  | { kind: "method-not-allowed"; allow: string[] }
  | { kind: "not-found" };

export interface RouteTable {
  match(method: string, path: string): RouteMatch;
}

function splitPath(path: string): string[] {
  return path.split("/").filter((s) => s !== "");
}

/**
 * A route with every field, in one order. Routes are declared with the fields each needs,
 * and to the runtime each set of fields is an object shape of its own; the pipeline reads a
 * route's fields in every stage of every request, and a read that has met many shapes is
 * a lookup each time. One shape keeps those reads direct. (The type lists every field, so
 * a field added to RouteDef cannot be left out here.)
 */
function uniform(def: RouteDef): RouteDef {
  const all: Record<keyof RouteDef, unknown> = {
    name: def.name,
    method: def.method,
    path: def.path,
    auth: def.auth,
    json: def.json,
    body: def.body,
    catalogue: def.catalogue,
    revokesSession: def.revokesSession,
    deactivatesUser: def.deactivatesUser,
    serve: def.serve,
    alongsideAdmission: def.alongsideAdmission,
    settle: def.settle,
    generates: def.generates,
    jobParam: def.jobParam,
    readsAllowance: def.readsAllowance,
    sessionOnly: def.sessionOnly,
    doc: def.doc,
  };
  return all as RouteDef;
}

function compile(declared: RouteDef): CompiledRoute {
  const def = uniform(declared);
  const prefix = def.path.endsWith("/*");
  const segments = splitPath(prefix ? def.path.slice(0, -2) : def.path).map((s): Segment => {
    const param = /^\{(\w+)\}$/.exec(s);
    return param ? { param: param[1]! } : { literal: s };
  });
  return { def, segments, prefix };
}

/** Orders routes so the most specific pattern is tried first. */
function specificity(a: CompiledRoute, b: CompiledRoute): number {
  const n = Math.max(a.segments.length, b.segments.length);
  for (let i = 0; i < n; i++) {
    const sa = a.segments[i];
    const sb = b.segments[i];
    if (!sa || !sb) break;
    const la = "literal" in sa ? 0 : 1;
    const lb = "literal" in sb ? 0 : 1;
    if (la !== lb) return la - lb;
  }
  if (a.prefix !== b.prefix) return a.prefix ? 1 : -1;
  return b.segments.length - a.segments.length;
}

function matchSegments(route: CompiledRoute, parts: string[]): Record<string, string> | null {
  if (route.prefix ? parts.length < route.segments.length : parts.length !== route.segments.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < route.segments.length; i++) {
    const seg = route.segments[i]!;
    const part = parts[i]!;
    if ("literal" in seg) {
      if (seg.literal !== part) return null;
    } else {
      // Well-formed: route-request.ts refuses malformed percent-encoding before matching.
      params[seg.param] = decodeURIComponent(part);
    }
  }
  return params;
}

export function buildRouteTable(defs: readonly RouteDef[]): RouteTable {
  const routes = defs.map(compile).sort(specificity);
  return {
    match(method, path) {
      const parts = splitPath(path);
      const allow = new Set<string>();
      for (const route of routes) {
        const params = matchSegments(route, parts);
        if (!params) continue;
        const m = route.def.method;
        if (m === "ANY" || m === method || (method === "HEAD" && m === "GET")) {
          return { kind: "route", def: route.def, params };
        }
        allow.add(m);
        if (m === "GET") allow.add("HEAD");
      }
      return allow.size > 0 ? { kind: "method-not-allowed", allow: [...allow].sort() } : { kind: "not-found" };
    },
  };
}
