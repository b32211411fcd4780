/**
 * Helpers shared by the local origin simulators. The simulators stand in for the three
 * upstream platforms in development and tests; they are not part of the gateway.
 */
import type { JSONWebKeySet } from "jose";
import { zgateVerifier, type Identity } from "../examples/origin-verify/zgate_verify";

export type Handler = (request: Request) => Promise<Response>;

export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });
}

export type GatewayIdentity = Identity;

/** How a simulator trusts the gateway: its public keys (the JWK Set `/.well-known/jwks.json` serves) and its own product id. */
export interface GatewayTrust {
  assertionKeys: JSONWebKeySet;
  audience: string;
}

/**
 * What a real origin does with zgate's assertion (examples/origin-verify/zgate_verify.ts,
 * the example origins copy): trusts it only when a key the gateway publishes signed it for
 * this origin (`aud`), for this very request (method, URL, query, body), within its 60 s,
 * and only once (`jti`). The origin's own URL is the name the request addressed it by (its
 * Host): a simulator stands for an origin under every name a test gives it (a test origin).
 */
export function gatewayTrust({ assertionKeys, audience }: GatewayTrust): (request: Request) => Promise<GatewayIdentity | null> {
  const verifiers = new Map<string, ReturnType<typeof zgateVerifier>>();
  return async (request) => {
    const url = new URL(request.url);
    const origin = `${url.protocol}//${request.headers.get("host") ?? url.host}`;
    let verify = verifiers.get(origin);
    if (!verify) verifiers.set(origin, (verify = zgateVerifier({ keys: assertionKeys, audience, origin })));
    const body = new Uint8Array(await request.clone().arrayBuffer());
    const target = url.pathname + url.search;
    return verify({ method: request.method, target, assertion: request.headers.get("x-zgate-assertion"), body }).catch(() => null);
  };
}

/**
 * Test hooks every simulator honours: `X-Sim-Delay-Ms` answers late (origin timeouts),
 * `X-Sim-Echo: 1` answers with what the origin received (header hygiene checks),
 * `X-Sim-Fail: <status>` answers that error status (origin refusals).
 */
export function withSimulatorHooks(handler: Handler): Handler {
  return async (request) => {
    const delay = Number(request.headers.get("x-sim-delay-ms") ?? 0);
    if (delay > 0) await new Promise((r) => setTimeout(r, Math.min(delay, 60_000)));
    const fail = Number(request.headers.get("x-sim-fail") ?? 0);
    if (fail >= 400 && fail <= 599) return json({ error: "simulated failure", status: fail }, fail);
    if (request.headers.get("x-sim-echo") === "1") {
      const url = new URL(request.url);
      return json({
        method: request.method,
        path: url.pathname,
        query: url.search,
        headers: Object.fromEntries([...request.headers.entries()]),
        body: await request.text(),
      });
    }
    return handler(request);
  };
}

export async function readJson(request: Request): Promise<Record<string, unknown> | null> {
  try {
    const value: unknown = await request.json();
    return value && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
