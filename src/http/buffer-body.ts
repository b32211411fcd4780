import type { MiddlewareHandler } from "hono";
import { readBody, requireJsonBody } from "./body";
import type { AppEnv } from "./context";

/**
 * Reads the body once (bounded by MAX_BODY_BYTES) for the JSON check, zgate's own
 * handlers and the forward; on JSON routes the parsed value is kept too.
 */
export const bufferBody: MiddlewareHandler<AppEnv> = async (c, next) => {
  const body = await readBody(c.req.raw, c.var.settings.MAX_BODY_BYTES);
  c.set("body", body);
  if (c.var.route.json) c.set("json", requireJsonBody(body, c.req.header("content-type") ?? null));
  await next();
};
