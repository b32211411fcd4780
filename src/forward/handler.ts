import type { AppEnv, Stage, StageContext } from "../http/context";
import {
  type CacheScope,
  catalogueKey,
  catalogueReadsUnder,
  currentStamp,
  purgeCatalogue,
  readCatalogue,
  shareableTtl,
  storeCatalogue,
} from "./edge-cache";
import { forwardToOrigin, originFor } from "./forward";
import { requestUrl } from "../http/request-url";

const WRITES = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** Last stage of the pipeline: edge cache for catalogue reads, else forward to the origin. */
export const proxyHandler: Stage = { before: forwardOrServeCached };

async function forwardOrServeCached(c: StageContext): Promise<Response> {
  const method = c.req.method;
  const target = c.get("target");
  const scope = (): CacheScope => ({ product: target.product.id, origin: originFor(c) });
  if (c.get("route").catalogue && method === "GET" && c.get("settings").EDGE_CACHE_TTL_SECONDS > 0) {
    return catalogueRead(c, scope());
  }

  const response = await forwardToOrigin(c, c.get("body"));
  c.set("outcome", "forwarded");
  if (WRITES.has(method) && response.ok) {
    const stale = catalogueReadsUnder(target.product, target.originPath);
    // Awaited: the writer's next read must already miss. A failed purge leaves reads stale
    // until they expire, which is no reason to hide the write's own answer.
    if (stale.length > 0) {
      await purgeCatalogue(scope(), stale).catch(() =>
        console.error(JSON.stringify({ msg: "edge_cache_purge_failed", request_id: c.get("requestId"), paths: stale })),
      );
    }
  }
  return response;
}

async function catalogueRead(c: StageContext, scope: CacheScope): Promise<Response> {
  const target = c.get("target");
  const key = catalogueKey(scope, await currentStamp(scope, target.originPath), target.originPath, requestUrl(c.req.raw).search);
  const hit = await readCatalogue(key);
  if (hit) {
    c.set("outcome", "cache_hit");
    return hit;
  }
  const response = await forwardToOrigin(c, c.get("body"));
  c.set("outcome", "forwarded");
  const ttl = shareableTtl(response, c.get("settings").EDGE_CACHE_TTL_SECONDS);
  return ttl > 0 ? storeCatalogue(c.executionCtx, key, response, ttl, c.get("requestId")) : response;
}
