import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../http/context";
import { GatewayError } from "../http/errors";
import { resolveProduct, routeTable } from "./index";

/** Picks the product and the route; unknown path 404, known path with another method 405 + Allow. */
export const routeRequest: MiddlewareHandler<AppEnv> = async (c, next) => {
  const target = resolveProduct(new URL(c.req.url), c.get("settings"));
  if (!target) throw new GatewayError("NOT_FOUND", "Not Found");
  c.set("target", target);
  const match = routeTable(target.product).match(c.req.method, target.originPath);
  if (match.kind === "not-found") throw new GatewayError("NOT_FOUND", "Not Found");
  if (match.kind === "method-not-allowed") {
    throw new GatewayError("METHOD_NOT_ALLOWED", "Method Not Allowed", { Allow: match.allow.join(", ") });
  }
  c.set("route", match.def);
  c.set("params", match.params);
  await next();
};
