/**
 * Helpers shared by the local origin simulators. The simulators stand in for the three
 * upstream platforms in development and tests; they are not part of the gateway.
 */
import { MAX_SIGNATURE_AGE_SECONDS, verifySignedRequest } from "../src/forward/identity-signature";

export type Handler = (request: Request) => Promise<Response>;

export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });
}

export interface GatewayIdentity {
  product: string;
  account: string;
  user: string;
  keyId: string;
  requestId: string;
}

// Nonces accepted in the last MAX_SIGNATURE_AGE_SECONDS (older ones fail the timestamp
// check anyway), oldest first: nonce -> when it may be forgotten (ms).
const acceptedNonces = new Map<string, number>();

/** True the first time a nonce is presented within the signature window, false for a replay. */
function firstUse(nonce: string): boolean {
  const now = Date.now();
  for (const [seen, until] of acceptedNonces) {
    if (until > now) break;
    acceptedNonces.delete(seen);
  }
  if (!nonce || acceptedNonces.has(nonce)) return false;
  acceptedNonces.set(nonce, now + MAX_SIGNATURE_AGE_SECONDS * 1000);
  return true;
}

/**
 * What a real origin does with zgate's identity headers: trusts them only when the body
 * matches its digest, the signature by one of the secrets it accepts (old and new during
 * a rotation) covers it all, and the nonce is new (a captured, replayed request is refused).
 */
export async function trustedIdentity(request: Request, secrets: readonly string[]): Promise<GatewayIdentity | null> {
  const body = new Uint8Array(await request.clone().arrayBuffer());
  const signed = await verifySignedRequest(secrets, request, body);
  return signed && firstUse(signed.nonce) ? signed : null;
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
