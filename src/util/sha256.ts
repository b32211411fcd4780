import { toHex } from "./hex";
import { utf8 } from "./utf8";

/** Hex SHA-256 of a string (no async step of its own: a key's hash is taken on every keyed request). */
export function sha256Hex(text: string): Promise<string> {
  return crypto.subtle.digest("SHA-256", utf8(text)).then(toHex);
}
