import { z } from "zod";

/**
 * The public keys a secret-scanning program signs its reports with, from its key
 * document (`{public_keys: [{key_identifier, key (PEM), is_current}]}`, GitHub's
 * `meta/public_keys/secret_scanning` shape). Cached per isolate and URL for KEYS_TTL_MS;
 * an identifier the cached document lacks fetches it again (a rotation), at most once per
 * cooldown, so made-up identifiers cannot turn each report into a fetch.
 */
const KeyDocument = z.object({
  public_keys: z
    .array(z.object({ key_identifier: z.string().min(1).max(200), key: z.string().min(1).max(4000), is_current: z.boolean().optional() }))
    .max(50),
});

const KEYS_TTL_MS = 60 * 60 * 1000;
const FETCH_TIMEOUT_MS = 5000;

interface CachedDocument {
  fetchedAt: number;
  keys: Map<string, string>;
}

const documents = new Map<string, CachedDocument>();

export class ScannerKeysUnavailable extends Error {}

async function fetchDocument(url: string): Promise<CachedDocument> {
  let body: unknown;
  try {
    const response = await fetch(url, { headers: { Accept: "application/json" }, signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
    if (!response.ok) throw new Error(`status ${response.status}`);
    body = await response.json();
  } catch (err) {
    throw new ScannerKeysUnavailable(`key document unavailable: ${(err as Error).message}`);
  }
  const parsed = KeyDocument.safeParse(body);
  if (!parsed.success) throw new ScannerKeysUnavailable("key document malformed");
  return { fetchedAt: Date.now(), keys: new Map(parsed.data.public_keys.map((k) => [k.key_identifier, k.key])) };
}

/** The PEM key for `identifier`, or null when the (refetched, if allowed) document does not list it. */
export async function scannerKey(url: string, identifier: string, cooldownSeconds: number): Promise<string | null> {
  const now = Date.now();
  let cached = documents.get(url);
  const refetchAllowed = !cached || now - cached.fetchedAt >= cooldownSeconds * 1000;
  if (!cached || now - cached.fetchedAt >= KEYS_TTL_MS || (!cached.keys.has(identifier) && refetchAllowed)) {
    cached = await fetchDocument(url);
    documents.set(url, cached);
  }
  return cached.keys.get(identifier) ?? null;
}

/** A PEM `PUBLIC KEY` (SPKI) as a P-256 verification key; null when it is not one. */
export async function importScannerKey(pem: string): Promise<CryptoKey | null> {
  const b64 = /-----BEGIN PUBLIC KEY-----([\s\S]+?)-----END PUBLIC KEY-----/.exec(pem)?.[1]?.replace(/\s+/g, "");
  if (!b64) return null;
  try {
    const der = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
    return await crypto.subtle.importKey("spki", der, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
  } catch {
    return null;
  }
}
