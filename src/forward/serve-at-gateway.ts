import type { Stage } from "../http/context";

/** Answers a route zgate serves itself (its `serve` handler) here; every other route goes on to the origin. */
export const serveAtGateway: Stage = {
  before(c) {
    const serve = c.get("route").serve;
    if (!serve) return;
    c.set("outcome", "served");
    return serve(c);
  },
};
