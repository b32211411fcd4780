import { requireFeature, type Settings } from "../config/settings";
import { toHex } from "../util/hex";

/**
 * zgate-signed download URLs for ZSky results:
 *   <base>/v1/results/<job_id>?account=<account>&expires=<unix s>&kid=<key id>&sig=<hex>
 * sig = HMAC-SHA256(key[kid], "GET\n<path>\n<expires>\n<kid>\n<account>"). The account
 * names where the result lives in R2, so a download reads the object and nothing else
 * (a link signed before links carried it has no `account` and no last line). The key id lets the
 * signing key rotate without breaking live URLs (old keys stay listed for 24 h).
 * Verification is constant-time (`crypto.subtle.verify`). The path signed is the
 * product path (`/v1/results/<id>`), so a URL works on the product's host and under
 * the local `/zsky` prefix alike.
 */
export const RESULT_URL_SECONDS = 86_400;

interface SigningKeys {
  current: string;
  keys: Record<string, string>;
}

/** The configured keys (RESULT_SIGNING_KEYS, RESULT_SIGNING_KEY_ID), independent of the origin secret. */
function signingKeys(settings: Settings): SigningKeys {
  // Missing or bad keys turn result links off (503) rather than signing with anything else.
  requireFeature(settings, "result-links");
  // The schema requires both once the feature is on.
  return { current: settings.RESULT_SIGNING_KEY_ID!, keys: settings.RESULT_SIGNING_KEYS! };
}

async function hmacKey(secret: string): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
}

const payload = (method: string, path: string, expires: number, kid: string, account: string | null) =>
  new TextEncoder().encode(`${method}\n${path}\n${expires}\n${kid}${account === null ? "" : `\n${account}`}`);

export const resultPath = (jobId: string) => `/v1/results/${encodeURIComponent(jobId)}`;

/** A download URL for `accountId`'s job `jobId`, valid RESULT_URL_SECONDS from `now` (ms). `base` is scheme + host + any local prefix. */
export async function signResultUrl(settings: Settings, base: string, accountId: string, jobId: string, now: number): Promise<string> {
  const { current, keys } = signingKeys(settings);
  const expires = Math.floor(now / 1000) + RESULT_URL_SECONDS;
  const path = resultPath(jobId);
  const mac = await crypto.subtle.sign("HMAC", await hmacKey(keys[current]!), payload("GET", path, expires, current, accountId));
  const sig = toHex(mac);
  return `${base}${path}?account=${encodeURIComponent(accountId)}&expires=${expires}&kid=${current}&sig=${sig}`;
}

/** When a link was issued (ms, to the second): its expiry less its life. For a link checkResultUrl found valid. */
export const linkIssuedAt = (query: URLSearchParams) => (Number(query.get("expires")) - RESULT_URL_SECONDS) * 1000;

/** A valid link names the account whose result it opens (null for a link signed before links named it). */
export type UrlCheck = { check: "valid"; account: string | null } | { check: "invalid" | "expired" };

/** Signature first (so an edited expiry or account reads as tampering), then expiry. HEAD is checked as GET. */
export async function checkResultUrl(settings: Settings, path: string, query: URLSearchParams, now: number): Promise<UrlCheck> {
  const { keys } = signingKeys(settings);
  const expires = Number(query.get("expires"));
  const kid = query.get("kid") ?? "";
  const sig = query.get("sig") ?? "";
  const account = query.get("account");
  const secret = Object.hasOwn(keys, kid) ? keys[kid] : undefined;
  if (!secret || !Number.isSafeInteger(expires) || !/^(?:[0-9a-f]{2}){32}$/.test(sig)) return { check: "invalid" };
  const mac = new Uint8Array(sig.match(/../g)!.map((h) => parseInt(h, 16)));
  const ok = await crypto.subtle.verify("HMAC", await hmacKey(secret), mac, payload("GET", path, expires, kid, account));
  if (!ok) return { check: "invalid" };
  return now >= expires * 1000 ? { check: "expired" } : { check: "valid", account };
}
