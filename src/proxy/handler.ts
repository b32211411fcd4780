import type { Handler } from "hono";
import type { AppEnv } from "../http/context";
import { catalogueCacheKey, readCatalogue, sharedTtl, storeCatalogue } from "./edge-cache";
import { forwardToOrigin, originFor } from "./forward";

/** Last stage of the pipeline: edge cache for catalogue reads, else forward to the origin. */
export const proxyHandler: Handler<AppEnv> = async (c) => {
  const route = c.get("route");
  const settings = c.get("settings");
  const target = c.get("target");
  const body = c.get("body");

  const cacheable = route.catalogue && c.req.method === "GET";
  const key = cacheable ? catalogueCacheKey(target.product.id, originFor(c), target.originPath, new URL(c.req.url).search) : undefined;
  if (key) {
    const hit = await readCatalogue(key);
    if (hit) {
      c.set("outcome", "cache_hit");
      return hit;
    }
  }

  const response = await forwardToOrigin(c, body);
  c.set("outcome", "forwarded");
  if (key) {
    const ttl = sharedTtl(response, settings.EDGE_CACHE_TTL_SECONDS);
    if (ttl > 0) return storeCatalogue(c.executionCtx, key, response, ttl);
  }
  return response;
};
