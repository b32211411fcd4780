import type { Product } from "../products/types";

/** The credential a request presents, read the way its platform documents it. */
export type Credential =
  | { kind: "none" }
  | { kind: "jwt"; token: string }
  | { kind: "key"; secret: string }
  | { kind: "malformed" };

// Prefixes of zgate-issued keys; anything else that is not a JWT is treated as a key
// too, since keys imported from before zgate may have any shape.
const KEY_PREFIXES = ["zak_live_", "zak_test_", "zsky_live_", "zw_live_"];
const JWS_COMPACT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const BEARER = /^bearer[ \t]+(\S+)[ \t]*$/i;

/** Never from the query string: URLs end up in logs, histories and Referer headers. */
export function readCredential(headers: Headers, product: Product): Credential {
  let presented: string;
  if (product.credential === "x-api-key") {
    const value = headers.get("x-api-key")?.trim();
    if (!value) return { kind: "none" };
    presented = value;
  } else {
    const authorization = headers.get("authorization");
    if (authorization === null || authorization.trim() === "") return { kind: "none" };
    const match = BEARER.exec(authorization);
    if (!match) return { kind: "malformed" };
    presented = match[1]!;
  }
  if (product.acceptsJwt && !KEY_PREFIXES.some((p) => presented.startsWith(p)) && JWS_COMPACT.test(presented)) {
    return { kind: "jwt", token: presented };
  }
  return { kind: "key", secret: presented };
}
