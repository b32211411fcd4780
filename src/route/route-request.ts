import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../http/context";
import { GatewayError } from "../http/errors";
import { resolveProduct, routeTable } from "../products/index";
import { pathProblem } from "./path-hygiene";
import { requestUrl } from "../http/request-url";

/**
 * Picks the product and the route; a path an origin could read otherwise 400 (see
 * path-hygiene.ts), unknown path 404, known path with another method 405 + Allow.
 */
export const routeRequest: MiddlewareHandler<AppEnv> = (c, next) => {
  const target = resolveProduct(requestUrl(c.req.raw), c.get("settings"));
  if (!target) throw new GatewayError("NOT_FOUND", "Not Found");
  c.set("target", target);
  const problem = pathProblem(target.originPath);
  if (problem) throw new GatewayError("BAD_REQUEST", problem);
  const match = routeTable(target.product).match(c.req.method, target.originPath);
  if (match.kind === "not-found") throw new GatewayError("NOT_FOUND", "Not Found");
  if (match.kind === "method-not-allowed") {
    throw new GatewayError("METHOD_NOT_ALLOWED", "Method Not Allowed", { Allow: match.allow.join(", ") });
  }
  c.set("route", match.def);
  c.set("params", match.params);
  return next();
};
