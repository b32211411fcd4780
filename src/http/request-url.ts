/**
 * A request's URL, parsed once: the host choice (app.ts), the edge checks, the route and
 * the forward all read it, and each `new URL` is a parse in the runtime. Shared, so never
 * changed in place: whoever needs another URL copies it.
 */
const parsed = new WeakMap<Request, URL>();

export function requestUrl(request: Request): URL {
  let url = parsed.get(request);
  if (!url) {
    url = new URL(request.url);
    parsed.set(request, url);
  }
  return url;
}
