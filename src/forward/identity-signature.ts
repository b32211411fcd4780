import { toHex } from "../util/hex";
import { hmacKey } from "../util/hmac";
import { sha256Hex } from "../util/sha256";
import { utf8 } from "../util/utf8";

/**
 * Signs what zgate asserts to an origin (who the caller is, where the request came from,
 * which body it carried), so an origin can trust it without re-verifying the caller.
 * docs/origin-signature.md specifies the signed string (`canonical` below), the headers
 * and the origin's checks; every verifier follows that page.
 * - Method and path are signed: a captured header set cannot be replayed against another
 *   endpoint; the content digest: nor with another body; timestamp and nonce: nor later.
 * - `X-Zgate-Signature-Kid` is the first 16 hex digits of the secret's SHA-256
 *   (`signingKeyId`): a rotation is one `wrangler secret put` with nothing else to keep in
 *   step, and an origin holding old and new secrets picks the one it names. It is not
 *   signed: naming another secret only makes the check fail.
 * Plain WebCrypto: the local origin simulators import this same module under Node.
 */
export interface SignedRequest {
  timestamp: number;
  nonce: string;
  method: string;
  pathAndQuery: string;
  contentDigest: string;
  product: string;
  account: string;
  user: string;
  keyId: string;
  requestId: string;
  forwardedFor: string;
  forwardedHost: string;
  forwardedProto: string;
  forwardedPrefix: string;
}

type HeaderField = Exclude<keyof SignedRequest, "method" | "pathAndQuery">;

/** The header that carries each signed field (lowercase, as origin request headers are built). */
export const SIGNED_HEADERS = {
  timestamp: "x-zgate-timestamp",
  nonce: "x-zgate-nonce",
  contentDigest: "content-digest",
  product: "x-zgate-product",
  account: "x-zgate-account",
  user: "x-zgate-user",
  keyId: "x-zgate-key-id",
  requestId: "x-request-id",
  forwardedFor: "x-forwarded-for",
  forwardedHost: "x-forwarded-host",
  forwardedProto: "x-forwarded-proto",
  forwardedPrefix: "x-forwarded-prefix",
} as const satisfies Record<HeaderField, string>;

export const SIGNATURE_HEADER = "x-zgate-signature";
export const SIGNATURE_KID_HEADER = "x-zgate-signature-kid";

export const MAX_SIGNATURE_AGE_SECONDS = 300;

function canonical(s: SignedRequest): string {
  return [
    "zgate-v2",
    s.timestamp,
    s.nonce,
    s.method.toUpperCase(),
    s.pathAndQuery,
    s.contentDigest,
    s.product,
    s.account,
    s.user,
    s.keyId,
    s.requestId,
    s.forwardedFor,
    s.forwardedHost,
    s.forwardedProto,
    s.forwardedPrefix,
  ].join("\n");
}

// SHA-256 of no bytes: most origin requests (every GET) have no body, and a hash per request is CPU spent on a constant.
const EMPTY_DIGEST = "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:";

/** `Content-Digest` value for a body (RFC 9530): `sha-256=:<base64 SHA-256>:`. */
export async function contentDigest(body: Uint8Array | null | undefined): Promise<string> {
  if (!body || body.byteLength === 0) return EMPTY_DIGEST;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", body as Uint8Array<ArrayBuffer>));
  return `sha-256=:${btoa(String.fromCharCode(...digest))}:`;
}

const keyIds = new Map<string, Promise<string>>();

/** The key id of a signing secret: the first 16 hex digits of its SHA-256 (computed once per secret). */
export function signingKeyId(secret: string): Promise<string> {
  let kid = keyIds.get(secret);
  if (!kid) {
    kid = sha256Hex(secret).then((hex) => hex.slice(0, 16));
    keyIds.set(secret, kid);
  }
  return kid;
}

function fromHex(hex: string): Uint8Array<ArrayBuffer> | null {
  if (!/^(?:[0-9a-f]{2})+$/.test(hex)) return null;
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

export async function signRequest(secret: string, request: SignedRequest): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", await hmacKey(secret), utf8(canonical(request)));
  return `v2=${toHex(mac)}`;
}

/** Origin side: true only for a fresh, untampered field set. `subtle.verify` compares in constant time. */
export async function verifyRequestSignature(
  secret: string,
  request: SignedRequest,
  signature: string,
  nowSeconds = Math.floor(Date.now() / 1000),
): Promise<boolean> {
  if (!Number.isFinite(request.timestamp) || Math.abs(nowSeconds - request.timestamp) > MAX_SIGNATURE_AGE_SECONDS) return false;
  const mac = signature.startsWith("v2=") ? fromHex(signature.slice(3)) : null;
  if (!mac) return false;
  return crypto.subtle.verify("HMAC", await hmacKey(secret), mac, utf8(canonical(request)));
}

/**
 * Origin side, the whole check: the body matches its `Content-Digest` and the signature,
 * by the secret `X-Zgate-Signature-Kid` names among `secrets` (the old and the new one
 * during a rotation), covers it, the method, the path and every signed header. Returns
 * the signed fields, or null. Nonce de-duplication is the origin's own (it needs state):
 * see origins/common.ts.
 */
export async function verifySignedRequest(
  secrets: readonly string[],
  request: { method: string; url: string; headers: Headers },
  body: Uint8Array,
  nowSeconds?: number,
): Promise<SignedRequest | null> {
  const url = new URL(request.url);
  const header = (name: string) => request.headers.get(name) ?? "";
  const fields = Object.fromEntries(Object.entries(SIGNED_HEADERS).map(([field, name]) => [field, header(name)]));
  const signed: SignedRequest = {
    ...(fields as Record<HeaderField, string>),
    timestamp: Number(fields.timestamp || NaN),
    method: request.method,
    pathAndQuery: url.pathname + url.search,
  };
  if (signed.contentDigest !== (await contentDigest(body))) return null;
  const kid = header(SIGNATURE_KID_HEADER);
  const ids = await Promise.all(secrets.map(signingKeyId));
  const secret = secrets[ids.indexOf(kid)];
  if (!kid || secret === undefined) return null;
  return (await verifyRequestSignature(secret, signed, header(SIGNATURE_HEADER), nowSeconds)) ? signed : null;
}
