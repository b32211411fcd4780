import type { StageContext } from "./context";

/** Replaces the response outright: Hono's `c.res =` would carry the old one's fields (length, ETag) onto it. */
export function replaceResponse(c: StageContext, response: Response): void {
  c.res = undefined;
  c.res = response;
}

/**
 * Sets fields on the response already produced. Hono's `c.header` rebuilds the whole
 * Response on every call once there is one, and several stages each add fields to
 * every response; here the response is copied at most once, only when its headers
 * are immutable (those of fetch() and the cache are), then edited in place.
 */
export function setResponseHeaders(c: StageContext, fields: Record<string, string>): void {
  let headers: Headers | undefined;
  // for-in rather than Object.entries: no arrays made (this runs twice on every answer).
  for (const name in fields) {
    const value = fields[name]!;
    headers ??= c.res.headers;
    try {
      headers.set(name, value);
    } catch {
      // Immutable headers: only the first `set` can throw, so nothing was set yet.
      const copy = new Response(c.res.body, c.res);
      replaceResponse(c, copy);
      headers = copy.headers;
      headers.set(name, value);
    }
  }
}
