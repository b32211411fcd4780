import type { Context } from "hono";

/** Replaces the response outright: Hono's `c.res =` would carry the old one's fields (length, ETag) onto it. */
export function replaceResponse(c: Context, response: Response): void {
  c.res = undefined;
  c.res = response;
}

/**
 * Sets fields on the response already produced. Hono's `c.header` rebuilds the whole
 * Response on every call once there is one, and several stages each add fields to
 * every response; here the response is copied at most once, only when its headers
 * are immutable (those of fetch() and the cache are), then edited in place.
 */
export function setResponseHeaders(c: Context, fields: Record<string, string>): void {
  const entries = Object.entries(fields);
  if (entries.length === 0) return;
  const headers = c.res.headers;
  try {
    for (const [name, value] of entries) headers.set(name, value);
  } catch {
    // Immutable headers: the first `set` threw, so nothing was set yet.
    const copy = new Response(c.res.body, c.res);
    for (const [name, value] of entries) copy.headers.set(name, value);
    replaceResponse(c, copy);
  }
}
