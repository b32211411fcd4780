import { z } from "zod";

/**
 * The public keys a secret-scanning program signs its reports with, from its key
 * document (`{public_keys: [{key_identifier, key (PEM), is_current}]}`, GitHub's
 * `meta/public_keys/secret_scanning` shape), cached per isolate and URL. Anyone can send
 * a report with a made-up identifier, and each fetch spends the partner's unauthenticated
 * API allowance, so fetches are bounded whatever arrives:
 * - one fetch at a time per URL: concurrent reports wait for the same one;
 * - a document is fresh for KEYS_TTL_MS; an identifier it lacks fetches it again (a
 *   rotation) at most once per cooldown (JWKS_COOLDOWN_SECONDS) since the last attempt;
 * - after a failed fetch, none for FAILED_FETCH_COOLDOWN_MS (the 503's Retry-After);
 * - while fetches fail, the last document is still used for STALE_GRACE_MS past its
 *   freshness, so a partner's outage does not stop revocations; after that, 503.
 */
const KeyDocument = z.object({
  public_keys: z
    .array(z.object({ key_identifier: z.string().min(1).max(200), key: z.string().min(1).max(4000), is_current: z.boolean().optional() }))
    .max(50),
});

const KEYS_TTL_MS = 60 * 60 * 1000;
const STALE_GRACE_MS = 24 * 60 * 60 * 1000;
const FAILED_FETCH_COOLDOWN_MS = 60 * 1000;
const FETCH_TIMEOUT_MS = 5000;

interface CachedDocument {
  fetchedAt: number;
  keys: Map<string, string>;
}

/** One key document URL: its last good document and its fetches (URLs come from settings, so few). */
interface DocumentState {
  document: CachedDocument | null;
  /** When the last fetch started, and when the last one failed (ms), and why. */
  attemptedAt: number;
  failedAt: number;
  failure: string;
  inFlight: Promise<CachedDocument | null> | null;
}

const states = new Map<string, DocumentState>();

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

/** One fetch of the document, shared by every caller while it runs; a failure is logged once, here. */
function refresh(url: string, state: DocumentState): Promise<CachedDocument | null> {
  state.attemptedAt = Date.now();
  state.inFlight = fetchDocument(url)
    .then((document) => (state.document = document))
    .catch((err: Error) => {
      state.failedAt = Date.now();
      state.failure = err.message;
      console.error(JSON.stringify({ msg: "scanner_keys_fetch_failed", url, reason: err.message }));
      return null;
    })
    .finally(() => (state.inFlight = null));
  return state.inFlight;
}

/**
 * The PEM key for `identifier`, or null when the document (fetched again, if allowed)
 * does not list it. Throws ScannerKeysUnavailable when there is no usable document.
 */
export async function scannerKey(url: string, identifier: string, cooldownSeconds: number): Promise<string | null> {
  let state = states.get(url);
  if (!state) states.set(url, (state = { document: null, attemptedAt: -Infinity, failedAt: -Infinity, failure: "", inFlight: null }));
  const now = Date.now();
  const { document } = state;
  const wanted =
    !document ||
    now - document.fetchedAt >= KEYS_TTL_MS ||
    (!document.keys.has(identifier) && now - state.attemptedAt >= cooldownSeconds * 1000);
  if (wanted && state.inFlight) await state.inFlight;
  else if (wanted && now - state.failedAt >= FAILED_FETCH_COOLDOWN_MS) await refresh(url, state);
  const usable = state.document && Date.now() - state.document.fetchedAt < KEYS_TTL_MS + STALE_GRACE_MS ? state.document : null;
  if (!usable) throw new ScannerKeysUnavailable(state.failure || "key document unavailable");
  return usable.keys.get(identifier) ?? null;
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
