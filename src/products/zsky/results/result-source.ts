import type { Settings } from "../../../config/settings";
import { GatewayError } from "../../../http/errors";

/** Where a result may be pulled from, and whether that is the ZSky origin itself (which gets the signed identity headers). */
export interface ResultSource {
  url: URL;
  onOrigin: boolean;
}

/** A host[:port] as compared: lower case (URL already is), without the trailing dot DNS ignores (`zsky.ai.`). */
const normalHost = (host: string) => host.toLowerCase().replace(/\.(:\d+)?$/, "$1");

/**
 * The origin's `result_url`, checked before anything is fetched: a path or URL on
 * ORIGIN_ZSKY (same scheme, same normalised host and port), or a URL on one of
 * ZSKY_RESULT_HOSTS over HTTPS (HTTP too in development, for local simulators). Any
 * other host (an internal address, one of zgate's own hosts spelled another way) is
 * refused: the origin's answer must not make the gateway fetch what it likes.
 */
export function resultSource(settings: Settings, resultUrl: unknown): ResultSource {
  let url: URL;
  try {
    if (typeof resultUrl !== "string" || resultUrl === "") throw new Error("no result_url");
    url = new URL(resultUrl, settings.ORIGIN_ZSKY);
  } catch {
    throw new GatewayError("BAD_GATEWAY", "Upstream reported no usable result");
  }
  const origin = new URL(settings.ORIGIN_ZSKY);
  const host = normalHost(url.host);
  const onOrigin = url.protocol === origin.protocol && host === normalHost(origin.host);
  const listed =
    (url.protocol === "https:" || (url.protocol === "http:" && settings.ENVIRONMENT === "development")) &&
    settings.ZSKY_RESULT_HOSTS.some((h) => normalHost(h) === host);
  if ((!onOrigin && !listed) || url.username || url.password) throw new GatewayError("BAD_GATEWAY", "Upstream result URL refused");
  return { url, onOrigin };
}
