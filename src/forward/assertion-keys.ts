import { base64url } from "jose";
import { z } from "zod";
import { jsonText } from "../config/setting-types";

/**
 * The gateway's origin-assertion keys (docs/origin-signature.md): Ed25519 private keys,
 * `ORIGIN_ASSERTION_KEYS` = `{"<kid>": "<32-byte seed, base64url>"}` (a JWK's `d`; the
 * public half, `x`, is derived here, so the two can never disagree). Every key listed is
 * published at `/.well-known/jwks.json`; each product's `<ID>_ASSERTION_KID` picks the one
 * that signs its assertions. Plain WebCrypto: `npm run jwks` and the tests' setup run this
 * same module under Node.
 */
export const assertionKeysSetting = jsonText.pipe(
  z
    .record(
      z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, "each kid must be 1-32 letters, digits, _ or -"),
      z
        .string()
        .regex(
          /^[A-Za-z0-9_-]{43}$/,
          "each key must be an Ed25519 private key: 32 bytes, base64url (`npm run jwks -- --add-key FILE` makes one)",
        ),
    )
    .refine((keys) => Object.keys(keys).length > 0, "must list at least one key"),
);

/** How long a verifier may cache the published keys: the `max-age` of `/.well-known/jwks.json`. */
export const JWKS_MAX_AGE_SECONDS = 300;

/** A public key as published: the JWK an origin's JWT library verifies with. */
export interface PublishedKey {
  kty: "OKP";
  crv: "Ed25519";
  x: string;
  kid: string;
  alg: "EdDSA";
  use: "sig";
}

export interface AssertionKey {
  kid: string;
  privateKey: CryptoKey;
  published: PublishedKey;
}

// An Ed25519 PKCS #8 document is this fixed prefix and the 32-byte seed (RFC 8410).
const PKCS8_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);

async function importKey(kid: string, seed: string): Promise<AssertionKey> {
  const pkcs8 = new Uint8Array(PKCS8_PREFIX.length + 32);
  pkcs8.set(PKCS8_PREFIX);
  pkcs8.set(base64url.decode(seed), PKCS8_PREFIX.length);
  // Extractable only for this one export of the public half; the signing key is not.
  const exported = (await crypto.subtle.exportKey(
    "jwk",
    await crypto.subtle.importKey("pkcs8", pkcs8, "Ed25519", true, ["sign"]),
  )) as JsonWebKey;
  const x = exported.x!;
  const privateKey = await crypto.subtle.importKey("jwk", { kty: "OKP", crv: "Ed25519", x, d: seed }, "Ed25519", false, ["sign"]);
  return { kid, privateKey, published: { kty: "OKP", crv: "Ed25519", x, kid, alg: "EdDSA", use: "sig" } };
}

// Imported once per isolate and key set (the parsed setting's object).
const imported = new WeakMap<Record<string, string>, Promise<Map<string, AssertionKey>>>();
// The same keys once imported, for the signing path to take with no async step (assertionKeysNow).
const ready = new WeakMap<Record<string, string>, Map<string, AssertionKey>>();

/** Every key of a parsed `ORIGIN_ASSERTION_KEYS`, by kid, imported once. */
export function assertionKeys(keys: Record<string, string>): Promise<Map<string, AssertionKey>> {
  let found = imported.get(keys);
  if (!found) {
    found = Promise.all(Object.entries(keys).map(([kid, seed]) => importKey(kid, seed))).then((list) => {
      const byKid = new Map(list.map((k) => [k.kid, k]));
      ready.set(keys, byKid);
      return byKid;
    });
    imported.set(keys, found);
  }
  return found;
}

/** assertionKeys' answer when it is already there (every origin request after the isolate's first), else undefined. */
export function assertionKeysNow(keys: Record<string, string>): Map<string, AssertionKey> | undefined {
  return ready.get(keys);
}

/** The JWK Set origins verify with: every listed key's public half, nothing secret. */
export async function publishedKeys(keys: Record<string, string>): Promise<{ keys: PublishedKey[] }> {
  return { keys: [...(await assertionKeys(keys)).values()].map((k) => k.published) };
}

/** A new key for `ORIGIN_ASSERTION_KEYS`: a random Ed25519 seed, base64url. */
export function newAssertionKey(): string {
  return base64url.encode(crypto.getRandomValues(new Uint8Array(32)));
}
