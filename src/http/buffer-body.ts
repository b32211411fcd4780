import type { MiddlewareHandler } from "hono";
import { readBody, requireJsonBody } from "./body";
import type { AppEnv } from "./context";
import { GatewayError } from "./errors";
import { validate } from "./validate";

/**
 * Reads the body once (bounded by MAX_BODY_BYTES) for the JSON check, zgate's own
 * handlers and the forward; on JSON routes the parsed value is kept too.
 */
export const bufferBody: MiddlewareHandler<AppEnv> = async (c, next) => {
  const body = await readBody(c.req.raw, c.get("settings").MAX_BODY_BYTES);
  // fetch() cannot send a GET or HEAD with a body, so the origin would never see it:
  // refused here, before anything is counted, rather than admitted and then a 502.
  if (body && body.byteLength > 0 && (c.req.method === "GET" || c.req.method === "HEAD")) {
    throw new GatewayError("BAD_REQUEST", `A ${c.req.method} request must not have a body`);
  }
  c.set("body", body);
  if (c.get("route").json)
    c.set("json", requireJsonBody(body, c.req.header("content-type") ?? null, c.get("target").product.wrongMediaType));
  await next();
};

/** Routes with a declared body schema are validated here, before any quota or origin is touched. */
export const validateBody: MiddlewareHandler<AppEnv> = async (c, next) => {
  const schema = c.get("route").body;
  if (schema) validate(schema, c.get("json") ?? {}, c.get("target").product.invalidInput);
  await next();
};
