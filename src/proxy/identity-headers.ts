import type { Identity } from "../auth/identity";
import type { Settings } from "../config/settings";
import type { ProductId } from "../products/types";
import { IDENTITY_HEADERS, signIdentity } from "./identity-signature";
import type { OutgoingHeaders } from "./origin-headers";

/** Adds zgate's signed identity headers for one origin request (see identity-signature.ts). */
export async function addIdentityHeaders(
  headers: OutgoingHeaders,
  settings: Settings,
  request: { method: string; pathAndQuery: string; product: ProductId; identity: Identity | undefined; requestId: string },
): Promise<void> {
  const { identity } = request;
  const signed = {
    timestamp: Math.floor(Date.now() / 1000),
    method: request.method,
    pathAndQuery: request.pathAndQuery,
    product: request.product,
    account: identity?.accountId ?? "",
    user: identity?.userId ?? "",
    keyId: identity?.keyId ?? "",
    requestId: request.requestId,
  };
  // Lowercase names, as the caller's fields in `headers` are: one entry per field.
  const set = (name: string, value: string) => (headers[name.toLowerCase()] = value);
  set(IDENTITY_HEADERS.product, signed.product);
  if (signed.account) set(IDENTITY_HEADERS.account, signed.account);
  if (signed.user) set(IDENTITY_HEADERS.user, signed.user);
  if (signed.keyId) set(IDENTITY_HEADERS.keyId, signed.keyId);
  set("X-Request-Id", request.requestId);
  set(IDENTITY_HEADERS.timestamp, String(signed.timestamp));
  set(IDENTITY_HEADERS.signature, await signIdentity(settings.ORIGIN_SIGNING_SECRET, signed));
}
