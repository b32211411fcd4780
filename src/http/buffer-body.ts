import { readBody, requireJsonBody } from "./body";
import type { Stage, StageContext } from "./context";
import { GatewayError } from "./errors";
import { validate } from "./validate";

/**
 * Reads the body once (bounded by MAX_BODY_BYTES) for the JSON check, zgate's own
 * handlers and the forward; on JSON routes the parsed value is kept too. A request without
 * a body (every GET) takes no async step here: each such step is runtime work on every
 * request.
 */
export const bufferBody: Stage = {
  before(c) {
    if (c.req.raw.body === null) return keepBody(c, null);
    return readBody(c.req.raw, c.get("settings").MAX_BODY_BYTES).then((body) => keepBody(c, body));
  },
};

function keepBody(c: StageContext, body: Uint8Array | null): void {
  // fetch() cannot send a GET or HEAD with a body, so the origin would never see it:
  // refused here, before anything is counted, rather than admitted and then a 502.
  if (body && body.byteLength > 0 && (c.req.method === "GET" || c.req.method === "HEAD")) {
    throw new GatewayError("BAD_REQUEST", `A ${c.req.method} request must not have a body`);
  }
  c.set("body", body);
  if (c.get("route").json)
    c.set("json", requireJsonBody(body, c.req.header("content-type") ?? null, c.get("target").product.wrongMediaType));
}

/** Routes with a declared body schema are validated here, before any quota or origin is touched. */
export const validateBody: Stage = {
  before(c) {
    const schema = c.get("route").body;
    if (schema) validate(schema, c.get("json") ?? {}, c.get("target").product.invalidInput);
  },
};
