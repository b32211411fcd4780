import type { Context } from "hono";
import type { AppEnv } from "../http/context";
import { GatewayError } from "../http/errors";
import { addIdentityHeaders } from "./identity-headers";
import { originRequestHeaders } from "./origin-headers";
import { requestUrl } from "../http/request-url";

/** The origin base URL for this request: `zak_test_` keys go to the test origin (development falls back to the one origin). */
export function originFor(c: Context<AppEnv>): string {
  const settings = c.get("settings");
  const target = c.get("target");
  const identity = c.get("identity");
  return identity?.testMode ? (settings.ORIGIN_ZAKGT_TEST ?? settings.ORIGIN_ZAKGT) : settings[target.product.originSetting];
}

/** fetch() towards an origin, with the timeout and the 502/504 mapping every origin call shares. */
export async function fetchOrigin(c: Context<AppEnv>, url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, { ...init, redirect: "manual", signal: AbortSignal.timeout(c.get("settings").ORIGIN_TIMEOUT_MS) });
  } catch (err) {
    throw upstreamFailure(err);
  }
}

/** What a failed origin exchange (the call, or reading its body) tells the caller, never the underlying error: 504 or 502. */
export function upstreamFailure(err: unknown): GatewayError {
  if (err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError")) {
    return new GatewayError("GATEWAY_TIMEOUT", "Upstream service timed out");
  }
  return new GatewayError("BAD_GATEWAY", "Upstream service unavailable");
}

/**
 * Sends the request to the product's origin and returns its response untouched
 * (status, headers, body, redirects). Unreachable origin: 502; slower than
 * ORIGIN_TIMEOUT_MS: 504; neither leaks the underlying error.
 */
export async function forwardToOrigin(c: Context<AppEnv>, body: Uint8Array | null): Promise<Response> {
  const settings = c.get("settings");
  const target = c.get("target");
  const requestId = c.get("requestId");
  const identity = c.get("identity");
  const url = requestUrl(c.req.raw);
  // The path zgate matched and authorised, exactly (route-request.ts refused any other reading).
  const pathAndQuery = target.originPath + url.search;
  const incoming = c.req.raw.headers;
  const headers = originRequestHeaders(
    incoming,
    identity,
    {
      clientIp: incoming.get("cf-connecting-ip") ?? undefined,
      host: url.host,
      proto: url.protocol.slice(0, -1),
      prefix: target.publicPrefix,
    },
    settings.ORIGIN_FORWARD_HEADERS,
  );
  const sent = body && body.byteLength > 0 ? body : null;
  await addIdentityHeaders(headers, settings, {
    method: c.req.method,
    pathAndQuery,
    product: target.product.id,
    identity,
    requestId,
    body: sent,
  });
  const response = await fetchOrigin(c, originFor(c) + pathAndQuery, { method: c.req.method, headers, body: sent });
  // Re-wrapped so later stages may add X-Request-Id; the origin's own fields stay as sent.
  return new Response(response.body, response);
}
