import { keyPrefixOf } from "../keys/key-format";
import type { Product } from "../products/types";

/** The credential a request presents, read the way its platform documents it. */
export type Credential = { kind: "none" } | { kind: "jwt"; token: string } | { kind: "key"; secret: string } | { kind: "malformed" };

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
  // Anything with a key prefix, or that is not a JWT, is a key: keys imported from before
  // zgate may have any shape.
  if (product.acceptsJwt && keyPrefixOf(presented) === undefined && JWS_COMPACT.test(presented)) {
    return { kind: "jwt", token: presented };
  }
  return { kind: "key", secret: presented };
}
