import type { Env } from "../env";
import { resolveProductHost } from "../products";
import { loadSettings, type Settings } from "./settings";

/**
 * Whether zgate's own surface (`/admin/v1`, `/docs`, `/openapi.json`) is answered on this
 * host: on a GATEWAY_HOSTS host, never on a product's own host, and on any other host
 * (the local prefix-based URL, `127.0.0.1:8787`) only in development. A deployment
 * whose settings do not load answers nothing of its own; the pipeline reports why.
 */
export function servesGatewaySurface(url: URL, env: Env): boolean {
  let settings: Settings;
  try {
    settings = loadSettings(env);
  } catch {
    return false;
  }
  const host = url.hostname.toLowerCase();
  if (settings.GATEWAY_HOSTS.includes(host)) return true;
  if (resolveProductHost(host, settings)) return false;
  return settings.ENVIRONMENT === "development";
}
