import { fromRegistry, productById } from "../products/index";
import type { ProductId } from "../products/types";
import { crc32 } from "../util/crc32";
import { sha256Hex } from "../util/sha256";
import { utf8 } from "../util/utf8";

/**
 * zgate key format: `<prefix>` + 30 base62 characters of randomness (~178 bits) + a
 * 6-character base62 CRC32 of everything before it. The checksum lets the edge refuse
 * a mistyped or made-up key without touching storage, and lets secret scanners
 * recognise a real key with few false positives.
 */
export type KeyPrefix = string;

/** Every prefix zgate issues, with its product and mode, from the registered products' `keyPrefixes`. */
export const keyPrefixes = fromRegistry((products): Readonly<Record<KeyPrefix, { product: ProductId; mode: "live" | "test" }>> =>
  Object.fromEntries(
    products.flatMap((p) => [
      [p.keyPrefixes.live, { product: p.id, mode: "live" as const }],
      ...(p.keyPrefixes.test ? [[p.keyPrefixes.test, { product: p.id, mode: "test" as const }]] : []),
    ]),
  ),
);

/** The prefix of a new key of `product` in `mode`; undefined where the product has no such mode. */
export function prefixFor(product: ProductId, mode: "live" | "test" = "live"): KeyPrefix | undefined {
  return productById(product)?.keyPrefixes[mode];
}

const RANDOM_LENGTH = 30;
const CHECKSUM_LENGTH = 6;
const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** Uniform base62 from CSPRNG bytes (rejection sampling: no modulo bias). */
export function randomBase62(length: number): string {
  let out = "";
  while (out.length < length) {
    for (const byte of crypto.getRandomValues(new Uint8Array(length * 2))) {
      if (byte < 248 && out.length < length) out += BASE62[byte % 62];
    }
  }
  return out;
}

function checksum(body: string): string {
  let n = crc32(utf8(body));
  let out = "";
  for (let i = 0; i < CHECKSUM_LENGTH; i++) {
    out = BASE62[n % 62] + out;
    n = Math.floor(n / 62);
  }
  return out;
}

export function generateKey(prefix: KeyPrefix): string {
  const body = prefix + randomBase62(RANDOM_LENGTH);
  return body + checksum(body);
}

/** The prefixes alone, listed once per registry: a keyed request looks its key's up. */
const prefixList = fromRegistry((): readonly KeyPrefix[] => Object.keys(keyPrefixes()));

export function keyPrefixOf(secret: string): KeyPrefix | undefined {
  // A loop, not `find` with a callback: asked twice on every keyed request.
  for (const prefix of prefixList()) if (secret.startsWith(prefix)) return prefix;
  return undefined;
}

/** `test` for a key of a platform's test mode (sent to its test origin), else `live`. */
export const keyModeOf = (secret: string): "live" | "test" => keyPrefixes()[keyPrefixOf(secret) ?? ""]?.mode ?? "live";

const WELL_FORMED = new RegExp(`^[0-9A-Za-z]{${RANDOM_LENGTH + CHECKSUM_LENGTH}}$`);

/**
 * The regular expression of each prefix's keys, for registering with secret-scanning
 * programs (README lists them): the prefix, then 30 random and 6 checksum base62 characters.
 */
export const keyPatterns = (): Readonly<Record<KeyPrefix, string>> =>
  Object.fromEntries(
    Object.keys(keyPrefixes()).map((prefix) => [prefix, `\\b${prefix}[0-9A-Za-z]{${RANDOM_LENGTH + CHECKSUM_LENGTH}}\\b`]),
  );

/**
 * `valid`: a zgate key whose checksum holds. `malformed`: it has exactly the shape of a
 * zgate key but its checksum fails (a mistyped character), so it cannot exist and is
 * refused with no storage read. `foreign`: any other shape, known only by hash lookup:
 * keys from before zgate, including the platforms' own `zsky_live_…` keys of other
 * lengths, which must keep working once imported.
 */
export function classifyKey(secret: string): "valid" | "malformed" | "foreign" {
  const prefix = keyPrefixOf(secret);
  if (!prefix || !WELL_FORMED.test(secret.slice(prefix.length))) return "foreign";
  const body = secret.slice(0, -CHECKSUM_LENGTH);
  return checksum(body) === secret.slice(-CHECKSUM_LENGTH) ? "valid" : "malformed";
}

/**
 * Why a plaintext key cannot be imported, or null when it can. A zgate-shaped key with a
 * bad checksum would be refused at the edge forever; a valid one is zgate's own to issue
 * (and may sit in an isolate's cache of unknown keys, so importing it would not take
 * effect at once everywhere).
 */
export function importRefusal(secret: string): string | null {
  switch (classifyKey(secret)) {
    case "malformed":
      return "import_key: has the shape of a zgate key but its checksum does not match, so it could never be used";
    case "valid":
      return "import_key: is a zgate-issued key; create a new key instead of importing one";
    default:
      return null;
  }
}

/** Hex SHA-256 of a key: the only form in which a key is ever stored. */
export const hashKey = (secret: string) => sha256Hex(secret);
