import { toHex } from "../util/hex";

/**
 * Signs the identity headers zgate adds for an origin, so an origin can trust them
 * without re-verifying the caller. Both sides build the same canonical string:
 *
 *   zgate-v1 \n <timestamp> \n <METHOD> \n <path?query> \n <product> \n <account>
 *            \n <user> \n <key id> \n <request id>
 *
 * and `X-Zgate-Signature: v1=<hex HMAC-SHA256(ORIGIN_SIGNING_SECRET, canonical)>`.
 * Method and path are included so a captured header set cannot be replayed against
 * another endpoint; the timestamp bounds replay in time. Origins should refuse a
 * timestamp more than 5 minutes away from their clock. (Plain WebCrypto: the local
 * origin simulators import this same module under Node.)
 */
export interface SignedIdentity {
  timestamp: number;
  method: string;
  pathAndQuery: string;
  product: string;
  account: string;
  user: string;
  keyId: string;
  requestId: string;
}

export const IDENTITY_HEADERS = {
  product: "X-Zgate-Product",
  account: "X-Zgate-Account",
  user: "X-Zgate-User",
  keyId: "X-Zgate-Key-Id",
  timestamp: "X-Zgate-Timestamp",
  signature: "X-Zgate-Signature",
} as const;

export const MAX_SIGNATURE_AGE_SECONDS = 300;

function canonical(s: SignedIdentity): string {
  return ["zgate-v1", s.timestamp, s.method.toUpperCase(), s.pathAndQuery, s.product, s.account, s.user, s.keyId, s.requestId].join("\n");
}

const keys = new Map<string, Promise<CryptoKey>>();

function hmacKey(secret: string): Promise<CryptoKey> {
  let key = keys.get(secret);
  if (!key) {
    key = crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
      "sign",
      "verify",
    ]);
    keys.set(secret, key);
  }
  return key;
}

function fromHex(hex: string): Uint8Array<ArrayBuffer> | null {
  if (!/^(?:[0-9a-f]{2})+$/.test(hex)) return null;
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

export async function signIdentity(secret: string, identity: SignedIdentity): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", await hmacKey(secret), new TextEncoder().encode(canonical(identity)));
  return `v1=${toHex(mac)}`;
}

/** Origin side: true only for a fresh, untampered header set. `subtle.verify` compares in constant time. */
export async function verifyIdentitySignature(
  secret: string,
  identity: SignedIdentity,
  signature: string,
  nowSeconds = Math.floor(Date.now() / 1000),
): Promise<boolean> {
  if (Math.abs(nowSeconds - identity.timestamp) > MAX_SIGNATURE_AGE_SECONDS) return false;
  const mac = signature.startsWith("v1=") ? fromHex(signature.slice(3)) : null;
  if (!mac) return false;
  return crypto.subtle.verify("HMAC", await hmacKey(secret), mac, new TextEncoder().encode(canonical(identity)));
}
