import type { Stage } from "../http/context";

/**
 * One JSON line per request. Only identifiers go in: never a token, key, password,
 * signature or query string (signed URLs carry their signature there).
 */
export const accessLog: Stage = {
  before(c) {
    c.set("startedAt", Date.now());
  },
  after(c) {
    const identity = c.get("identity");
    console.log(
      JSON.stringify({
        msg: "request",
        request_id: c.get("requestId"),
        method: c.req.method,
        product: c.get("target")?.product.id ?? null,
        route: c.get("route")?.name ?? null,
        status: c.res.status,
        latency_ms: Date.now() - c.get("startedAt"),
        account: identity?.accountId ?? null,
        key_id: identity?.keyId ?? null,
        outcome: c.get("outcome") ?? (c.res.status < 400 ? "ok" : "rejected"),
      }),
    );
  },
};
