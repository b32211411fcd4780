import { HTTPException } from "hono/http-exception";
import { SettingsError } from "../config/settings";
import { resolveProduct } from "../products";
import type { Product } from "../products/types";
import type { StageContext, StageErrorHandler } from "./context";
import { codeForStatus, GatewayError, gatewayEnvelope } from "./errors";
import { requestUrl } from "./request-url";

/** Any error as the GatewayError a caller is shown: unexpected ones logged and shown as a bare 500. */
export function asGatewayError(err: Error, requestId: string | undefined): GatewayError {
  if (err instanceof GatewayError) return err;
  // Hono's own refusals (e.g. a JSON body that does not parse) keep their status.
  if (err instanceof HTTPException && err.status < 500) return new GatewayError(codeForStatus(err.status), err.message);
  if (err instanceof SettingsError) {
    // The setting is named in the log only: callers learn nothing about the deployment.
    console.error(JSON.stringify({ msg: "settings_invalid", request_id: requestId, setting: err.setting, detail: err.message }));
    return new GatewayError("SERVICE_UNAVAILABLE", "Service temporarily unavailable", { "Retry-After": "60" });
  }
  // Details go to the log, never to the caller.
  console.error(JSON.stringify({ msg: "unhandled_error", request_id: requestId, error: err.name, detail: err.message.slice(0, 200) }));
  return new GatewayError("INTERNAL", "Internal error");
}

/** Renders an error in `product`'s envelope, or the gateway's own when there is none. */
export function errorResponse(c: StageContext, err: Error, product: Product | null | undefined): Response {
  const error = asGatewayError(err, c.get("requestId"));
  c.set("outcome", error.status >= 500 ? "error" : "rejected");
  // An error raised after the origin answered must not inherit the origin's fields
  // (Hono carries the old response's headers onto a new one): start clean.
  c.res = undefined;
  const body = product ? product.envelope(error.code, error.message) : gatewayEnvelope(error.code, error.message);
  return Response.json(body, { status: error.status, headers: error.headers });
}

/**
 * Every error the gateway produces, in the envelope of the product the request was for
 * (resolved from host or prefix even when settings failed to load).
 */
export const onError: StageErrorHandler = (err, c) =>
  errorResponse(c, err, (c.get("target") ?? resolveProduct(requestUrl(c.req.raw), c.get("settings")))?.product);
