// Verifying zgate's assertion at an origin, with jose: docs/origin-signature.md. TypeScript
// for Node 22.6+ (type stripping), Deno, Bun or Workers: WebCrypto only; `npm install jose`.
//
//   import { Refused, zgateVerifier } from "./zgate_verify.ts";
//   const verify = zgateVerifier({
//     keys: new URL("https://gateway.example.com/.well-known/jwks.json"),   // or the JWK Set `npm run jwks` exported
//     audience: "zsky",                                   // this origin's product id
//     origin: "https://origin-zsky.example.com",           // this origin's ORIGIN_<ID>, as zgate calls it
//   });
//   const identity = await verify({ method, target: rawPathAndQuery, assertion: headers["x-zgate-assertion"], body });
//   // throws Refused: answer 401 in the platform's envelope and log `reason`, never the assertion
import { createLocalJWKSet, createRemoteJWKSet, jwtVerify, type JSONWebKeySet, type JWTPayload } from "jose";

export const SKEW_SECONDS = 30;

export class Refused extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

/** RFC 9530 digest of some bytes: `sha-256=:<base64>:`. */
async function digest(bytes: Uint8Array | string): Promise<string> {
  const data = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>));
  return `sha-256=:${btoa(String.fromCharCode(...hash))}:`;
}

/** Where accepted `jti`s are remembered: `firstUse` is true the first time, false for a replay. */
export interface ReplayGuard {
  firstUse(jti: string, untilSeconds: number, nowSeconds: number): boolean | Promise<boolean>;
}

/**
 * Assertion ids seen and not yet expired, in this process. An origin on several processes
 * needs one shared store instead: Redis `SET <jti> 1 NX EXAT <exp + 30>` is the same check.
 */
export function memoryReplayGuard(): ReplayGuard {
  const seen = new Map<string, number>();
  return {
    firstUse(jti, until, now) {
      // Oldest first (a Map keeps insertion order, and ids come about in the order they
      // expire): stop at the first live one, rather than read every id of the last 90 s on
      // every request.
      for (const [old, expires] of seen) {
        if (expires >= now) break;
        seen.delete(old);
      }
      if (seen.has(jti)) return false;
      seen.set(jti, until);
      return true;
    },
  };
}

export interface Received {
  method: string;
  /** The raw path and query of the request line, still percent-encoded. */
  target: string;
  assertion: string | null | undefined;
  body?: Uint8Array | null;
  now?: Date;
}

export interface Identity {
  /** The key id for a key, the user id for a session; absent on a public route. */
  subject?: string;
  account?: string;
  user?: string;
  keyId?: string;
  requestId: string;
  jti: string;
}

type Claims = JWTPayload & { account?: string; user?: string; key_id?: string; request_id?: string };

export function zgateVerifier(options: {
  keys: URL | JSONWebKeySet;
  audience: string;
  /** This origin's URL as zgate calls it (`ORIGIN_<ID>`): `htu` is this and the path. */
  origin: string;
  replay?: ReplayGuard;
}): (request: Received) => Promise<Identity> {
  const { keys, audience, origin, replay = memoryReplayGuard() } = options;
  // A remote set is cached as long as the gateway says (5 minutes) and refetched on an unknown kid.
  const keySet = keys instanceof URL ? createRemoteJWKSet(keys, { cacheMaxAge: 300_000 }) : createLocalJWKSet(keys);
  return async ({ method, target, assertion, body, now = new Date() }) => {
    if (!assertion) throw new Refused("no assertion");
    let claims: Claims;
    try {
      ({ payload: claims } = await jwtVerify<Claims>(assertion, keySet, {
        algorithms: ["EdDSA"],
        typ: "zgate-assertion+jwt",
        issuer: "zgate",
        audience,
        clockTolerance: SKEW_SECONDS,
        maxTokenAge: 60, // with `iat` not ahead: an assertion lives 60 s, whatever its `exp` says
        currentDate: now,
        requiredClaims: ["iat", "exp", "jti", "htm", "htu", "query_digest", "content_digest", "request_id"],
      }));
    } catch (err) {
      // jose's code, and the claim that failed (`aud`: minted for another origin).
      const { code = "malformed", claim = "" } = err as { code?: string; claim?: string };
      throw new Refused(`invalid assertion: ${code}${claim ? ` (${claim})` : ""}`);
    }
    const at = target.indexOf("?");
    const [path, query] = at < 0 ? [target, ""] : [target.slice(0, at), target.slice(at + 1)];
    if (claims.htm !== method.toUpperCase()) throw new Refused("method does not match");
    if (claims.htu !== origin + path) throw new Refused("URL does not match");
    if (claims.query_digest !== (await digest(query))) throw new Refused("query does not match");
    if (claims.content_digest !== (await digest(body ?? new Uint8Array(0)))) throw new Refused("body does not match");
    const seconds = Math.floor(now.getTime() / 1000);
    if (!(await replay.firstUse(claims.jti!, claims.exp! + SKEW_SECONDS, seconds))) throw new Refused("replayed");
    return {
      subject: claims.sub,
      account: claims.account,
      user: claims.user,
      keyId: claims.key_id,
      requestId: claims.request_id!,
      jti: claims.jti!,
    };
  };
}
