import { inject } from "vitest";
import { call } from "../helpers";

/**
 * A secret-scanning program as zgate sees it: its own P-256 keys, published as a key
 * document on the test scanner host (test/node/scanner-host.ts), signing reports the way
 * GitHub and GitLab do (base64 DER ECDSA over the raw body), and the leak webhook's
 * deliveries for this program's deployment.
 */
const host = inject("scannerHost");

export interface ProgramKey {
  id: string;
  pem: string;
  privateKey: CryptoKey;
}

export async function programKey(id = `key-${crypto.randomUUID()}`): Promise<ProgramKey> {
  const pair = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])) as CryptoKeyPair;
  const spki = new Uint8Array((await crypto.subtle.exportKey("spki", pair.publicKey)) as ArrayBuffer);
  const b64 = btoa(String.fromCharCode(...spki));
  return {
    id,
    pem: `-----BEGIN PUBLIC KEY-----\n${b64.match(/.{1,64}/g)!.join("\n")}\n-----END PUBLIC KEY-----\n`,
    privateKey: pair.privateKey,
  };
}

/** WebCrypto's raw r||s as the DER SEQUENCE of two INTEGERs the programs send. */
function rawToDer(raw: Uint8Array): Uint8Array {
  const integer = (bytes: Uint8Array) => {
    let i = 0;
    while (i < bytes.length - 1 && bytes[i] === 0) i++;
    const value = bytes[i]! & 0x80 ? Uint8Array.of(0, ...bytes.subarray(i)) : bytes.subarray(i);
    return Uint8Array.of(0x02, value.length, ...value);
  };
  const r = integer(raw.subarray(0, 32));
  const s = integer(raw.subarray(32));
  return Uint8Array.of(0x30, r.length + s.length, ...r, ...s);
}

export async function sign(key: ProgramKey, body: string): Promise<string> {
  const raw = new Uint8Array(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key.privateKey, new TextEncoder().encode(body)));
  return btoa(String.fromCharCode(...rawToDer(raw)));
}

/** One program's slot on the scanner host: its key document, its fetch count, the webhook's deliveries. */
export function program(name = crypto.randomUUID()) {
  return {
    keysUrl: `${host}/keys/${name}`,
    webhookUrl: `${host}/hooks/${name}`,
    publish: (keys: ProgramKey[]) =>
      fetch(`${host}/keys/${name}`, {
        method: "PUT",
        body: JSON.stringify({ public_keys: keys.map((k, i) => ({ key_identifier: k.id, key: k.pem, is_current: i === 0 })) }),
      }),
    fetches: async () => ((await (await fetch(`${host}/__fetches/${name}`)).json()) as { fetches: number }).fetches,
    failWebhook: (fail: number) => fetch(`${host}/__fail/${name}`, { method: "PUT", body: JSON.stringify({ fail }) }),
    deliveries: async () =>
      ((await (await fetch(`${host}/__hooks/${name}`)).json()) as { deliveries: { headers: Record<string, string>; body: string }[] })
        .deliveries,
  };
}

/** Posts a signed report to a partner endpoint, as the program would. */
export async function report(
  path: "github" | "gitlab",
  key: ProgramKey,
  body: string,
  settings: Record<string, unknown>,
  tamper?: (body: string) => string,
): Promise<Response> {
  const prefix = path === "github" ? "Github" : "Gitlab";
  return call(`/security/v1/secret-scanning/${path}`, {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      [`${prefix}-Public-Key-Identifier`]: key.id,
      [`${prefix}-Public-Key-Signature`]: await sign(key, body),
    },
    body: tamper ? tamper(body) : body,
    settings,
  });
}
