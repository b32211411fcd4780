import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from "jose";
import type { Settings } from "../config/settings";
import { GatewayError } from "../http/errors";
import { Lru } from "../util/lru";
import * as clock from "../util/clock";
import { sha256Hex } from "../util/sha256";

/** Claims zgate relies on in a ZakGT access token. */
export interface AccessClaims {
  sub: string;
  jti: string;
  iat: number;
  exp: number;
  /** The account tier, when the token names one in ZAKGT_TIER_CLAIM (lower-cased). */
  tier?: string;
}

type KeySource = ReturnType<typeof createRemoteJWKSet>;

// One JWKS client per URL per isolate: jose caches the key set, refetches when a
// token names an unknown `kid`, and holds off refetching for the cooldown so a flood
// of tokens with made-up `kid`s cannot turn into a flood of JWKS requests.
const keySets = new Map<string, KeySource>();

export function remoteKeySet(url: string, cooldownSeconds: number): KeySource {
  let source = keySets.get(url);
  if (!source) {
    source = createRemoteJWKSet(new URL(url), {
      cooldownDuration: cooldownSeconds * 1000,
      cacheMaxAge: 10 * 60 * 1000,
      timeoutDuration: 5000,
    });
    keySets.set(url, source);
  }
  return source;
}

function keySource(settings: Settings): KeySource | Uint8Array {
  const url = settings.ZAKGT_JWKS_URL;
  if (!url) return new TextEncoder().encode(settings.ZAKGT_JWT_SECRET);
  return remoteKeySet(url, settings.JWKS_COOLDOWN_SECONDS);
}

interface Verified {
  claims: AccessClaims;
  /** ms: until when the claims may be reused without verifying the signature again. */
  reuseUntil: number;
  /** ms: `exp` plus the allowed skew. */
  expiresAt: number;
}

// Verified tokens per settings (issuer, audience and keys differ between deployments'
// settings), keyed by the token's SHA-256 so no token is held in memory longer than its
// request. A cached verdict is reused for at most a minute, so a key withdrawn from the
// JWKS stops being honoured soon; revocation never depends on it (the guard checks every
// request).
const verified = new WeakMap<Settings, Lru<string, Verified>>();
const REUSE_MS = 60_000;

/**
 * Verifies a ZakGT access token: signature (JWKS, or HS256 in development), `exp`,
 * `nbf`, `iss`, `aud` with the configured clock skew. Bad tokens are 401 with the
 * product's message; an unreachable key set is 503 (the caller is not at fault).
 */
export async function verifyAccessToken(token: string, settings: Settings, invalidMessage: string): Promise<AccessClaims> {
  let cache = verified.get(settings);
  if (!cache) verified.set(settings, (cache = new Lru(10_000)));
  const id = await sha256Hex(token);
  const now = clock.now();
  const hit = cache.get(id);
  if (hit && now < hit.reuseUntil) {
    if (now >= hit.expiresAt) throw new GatewayError("UNAUTHORIZED", "Access token expired");
    return hit.claims;
  }
  const claims = await verifySignature(token, settings, invalidMessage, now);
  const expiresAt = (claims.exp + settings.JWT_CLOCK_SKEW_SECONDS) * 1000;
  cache.set(id, { claims, expiresAt, reuseUntil: Math.min(now + REUSE_MS, expiresAt) });
  return claims;
}

async function verifySignature(token: string, settings: Settings, invalidMessage: string, now: number): Promise<AccessClaims> {
  const source = keySource(settings);
  let payload: JWTPayload;
  try {
    const options = {
      issuer: settings.ZAKGT_JWT_ISSUER,
      audience: settings.ZAKGT_JWT_AUDIENCE,
      clockTolerance: settings.JWT_CLOCK_SKEW_SECONDS,
      currentDate: new Date(now),
      requiredClaims: ["sub", "exp", "iat", "jti"],
      algorithms: source instanceof Uint8Array ? ["HS256"] : ["ES256", "RS256", "EdDSA"],
    };
    ({ payload } = source instanceof Uint8Array ? await jwtVerify(token, source, options) : await jwtVerify(token, source, options));
  } catch (err) {
    if (err instanceof errors.JWTExpired) throw new GatewayError("UNAUTHORIZED", "Access token expired");
    // Every verdict on the token itself is a JOSEError. Anything else (a network error,
    // a timeout, a non-200 or unparsable key set, which jose reports as the generic
    // JOSEError) means the key set could not be had: retry later, do not blame the token.
    if (err instanceof errors.JWKSTimeout || !(err instanceof errors.JOSEError) || err.code === "ERR_JOSE_GENERIC") {
      throw new GatewayError("SERVICE_UNAVAILABLE", "Unable to verify credentials right now", { "Retry-After": "5" });
    }
    throw new GatewayError("UNAUTHORIZED", invalidMessage);
  }
  return usableClaims(payload, settings, invalidMessage, now);
}

/**
 * The claims zgate acts on, checked for type and time: jose checks `exp`/`nbf` but not
 * that `sub`/`jti` are strings, and lets `iat` lie in the future. A token "issued" after
 * now would outlive a revoke-all-sessions epoch set today, so it is refused.
 */
function usableClaims(payload: JWTPayload, settings: Settings, invalidMessage: string, now: number): AccessClaims {
  const { sub, jti, iat, exp } = payload;
  const nowSeconds = now / 1000;
  const typed =
    typeof sub === "string" && sub !== "" && typeof jti === "string" && jti !== "" && typeof iat === "number" && typeof exp === "number";
  if (!typed || !Number.isFinite(iat) || iat > nowSeconds + settings.JWT_CLOCK_SKEW_SECONDS) {
    throw new GatewayError("UNAUTHORIZED", invalidMessage);
  }
  return { sub, jti, iat, exp, tier: tierOf(payload[settings.ZAKGT_TIER_CLAIM]) };
}

/** A tier claim names a plan: a short string, compared lower-cased; any other value is no tier (the default limits). */
function tierOf(claim: unknown): string | undefined {
  return typeof claim === "string" && /^[A-Za-z0-9_-]{1,50}$/.test(claim) ? claim.toLowerCase() : undefined;
}
