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

/** Header fields being built for an origin request: lowercase names, values as sent. */
export type OutgoingHeaders = Record<string, string>;

/**
 * Headers for the origin request: the caller's, minus hop-by-hop fields (and those the
 * Connection field lists), minus any `X-Zgate-*` or `CF-*` a caller supplied (only zgate
 * may assert identity), minus API-key secrets (an origin never sees a key; a verified
 * JWT session is passed on because the origin issued it and acts on it, e.g. logout).
 * Built as a plain record and handed to fetch() whole: this runs on every forwarded
 * request, and each call on a Headers object crosses into the runtime.
 */
export function originRequestHeaders(incoming: Headers, identity: Identity | undefined): OutgoingHeaders {
  const connection = incoming.get("connection");
  const listed = connection ? new Set(connection.split(",").map((h) => h.trim().toLowerCase())) : undefined;
  const keepAuthorization = identity?.via === "jwt";
  const headers: OutgoingHeaders = {};
  let clientIp: string | undefined;
  for (const [name, value] of incoming) {
    if (name === "cf-connecting-ip") clientIp = value;
    if (NEVER_FORWARDED.has(name) || listed?.has(name) || name.startsWith("x-zgate-") || name.startsWith("cf-")) continue;
    if (name === "authorization" && !keepAuthorization) continue;
    headers[name] = value;
  }
  if (clientIp) headers["x-forwarded-for"] = clientIp;
  return headers;
}
