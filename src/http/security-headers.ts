import type { MiddlewareHandler } from "hono";
import { setResponseHeaders } from "./response";

/**
 * The fields of a page zgate renders for people (the console, the API reference), on
 * every response, errors included: its own Content-Security-Policy, never framed
 * (clickjacking), never sniffed as another type, and no Referer to another site.
 */
export function pageSecurityHeaders(csp: string, extra: Record<string, string> = {}): MiddlewareHandler {
  return async (c, next) => {
    await next();
    setResponseHeaders(c, {
      "Content-Security-Policy": csp,
      "X-Frame-Options": "DENY",
      "X-Content-Type-Options": "nosniff",
      "Referrer-Policy": "no-referrer",
      ...extra,
    });
  };
}
