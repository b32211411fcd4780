/**
 * Edge cache for catalogue reads that are the same for every caller (tool and product
 * listings). Keyed by product + origin path + query alone, never by caller, so it is
 * only ever consulted after authentication and admission have run for the request.
 */
const CACHE_ORIGIN = "https://zgate-edge-cache.internal";
// The Cache API takes its TTL from Cache-Control, so the origin's own value rides
// along in this field and is put back on every hit.
const ORIGINAL_CACHE_CONTROL = "X-Zgate-Origin-Cache-Control";

/** `origin` is part of the key so `zak_test_` traffic (another origin) never shares live entries. */
export function catalogueCacheKey(product: string, origin: string, originPath: string, search: string): Request {
  return new Request(`${CACHE_ORIGIN}/${product}/${encodeURIComponent(origin)}${originPath}${search}`);
}

/** Seconds to keep an origin response, or 0 when it must not be shared between callers. */
export function sharedTtl(response: Response, defaultTtl: number): number {
  if (response.status !== 200 || response.headers.has("set-cookie")) return 0;
  const vary = response.headers.get("vary");
  if (vary && vary.split(",").some((v) => v.trim().toLowerCase() !== "accept-encoding")) return 0;
  const cacheControl = (response.headers.get("cache-control") ?? "").toLowerCase();
  if (/\b(private|no-store|no-cache)\b/.test(cacheControl)) return 0;
  if (/\bpublic\b/.test(cacheControl)) {
    const maxAge = /\bs-maxage=(\d+)/.exec(cacheControl) ?? /\bmax-age=(\d+)/.exec(cacheControl);
    if (maxAge) return Number(maxAge[1]);
  }
  return defaultTtl;
}

export async function readCatalogue(key: Request): Promise<Response | undefined> {
  const hit = await caches.default.match(key);
  if (!hit) return undefined;
  const response = new Response(hit.body, hit);
  const original = response.headers.get(ORIGINAL_CACHE_CONTROL);
  response.headers.delete(ORIGINAL_CACHE_CONTROL);
  if (original) response.headers.set("Cache-Control", original);
  else response.headers.delete("Cache-Control");
  return response;
}

/** Stores a copy in the background and returns the response to send to the caller. */
export function storeCatalogue(ctx: { waitUntil(promise: Promise<unknown>): void }, key: Request, response: Response, ttl: number): Response {
  const [forCaller, forCache] = response.body ? response.body.tee() : [null, null];
  const stored = new Response(forCache, response);
  const original = response.headers.get("cache-control");
  if (original) stored.headers.set(ORIGINAL_CACHE_CONTROL, original);
  stored.headers.set("Cache-Control", `public, max-age=${ttl}`);
  ctx.waitUntil(caches.default.put(key, stored));
  return new Response(forCaller, response);
}
