import type { WindowReport } from "../limits/guard-protocol";

/**
 * RateLimit fields in the IETF httpapi ratelimit-headers draft's structured form:
 *   RateLimit-Policy: "burst";q=20;w=60
 *   RateLimit: "burst";r=12;t=41
 * one list item per window that applies to the request.
 */
export function rateLimitHeaders(windows: WindowReport[]): Record<string, string> {
  if (windows.length === 0) return {};
  return {
    "RateLimit-Policy": windows.map((w) => `"${w.name}";q=${w.limit};w=${w.windowSeconds}`).join(", "),
    RateLimit: windows.map((w) => `"${w.name}";r=${w.remaining};t=${w.resetSeconds}`).join(", "),
  };
}
