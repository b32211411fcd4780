import type { Stage, StageContext } from "../http/context";
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

/**
 * Not an async function, nor a closure made for every call: a call holds what this keeps
 * for as long as its origin takes to answer (docs/benchmarks.md, "What a request in
 * flight holds").
 */
function forwardOrServeCached(c: StageContext): Promise<Response> {
  if (c.get("route").catalogue && c.req.method === "GET" && c.get("settings").EDGE_CACHE_TTL_SECONDS > 0) {
    return catalogueRead(c, cacheScope(c));
  }
  return forwardToOrigin(c, c.get("body")).then((response) => forwarded(c, response));
}

function cacheScope(c: StageContext): CacheScope {
  return { product: c.get("target").product.id, origin: originFor(c) };
}

/** The origin's answer: a successful write purges the catalogue reads it made stale. */
async function forwarded(c: StageContext, response: Response): Promise<Response> {
  c.set("outcome", "forwarded");
  if (!WRITES.has(c.req.method) || !response.ok) return response;
  const target = c.get("target");
  const stale = catalogueReadsUnder(target.product, target.originPath);
  // Awaited: the writer's next read must already miss. A failed purge leaves reads stale
  // until they expire, which is no reason to hide the write's own answer.
  if (stale.length > 0) {
    await purgeCatalogue(cacheScope(c), stale).catch(() =>
      console.error(JSON.stringify({ msg: "edge_cache_purge_failed", request_id: c.get("requestId"), paths: stale })),
    );
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
