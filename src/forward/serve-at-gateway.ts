import type { Handler, MiddlewareHandler } from "hono";
import type { AppEnv } from "../http/context";
import { createDeveloperKey, developerKeyUsage, listDeveloperKeys, revokeDeveloperKey } from "../products/zakgt/developer-keys";
import { zskyUsage } from "../products/zsky/usage";
import { downloadResult } from "../products/zsky/results/download";
import { rotateZskyKey } from "../products/zsky/rotate";

/** Handlers for the routes zgate answers itself (`gateway: true` in a product's table). */
export const GATEWAY_HANDLERS: Record<string, Handler<AppEnv>> = {
  "zakgt:developer.keys.create": createDeveloperKey,
  "zakgt:developer.keys.list": listDeveloperKeys,
  "zakgt:developer.keys.revoke": revokeDeveloperKey,
  "zakgt:developer.keys.usage": developerKeyUsage,
  "zsky:keys.rotate": rotateZskyKey,
  "zsky:usage.get": zskyUsage,
  "zsky:results.download": downloadResult,
};

/** Answers a gateway-owned route here; every other route goes on to the origin. */
export const serveAtGateway: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (!c.get("route").gateway) return next();
  c.set("outcome", "served");
  return GATEWAY_HANDLERS[`${c.get("target").product.id}:${c.get("route").name}`]!(c, next);
};
