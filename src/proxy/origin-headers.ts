import type { Identity } from "../auth/identity";

// RFC 9110 §7.6.1 connection-specific fields, the proxy credential fields, client-asserted
// addresses (not to be believed: the one zgate knows is re-added), Host and the API-key header.
const NEVER_FORWARDED = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "x-forwarded-for",
  "x-real-ip",
  "true-client-ip",
  "forwarded",
  "host",
  "x-api-key",
]);

/**
 * Headers for the origin request: the caller's, minus hop-by-hop fields (and those the
 * Connection field lists), minus any `X-Zgate-*` or `CF-*` a caller supplied (only zgate
 * may assert identity), minus API-key secrets (an origin never sees a key; a verified
 * JWT session is passed on because the origin issued it and acts on it, e.g. logout).
 * One pass over the caller's fields: this runs on every forwarded request.
 */
export function originRequestHeaders(incoming: Headers, identity: Identity | undefined): Headers {
  const connection = incoming.get("connection");
  const listed = connection ? new Set(connection.split(",").map((h) => h.trim().toLowerCase())) : undefined;
  const keepAuthorization = identity?.via === "jwt";
  const headers = new Headers();
  for (const [name, value] of incoming) {
    if (NEVER_FORWARDED.has(name) || listed?.has(name) || name.startsWith("x-zgate-") || name.startsWith("cf-")) continue;
    if (name === "authorization" && !keepAuthorization) continue;
    headers.append(name, value);
  }
  const clientIp = incoming.get("cf-connecting-ip");
  if (clientIp) headers.set("X-Forwarded-For", clientIp);
  return headers;
}
