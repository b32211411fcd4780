import type { Identity } from "../auth/identity";

// RFC 9110 §7.6.1 connection-specific fields, plus the proxy credential fields.
const HOP_BY_HOP = [
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
];

/**
 * Headers for the origin request: the caller's, minus hop-by-hop fields, minus any
 * `X-Zgate-*` a caller supplied (only zgate may assert identity), minus API-key
 * secrets (an origin never sees a key; a verified JWT session is passed on because the
 * origin issued it and acts on it, e.g. logout).
 */
export function originRequestHeaders(incoming: Headers, identity: Identity | undefined): Headers {
  const headers = new Headers(incoming);
  const listed = (incoming.get("connection") ?? "").split(",").map((h) => h.trim().toLowerCase());
  for (const name of [...HOP_BY_HOP, ...listed]) if (name) headers.delete(name);
  for (const name of [...headers.keys()]) {
    if (name.startsWith("x-zgate-") || name.startsWith("cf-")) headers.delete(name);
  }
  headers.delete("host");
  // Client-asserted addresses are not to be believed; the one zgate knows is re-added below.
  for (const name of ["x-forwarded-for", "x-real-ip", "true-client-ip", "forwarded"]) headers.delete(name);
  headers.delete("x-api-key");
  if (identity?.via !== "jwt") headers.delete("authorization");
  const clientIp = incoming.get("cf-connecting-ip");
  if (clientIp) headers.set("X-Forwarded-For", clientIp);
  return headers;
}
