import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../http/context";

/**
 * The route's own bookkeeping of the exchange (its `settle` step: ZSky's jobs), once the
 * answer is made and before the caller sees it, so a caller who reacts at once finds
 * its effects (a freed job slot) already there.
 */
export const settle: MiddlewareHandler<AppEnv> = async (c, next) => {
  const step = c.get("route").settle;
  await next();
  if (step) await step(c);
};
