import { toHex } from "./hex";
import { utf8 } from "./utf8";

/** Hex SHA-256 of a string. */
export async function sha256Hex(text: string): Promise<string> {
  return toHex(await crypto.subtle.digest("SHA-256", utf8(text)));
}
