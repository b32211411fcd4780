import type { Context } from "hono";
import type { AppEnv } from "../http/context";
import { GatewayError } from "../http/errors";
import { IDENTITY_HEADERS, signIdentity } from "./identity-signature";
import { originRequestHeaders } from "./origin-headers";

/**
 * Sends the request to the product's origin and returns its response untouched
 * (status, headers, body, redirects). Unreachable origin: 502; slower than
 * ORIGIN_TIMEOUT_MS: 504; neither leaks the underlying error.
 */
export async function forwardToOrigin(c: Context<AppEnv>, body: Uint8Array | null): Promise<Response> {
  const { settings, target, requestId } = c.var;
  const identity = c.var.identity;
  const incoming = new URL(c.req.url);
  const pathAndQuery = target.originPath + incoming.search;
  // `zak_test_` keys go to the test origin (development falls back to the one origin).
  const origin = identity?.testMode ? (settings.ORIGIN_ZAKGT_TEST ?? settings.ORIGIN_ZAKGT) : settings[target.product.originSetting];
  const url = origin + pathAndQuery;

  const headers = originRequestHeaders(c.req.raw.headers, identity);
  const signed = {
    timestamp: Math.floor(Date.now() / 1000),
    method: c.req.method,
    pathAndQuery,
    product: target.product.id,
    account: identity?.accountId ?? "",
    user: identity?.userId ?? "",
    keyId: identity?.keyId ?? "",
    requestId,
  };
  headers.set(IDENTITY_HEADERS.product, signed.product);
  if (signed.account) headers.set(IDENTITY_HEADERS.account, signed.account);
  if (signed.user) headers.set(IDENTITY_HEADERS.user, signed.user);
  if (signed.keyId) headers.set(IDENTITY_HEADERS.keyId, signed.keyId);
  headers.set("X-Request-Id", requestId);
  headers.set(IDENTITY_HEADERS.timestamp, String(signed.timestamp));
  headers.set(IDENTITY_HEADERS.signature, await signIdentity(settings.ORIGIN_SIGNING_SECRET, signed));

  let response: Response;
  try {
    response = await fetch(url, {
      method: c.req.method,
      headers,
      body: body && body.byteLength > 0 ? body : undefined,
      redirect: "manual",
      signal: AbortSignal.timeout(settings.ORIGIN_TIMEOUT_MS),
    });
  } catch (err) {
    if (err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError")) {
      throw new GatewayError("GATEWAY_TIMEOUT", "Upstream service timed out");
    }
    throw new GatewayError("BAD_GATEWAY", "Upstream service unavailable");
  }
  // Re-wrapped so later stages may add X-Request-Id; the origin's own fields stay as sent.
  return new Response(response.body, response);
}
