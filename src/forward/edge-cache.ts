import { routeTable } from "../products";
import type { Product } from "../products/types";

/**
 * Edge cache for catalogue reads (tool and product listings). Every caller at a location
 * shares the Cache API, and the caller's credentials and identity reach the origin, so
 * only the origin can say an answer is the same for everyone: an entry is only ever an
 * answer it marked shareable (`shareableTtl`). Consulted only after authentication and
 * admission have run for the request.
 *
 * Purging. The Cache API deletes exact keys only, and a list is cached once per query
 * string, so entries are never deleted one by one: each resource path has a generation
 * stamp, kept in the Cache API beside the entries, and every entry key names the stamp of
 * its path. A write stores a new stamp, which leaves every entry under the old one
 * unreachable (they expire on their own). A read costs one more cache lookup and no
 * write. The stamps live where the entries live, so every isolate of a location sees a
 * purge at once; other locations keep their copies until they expire, which
 * EDGE_CACHE_TTL_SECONDS bounds. (Stamps in KV would reach every location, but cost a KV
 * read per catalogue read and allow one write a second per listing.)
 */
const CACHE_ORIGIN = "https://zgate-edge-cache.internal";
// The Cache API takes its TTL from Cache-Control, so the origin's own value rides
// along in this field and is put back on every hit.
const ORIGINAL_CACHE_CONTROL = "X-Zgate-Origin-Cache-Control";
// A stamp only has to outlive the entries it names; an evicted one is simply replaced.
const STAMP_SECONDS = 86_400;

/** Whose entries: the product and its origin, so `zak_test_` traffic (another origin) never shares live entries. */
export interface CacheScope {
  product: string;
  origin: string;
}

/**
 * Seconds an origin answer may be shared with every caller, or 0. Only an explicit
 * `public` with a lifetime counts (RFC 9111 §3.5: a shared cache keeps an answer to an
 * authorised request only when told to); anything marking it as one caller's (private,
 * no-store, no-cache, Set-Cookie) or as depending on request fields the key does not hold
 * (Vary) is never stored. `cap` bounds the origin's lifetime (0: nothing is kept).
 */
export function shareableTtl(response: Response, cap: number): number {
  if (response.status !== 200 || response.headers.has("set-cookie")) return 0;
  const vary = response.headers.get("vary");
  if (vary && vary.split(",").some((v) => v.trim().toLowerCase() !== "accept-encoding")) return 0;
  const directives = new Map(
    (response.headers.get("cache-control") ?? "").split(",").map((d) => {
      const [name = "", value = ""] = d.split("=", 2);
      return [name.trim().toLowerCase(), value.trim().replace(/^"|"$/g, "")] as const;
    }),
  );
  if (!directives.has("public") || ["private", "no-store", "no-cache"].some((d) => directives.has(d))) return 0;
  const lifetime = Number(directives.get("s-maxage") ?? directives.get("max-age"));
  return Number.isInteger(lifetime) && lifetime > 0 ? Math.min(lifetime, cap) : 0;
}

/** The key of a catalogue read: scope, the stamp of its path (see `currentStamp`), path and query. Never the caller. */
export function catalogueKey(scope: CacheScope, stamp: string, originPath: string, search: string): Request {
  return new Request(`${CACHE_ORIGIN}/${scope.product}/${encodeURIComponent(scope.origin)}/${stamp}${originPath}${search}`);
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

/** Stores a copy in the background (unless it names this request) and returns the response to send to the caller. */
export function storeCatalogue(
  ctx: { waitUntil(promise: Promise<unknown>): void },
  key: Request,
  response: Response,
  ttl: number,
  requestId: string,
): Response {
  const [forCaller, forCache] = response.body ? response.body.tee() : [null, null];
  ctx.waitUntil(storeUnlessPerRequest(key, new Response(forCache, response), ttl, requestId));
  return new Response(forCaller, response);
}

/**
 * An origin that put this request's id in the body (an envelope's `request_id`, echoed
 * headers) answered this request, not everyone, whatever its Cache-Control says: a body
 * served from the cache must never carry another request's id.
 */
async function storeUnlessPerRequest(key: Request, response: Response, ttl: number, requestId: string): Promise<void> {
  try {
    const bytes = await response.arrayBuffer();
    if (new TextDecoder().decode(bytes).includes(requestId)) return;
    const stored = new Response(bytes, response);
    const original = response.headers.get("cache-control");
    if (original) stored.headers.set(ORIGINAL_CACHE_CONTROL, original);
    stored.headers.set("Cache-Control", `public, max-age=${ttl}`);
    await caches.default.put(key, stored);
  } catch {
    // The origin failed mid-body (the caller is told) or the cache refused: a later read misses.
  }
}

/**
 * A resource path as stamps name it: no trailing slash, segments decoded once. Routing
 * already refused empty segments and bad percent-encoding (products/path-hygiene.ts).
 */
function resourcePath(path: string): string {
  const segments = path.split("/").filter((s) => s !== "");
  return segments.map((s) => encodeURIComponent(decodeURIComponent(s))).join("/");
}

const stampKey = (scope: CacheScope, path: string) =>
  new Request(`${CACHE_ORIGIN}/stamps/${scope.product}/${encodeURIComponent(scope.origin)}/${resourcePath(path)}`);

const putStamp = (key: Request, stamp: string) =>
  caches.default.put(key, new Response(stamp, { headers: { "Cache-Control": `public, max-age=${STAMP_SECONDS}` } }));

/**
 * The generation stamp of a catalogue path. None yet (or evicted): a new random one, which
 * no older entry can name. It is stored before the origin is asked, so a purge racing this
 * read either replaces it (this read's entry is then unreachable) or came first (and the
 * origin's answer already reflects the write).
 */
export async function currentStamp(scope: CacheScope, originPath: string): Promise<string> {
  const key = stampKey(scope, originPath);
  const found = await caches.default.match(key);
  if (found) return found.text();
  const stamp = crypto.randomUUID();
  // Unstored, it names entries no other read will look for: a miss, never a stale answer.
  await putStamp(key, stamp).catch(() => undefined);
  return stamp;
}

/**
 * The catalogue reads a successful write to `originPath` makes stale: the path itself and
 * every ancestor that is a catalogue read (`DELETE /mart/products/p1` -> the product and
 * the list; `POST /mart/products/p1/purchase` -> the same two).
 */
export function catalogueReadsUnder(product: Product, originPath: string): string[] {
  const segments = originPath.split("/").filter((s) => s !== "");
  const paths: string[] = [];
  for (let n = segments.length; n > 0; n--) {
    const path = `/${segments.slice(0, n).join("/")}`;
    const match = routeTable(product).match("GET", path);
    if (match.kind === "route" && match.def.catalogue) paths.push(path);
  }
  return paths;
}

/** New stamps for `paths`: every cached read of them (any query) stops being served. */
export async function purgeCatalogue(scope: CacheScope, paths: string[]): Promise<void> {
  await Promise.all(paths.map((path) => putStamp(stampKey(scope, path), crypto.randomUUID())));
}
