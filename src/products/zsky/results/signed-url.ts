import { requireFeature, type Settings } from "../../../config/settings";
import { toHex } from "../../../util/hex";
import { hmacKey } from "../../../util/hmac";
import { utf8 } from "../../../util/utf8";

/**
 * zgate-signed download URLs for ZSky results:
 *   <base>/v1/results/<job_id>?account=<account>&key=<api key id>&expires=<unix s>&kid=<signing key id>&sig=<hex>
 * sig = HMAC-SHA256(key[kid], "GET\n<path>\n<expires>\n<kid>\n<account>\n<api key id>"). The
 * account names where the result lives in R2, so a download needs no record of the job;
 * the API key is the one whose poll issued the link, so a security team can refuse every
 * link a key was handed (its account's guard keeps when; download.ts asks). A link that
 * does not name both is invalid, whatever its signature. The signing key id lets the
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

/** The issuer of a link: where its result lives, and the API key that polled it. */
export interface LinkIssuer {
  account: string;
  keyId: string;
}

const payload = (method: string, path: string, expires: number, kid: string, issuer: LinkIssuer) =>
  utf8(`${method}\n${path}\n${expires}\n${kid}\n${issuer.account}\n${issuer.keyId}`);

export const resultPath = (jobId: string) => `/v1/results/${encodeURIComponent(jobId)}`;

/** A download URL for the job `jobId` of `issuer`'s account, valid RESULT_URL_SECONDS from `now` (ms). `base` is scheme + host + any local prefix. */
export async function signResultUrl(settings: Settings, base: string, issuer: LinkIssuer, jobId: string, now: number): Promise<string> {
  const { current, keys } = signingKeys(settings);
  const expires = Math.floor(now / 1000) + RESULT_URL_SECONDS;
  const path = resultPath(jobId);
  const mac = await crypto.subtle.sign("HMAC", await hmacKey(keys[current]!), payload("GET", path, expires, current, issuer));
  const sig = toHex(mac);
  const who = `account=${encodeURIComponent(issuer.account)}&key=${encodeURIComponent(issuer.keyId)}`;
  return `${base}${path}?${who}&expires=${expires}&kid=${current}&sig=${sig}`;
}

/** When a link was issued (ms, to the second): its expiry less its life. For a link checkResultUrl found valid. */
export const linkIssuedAt = (query: URLSearchParams) => (Number(query.get("expires")) - RESULT_URL_SECONDS) * 1000;

/** A valid link names its issuer. */
export type UrlCheck = { check: "valid"; issuer: LinkIssuer } | { check: "invalid" | "expired" };

/** Signature first (so an edited expiry or account reads as tampering), then expiry. HEAD is checked as GET. */
export async function checkResultUrl(settings: Settings, path: string, query: URLSearchParams, now: number): Promise<UrlCheck> {
  const { keys } = signingKeys(settings);
  const expires = Number(query.get("expires"));
  const kid = query.get("kid") ?? "";
  const sig = query.get("sig") ?? "";
  const account = query.get("account");
  const keyId = query.get("key");
  if (account === null || keyId === null) return { check: "invalid" };
  const issuer = { account, keyId };
  const secret = Object.hasOwn(keys, kid) ? keys[kid] : undefined;
  if (!secret || !Number.isSafeInteger(expires) || !/^(?:[0-9a-f]{2}){32}$/.test(sig)) return { check: "invalid" };
  const mac = new Uint8Array(sig.match(/../g)!.map((h) => parseInt(h, 16)));
  const ok = await crypto.subtle.verify("HMAC", await hmacKey(secret), mac, payload("GET", path, expires, kid, issuer));
  if (!ok) return { check: "invalid" };
  return now >= expires * 1000 ? { check: "expired" } : { check: "valid", issuer };
}
