import { base64url } from "jose";
import type { Identity } from "../identify/identity";
import type { Settings } from "../config/settings";
import type { Product } from "../products/types";
import { utf8 } from "../util/utf8";
import { assertionKeys, assertionKeysNow, type AssertionKey } from "./assertion-keys";
import type { OutgoingHeaders } from "./origin-headers";

/**
 * zgate's word to an origin about one request: a compact JWS (RFC 7515, EdDSA) in
 * `X-Zgate-Assertion`, naming who the caller is and binding the request it rides on
 * (method, URL, query, body), so the origin trusts it without checking the caller's
 * credential again, and can verify it with any JWT library against the gateway's
 * published keys. docs/origin-signature.md is the contract every verifier follows.
 * - `aud` is the product: an origin refuses an assertion minted for another platform.
 * - `htm`/`htu` (RFC 9449's names: the URL without its query) and the two digests:
 *   a captured assertion is worth nothing on another endpoint, query or body; `jti` and
 *   the 60 s `exp`: nor twice, nor later.
 */
export const ASSERTION_HEADER = "x-zgate-assertion";
export const ASSERTION_TYPE = "zgate-assertion+jwt";
export const ASSERTION_ISSUER = "zgate";
export const ASSERTION_LIFETIME_SECONDS = 60;

/** The claims of an assertion; identity claims are absent on a public route. */
export interface AssertionClaims {
  iss: string;
  aud: string;
  /** The key id for a key, the user id for a session. */
  sub?: string;
  account?: string;
  user?: string;
  key_id?: string;
  request_id: string;
  iat: number;
  exp: number;
  jti: string;
  htm: string;
  htu: string;
  /** RFC 9530 digest (`sha-256=:<base64>:`) of the raw query string, without its `?` (empty: none). */
  query_digest: string;
  /** RFC 9530 `Content-Digest` of the body sent (no body: of no bytes). */
  content_digest: string;
}

// Most origin requests have no query and no body (every plain GET): a hash per request is CPU spent on a constant.
const EMPTY_DIGEST = "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:";

/** RFC 9530 digest of some bytes: `sha-256=:<base64 SHA-256>:`. */
export async function digest(bytes: Uint8Array | null | undefined): Promise<string> {
  if (!bytes || bytes.byteLength === 0) return EMPTY_DIGEST;
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return `sha-256=:${btoa(String.fromCharCode(...hash))}:`;
}

// The protected header is the same for every assertion a key signs: encoded once per key.
const encodedHeaders = new WeakMap<AssertionKey, string>();

function protectedHeader(key: AssertionKey): string {
  let header = encodedHeaders.get(key);
  if (!header) {
    header = base64url.encode(JSON.stringify({ alg: "EdDSA", typ: ASSERTION_TYPE, kid: key.kid }));
    encodedHeaders.set(key, header);
  }
  return header;
}

/** The key a product's assertions are signed with: its `<ID>_ASSERTION_KID`, else the only key (settings.ts checks that one is named). */
function signingKey(keys: Map<string, AssertionKey>, settings: Settings, product: Product): AssertionKey {
  const kid = (settings as unknown as Record<string, string | undefined>)[product.assertionKidSetting];
  return (kid ? keys.get(kid) : keys.values().next().value)!;
}

/**
 * Signs `claims` as a compact JWS with the product's key. Once the isolate has imported
 * the keys, the signature is the one async step: this runs on every origin request.
 */
export function signAssertion(settings: Settings, product: Product, claims: AssertionClaims): Promise<string> {
  const keys = assertionKeysNow(settings.ORIGIN_ASSERTION_KEYS);
  if (!keys) return assertionKeys(settings.ORIGIN_ASSERTION_KEYS).then(() => signAssertion(settings, product, claims));
  const key = signingKey(keys, settings, product);
  const input = `${protectedHeader(key)}.${base64url.encode(JSON.stringify(claims))}`;
  return crypto.subtle
    .sign("Ed25519", key.privateKey, utf8(input))
    .then((signature) => `${input}.${base64url.encode(new Uint8Array(signature))}`);
}

/** What one origin request is: where it goes (`origin` + `path` + `query`, as sent), how, with which body, for whom. */
export interface OriginRequest {
  method: string;
  /** The origin's base URL (`ORIGIN_<ID>`, or where a result is pulled from). */
  origin: string;
  /** The path as sent, still percent-encoded. */
  path: string;
  /** The raw query string, without `?` (empty: none). */
  query: string;
  body?: Uint8Array | null;
  product: Product;
  identity: Identity | undefined;
  requestId: string;
}

/**
 * Adds the assertion for one origin request to the headers being built for it, and the
 * request's id in plain `X-Request-Id` beside it: what an origin's logs and tracing key on
 * without reading a JWT (also a claim, so a verified assertion names it too).
 */
export function addOriginAssertion(headers: OutgoingHeaders, settings: Settings, request: OriginRequest): Promise<void> {
  // The host's wall clock (HR-Time's), not zgate's: the origin judges `iat`/`exp` by its own,
  // which a test that moves zgate's clock or stops Date (vi.setSystemTime) does not move.
  const iat = Math.floor((performance.timeOrigin + performance.now()) / 1000);
  const sign = (queryDigest: string, contentDigest: string) => {
    const { identity } = request;
    const claims: AssertionClaims = {
      iss: ASSERTION_ISSUER,
      aud: request.product.id,
      sub: identity ? (identity.keyId ?? identity.userId) : undefined,
      account: identity?.accountId,
      user: identity?.userId,
      key_id: identity?.keyId,
      request_id: request.requestId,
      iat,
      exp: iat + ASSERTION_LIFETIME_SECONDS,
      jti: crypto.randomUUID(),
      htm: request.method.toUpperCase(),
      htu: request.origin + request.path,
      query_digest: queryDigest,
      content_digest: contentDigest,
    };
    headers["x-request-id"] = request.requestId;
    return signAssertion(settings, request.product, claims).then((assertion) => {
      headers[ASSERTION_HEADER] = assertion;
    });
  };
  // No query and no body (every plain GET): both digests are the constant, with no step to wait for.
  if (!request.query && !request.body?.byteLength) return sign(EMPTY_DIGEST, EMPTY_DIGEST);
  return Promise.all([digest(request.query ? utf8(request.query) : null), digest(request.body)]).then(([query, content]) =>
    sign(query, content),
  );
}
