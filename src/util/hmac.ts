import { utf8 } from "./utf8";

// Imported once per secret: the secrets are deployment settings (a handful), and an import
// is a call into the runtime on every request that signs or checks a signature.
const keys = new Map<string, Promise<CryptoKey>>();

/** An HMAC-SHA-256 key for a secret, to sign and verify with. */
export function hmacKey(secret: string): Promise<CryptoKey> {
  let key = keys.get(secret);
  if (!key) {
    key = crypto.subtle.importKey("raw", utf8(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
    keys.set(secret, key);
  }
  return key;
}
