import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../http/context";

/** Answers a route zgate serves itself (its `serve` handler) here; every other route goes on to the origin. */
export const serveAtGateway: MiddlewareHandler<AppEnv> = (c, next) => {
  const serve = c.get("route").serve;
  if (!serve) return next();
  c.set("outcome", "served");
  return serve(c, next);
};
