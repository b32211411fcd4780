import type { Stage } from "../http/context";
import { GatewayError } from "../http/errors";
import { resolveProduct, routeTable } from "../products/index";
import type { Product } from "../products/types";
import { pathProblem } from "./path-hygiene";
import type { RouteMatch } from "./route-table";
import { requestUrl } from "../http/request-url";
import { Lru } from "../util/lru";
import { madeOnce } from "../util/made-once";

/**
 * Picks the product and the route; a path an origin could read otherwise 400 (see
 * path-hygiene.ts), unknown path 404, known path with another method 405 + Allow.
 */
export const routeRequest: Stage = {
  before(c) {
    const target = resolveProduct(requestUrl(c.req.raw), c.get("settings"));
    if (!target) throw new GatewayError("NOT_FOUND", "Not Found");
    c.set("target", target);
    const routed = routedPath(target.product, c.req.method, target.originPath);
    if (typeof routed === "string") throw new GatewayError("BAD_REQUEST", routed);
    if (routed.kind === "not-found") throw new GatewayError("NOT_FOUND", "Not Found");
    if (routed.kind === "method-not-allowed") {
      throw new GatewayError("METHOD_NOT_ALLOWED", "Method Not Allowed", { Allow: routed.allow.join(", ") });
    }
    c.set("route", routed.def);
    c.set("params", routed.params);
  },
};

/** A path's problem (path-hygiene.ts), or what the product's route table makes of the method and path. */
type Routed = string | RouteMatch;

// Callers repeat their calls: a method and path routed before are answered from here (the
// hygiene check and the table's scan run on every request otherwise). Bounded per product,
// and long paths are not kept, so a flood of distinct paths costs no more than routing them.
const MEMO_PATHS = 512;
const MEMO_PATH_CHARS = 256;
const memos = new WeakMap<Product, Lru<string, Routed>>();
const newMemo = () => new Lru<string, Routed>(MEMO_PATHS);

function routedPath(product: Product, method: string, path: string): Routed {
  if (path.length > MEMO_PATH_CHARS) return route(product, method, path);
  const memo = madeOnce(memos, product, newMemo);
  const key = `${method} ${path}`;
  let routed = memo.get(key);
  if (routed === undefined) {
    routed = route(product, method, path);
    memo.set(key, routed);
  }
  return routed;
}

function route(product: Product, method: string, path: string): Routed {
  const problem = pathProblem(path);
  if (problem) return problem;
  const match = routeTable(product).match(method, path);
  // Shared by every request of this method and path: never changed.
  if (match.kind === "route") Object.freeze(match.params);
  return match;
}
