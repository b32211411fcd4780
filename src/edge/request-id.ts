import type { Stage } from "../http/context";
import { setResponseHeaders } from "../http/response";

// A caller's id is kept only when it is short and plain, so it is safe to log and forward.
const WELL_FORMED = /^[A-Za-z0-9._:-]{8,128}$/;

/** Every response carries `X-Request-Id`: the caller's well-formed one, else a new UUID. */
export const requestId: Stage = {
  before(c) {
    const incoming = c.req.header("x-request-id");
    c.set("requestId", incoming && WELL_FORMED.test(incoming) ? incoming : crypto.randomUUID());
  },
  after(c) {
    setResponseHeaders(c, { "X-Request-Id": c.get("requestId") });
  },
};
