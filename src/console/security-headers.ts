import { pageSecurityHeaders } from "../http/security-headers";

/**
 * On every console response, errors included: no script at all (the console needs
 * none), styles only from its own stylesheet, forms only back to this origin, never
 * framed (clickjacking of the revoke buttons), never cached (key records, plaintext of
 * a rolled key) and no Referer carrying a key id to another site.
 */
export const CONSOLE_CSP =
  "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export const consoleSecurityHeaders = pageSecurityHeaders(CONSOLE_CSP, { "Cache-Control": "no-store" });
