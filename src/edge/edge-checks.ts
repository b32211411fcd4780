import { loadSettings } from "../config/settings";
import type { Stage } from "../http/context";
import { GatewayError } from "../http/errors";
import { requestUrl } from "../http/request-url";

/** Parses settings (503 naming the bad one), redirects plain HTTP, refuses oversized bodies early. */
export const edgeChecks: Stage = {
  before(c) {
    const settings = loadSettings(c.env);
    c.set("settings", settings);

    const url = requestUrl(c.req.raw);
    if (url.protocol === "http:" && settings.ENVIRONMENT !== "development") {
      const secure = new URL(url);
      secure.protocol = "https:";
      c.set("outcome", "redirect");
      return new Response(null, { status: 308, headers: { Location: secure.toString() } });
    }

    // The declared length settles most oversized bodies before any work; bodies without
    // one are counted while they are read (see `readBody`).
    const declared = Number(c.req.header("content-length") ?? 0);
    if (declared > settings.MAX_BODY_BYTES) {
      throw new GatewayError("PAYLOAD_TOO_LARGE", `Request body exceeds ${settings.MAX_BODY_BYTES} bytes`);
    }
  },
};
