import type { Identity } from "../identify/identity";

/**
 * The caller's header fields an origin receives: end-to-end fields of an API call, and no
 * others. An allowlist, because a field the caller named in `Connection` (hop-by-hop, not
 * to be forwarded) cannot be told apart here: the runtime in front of the Worker removes
 * `Connection` itself and passes the fields it named on. Deployments add names with
 * ORIGIN_FORWARD_HEADERS. Cookies are not forwarded: zgate authenticates by bearer token or
 * key, and an origin must not act on an ambient credential zgate never checked.
 */
const FORWARDED = new Set([
  "accept",
  "accept-encoding",
  "accept-language",
  "cache-control",
  "content-encoding",
  "content-language",
  "content-type",
  "idempotency-key",
  "if-match",
  "if-modified-since",
  "if-none-match",
  "if-range",
  "if-unmodified-since",
  "origin",
  "range",
  "traceparent",
  "tracestate",
  "user-agent",
  // ZSky's zero-retention switch (its reference: `X-ZSky-Store: 0`).
  "x-zsky-store",
]);

/**
 * Fields zgate alone asserts or that change what the origin does with the request, never
 * taken from a caller even when a deployment lists them: RFC 9110 §7.6.1 connection fields,
 * proxy credentials, client-asserted addresses and hosts (password-reset links built from
 * X-Forwarded-Host), method overrides and rewritten URLs (a DELETE after zgate authorised a
 * GET), Host, the API-key header, a body digest (the assertion carries zgate's own).
 */
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
  "x-real-ip",
  "true-client-ip",
  "forwarded",
  "x-host",
  "x-original-host",
  "x-http-method-override",
  "x-http-method",
  "x-method-override",
  "x-original-method",
  "x-original-url",
  "x-rewrite-url",
  "host",
  "x-api-key",
  "authorization",
  "content-digest",
  "content-length",
]);

/** Whether zgate refuses to pass a caller's field of this name (lowercase) to an origin. */
export function isNeverForwarded(name: string): boolean {
  return NEVER_FORWARDED.has(name) || name.startsWith("x-forwarded-") || name.startsWith("x-zgate-") || name.startsWith("cf-");
}

/** Caller fields a deployment adds (ORIGIN_FORWARD_HEADERS): exact names, and `prefix-*` patterns. */
export interface ExtraForwarded {
  names: ReadonlySet<string>;
  prefixes: readonly string[];
}

function isForwarded(name: string, extra: ExtraForwarded): boolean {
  if (FORWARDED.has(name)) return true;
  return (extra.names.has(name) || hasPrefix(name, extra.prefixes)) && !isNeverForwarded(name);
}

// A loop, not `prefixes.some(...)`: asked for every field of every request that is not
// forwarded as such (an API key's), and a callback is an allocation each time.
function hasPrefix(name: string, prefixes: readonly string[]): boolean {
  for (const prefix of prefixes) if (name.startsWith(prefix)) return true;
  return false;
}

/** Header fields being built for an origin request: lowercase names, values as sent. */
export type OutgoingHeaders = Record<string, string>;

/**
 * Where the caller reached zgate: sent as zgate's own X-Forwarded-*, plain fields because
 * the origins' frameworks read them as a proxy's (the client address for their logs and
 * abuse checks, scheme, host and prefix for the absolute URLs and redirects they build).
 * A caller's are never passed; the request they ride on is bound by the assertion.
 */
export interface PublicAddress {
  clientIp: string | undefined;
  host: string;
  proto: string;
  /** The path prefix that picked the product (`/zakgt`), empty when its host did. */
  prefix: string;
}

/**
 * Headers for the origin request: the caller's allowlisted fields (minus any the
 * `Connection` field lists, where the runtime still shows it), the Authorization of a
 * verified JWT session (the origin issued it and acts on it, e.g. logout; an API key is
 * never forwarded), then zgate's own X-Forwarded-For/-Host/-Proto(/-Prefix).
 * Built as a plain record and handed to fetch() whole: this runs on every forwarded
 * request, and each call on a Headers object crosses into the runtime.
 */
export function originRequestHeaders(
  incoming: Headers,
  identity: Identity | undefined,
  from: PublicAddress,
  extra: ExtraForwarded,
): OutgoingHeaders {
  const connection = incoming.get("connection");
  const listed = connection ? new Set(connection.split(",").map((h) => h.trim().toLowerCase())) : undefined;
  const headers: OutgoingHeaders = {};
  for (const [name, value] of incoming) {
    if (isForwarded(name, extra) && !listed?.has(name)) headers[name] = value;
  }
  if (identity?.via === "jwt") {
    const authorization = incoming.get("authorization");
    if (authorization) headers.authorization = authorization;
  }
  if (from.clientIp) headers["x-forwarded-for"] = from.clientIp;
  headers["x-forwarded-host"] = from.host;
  headers["x-forwarded-proto"] = from.proto;
  if (from.prefix) headers["x-forwarded-prefix"] = from.prefix;
  return headers;
}
