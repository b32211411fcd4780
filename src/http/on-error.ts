import type { ErrorHandler } from "hono";
import { SettingsError } from "../config/settings";
import { resolveProduct } from "../products";
import type { AppEnv } from "./context";
import { GatewayError, gatewayEnvelope } from "./errors";

/**
 * Renders every error the gateway produces in the envelope of the product the request
 * was for. Unexpected errors become a plain 500: the details go to the log, not to the
 * caller.
 */
export const onError: ErrorHandler<AppEnv> = (err, c) => {
  let error: GatewayError;
  if (err instanceof GatewayError) {
    error = err;
  } else if (err instanceof SettingsError) {
    error = new GatewayError("SERVICE_UNAVAILABLE", err.message, { "Retry-After": "60" });
    console.error(JSON.stringify({ msg: "settings_invalid", request_id: c.var.requestId, setting: err.setting }));
  } else {
    error = new GatewayError("INTERNAL", "Internal error");
    console.error(
      JSON.stringify({ msg: "unhandled_error", request_id: c.var.requestId, error: err instanceof Error ? err.name : "unknown" }),
    );
  }
  c.set("outcome", error.status >= 500 ? "error" : "rejected");
  const product = (c.var.target ?? resolveProduct(new URL(c.req.url), c.var.settings))?.product;
  const body = product ? product.envelope(error.code, error.message) : gatewayEnvelope(error.code, error.message);
  return c.json(body, error.status as 400, error.headers);
};
