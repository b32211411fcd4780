import type { Identity } from "../identify/identity";
import type { Settings } from "../config/settings";
import type { ProductId } from "../products/types";
import {
  contentDigest,
  SIGNATURE_HEADER,
  SIGNATURE_KID_HEADER,
  SIGNED_HEADERS,
  signingKeyId,
  signRequest,
  type SignedRequest,
} from "./identity-signature";
import type { OutgoingHeaders } from "./origin-headers";

const SIGNED_FIELDS = Object.entries(SIGNED_HEADERS) as [keyof typeof SIGNED_HEADERS, string][];

/**
 * Adds zgate's signed identity headers for one origin request (see identity-signature.ts).
 * The X-Forwarded-* values zgate put in `headers` (origin-headers.ts) are signed as they
 * stand; `body` is the exact body sent (none: the digest of the empty string).
 */
export async function addIdentityHeaders(
  headers: OutgoingHeaders,
  settings: Pick<Settings, "ORIGIN_SIGNING_SECRET">,
  request: {
    method: string;
    pathAndQuery: string;
    product: ProductId;
    identity: Identity | undefined;
    requestId: string;
    body?: Uint8Array | null;
  },
): Promise<void> {
  const { identity } = request;
  const signed: SignedRequest = {
    timestamp: Math.floor(Date.now() / 1000),
    nonce: crypto.randomUUID(),
    method: request.method,
    pathAndQuery: request.pathAndQuery,
    contentDigest: await contentDigest(request.body),
    product: request.product,
    account: identity?.accountId ?? "",
    user: identity?.userId ?? "",
    keyId: identity?.keyId ?? "",
    requestId: request.requestId,
    forwardedFor: headers[SIGNED_HEADERS.forwardedFor] ?? "",
    forwardedHost: headers[SIGNED_HEADERS.forwardedHost] ?? "",
    forwardedProto: headers[SIGNED_HEADERS.forwardedProto] ?? "",
    forwardedPrefix: headers[SIGNED_HEADERS.forwardedPrefix] ?? "",
  };
  // One entry per signed field; an empty one is left out (the origin reads it as empty).
  for (const [field, name] of SIGNED_FIELDS) {
    const value = String(signed[field]);
    if (value) headers[name] = value;
  }
  headers[SIGNATURE_HEADER] = await signRequest(settings.ORIGIN_SIGNING_SECRET, signed);
  headers[SIGNATURE_KID_HEADER] = await signingKeyId(settings.ORIGIN_SIGNING_SECRET);
}
