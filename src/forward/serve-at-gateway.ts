import type { AppEnv, Stage } from "../http/context";

/** Answers a route zgate serves itself (its `serve` handler) here; every other route goes on to the origin. */
export const serveAtGateway: Stage = (c, next) => {
  const serve = c.get("route").serve;
  if (!serve) return next();
  c.set("outcome", "served");
  return Promise.resolve(serve(c, next));
};
