import { derToRawSignature } from "./ecdsa-der";
import { importScannerKey, scannerKey } from "./scanner-keys";

/**
 * Whether `body` (the raw bytes, before any parsing) carries a valid signature of the
 * scanning program: base64 DER ECDSA P-256 SHA-256 by the key its document lists under
 * `identifier`. Throws ScannerKeysUnavailable when the document cannot be read.
 */
export async function verifyScannerSignature(
  body: ArrayBuffer,
  identifier: string | undefined,
  signature: string | undefined,
  keysUrl: string,
  cooldownSeconds: number,
): Promise<boolean> {
  if (!identifier || !signature || identifier.length > 200 || signature.length > 200) return false;
  let der: Uint8Array;
  try {
    der = Uint8Array.from(atob(signature.trim()), (ch) => ch.charCodeAt(0));
  } catch {
    return false;
  }
  const raw = derToRawSignature(der);
  if (!raw) return false;
  const pem = await scannerKey(keysUrl, identifier, cooldownSeconds);
  const key = pem && (await importScannerKey(pem));
  if (!key) return false;
  return crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key, raw, body);
}
