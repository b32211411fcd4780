/**
 * Helpers shared by the local origin simulators. The simulators stand in for the three
 * upstream platforms in development and tests; they are not part of the gateway.
 */
import { IDENTITY_HEADERS, verifyIdentitySignature } from "../src/proxy/identity-signature";

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

/** What a real origin would do with zgate's identity headers: trust them only if signed. */
export async function trustedIdentity(request: Request, secret: string): Promise<GatewayIdentity | null> {
  const h = request.headers;
  const url = new URL(request.url);
  const identity = {
    timestamp: Number(h.get(IDENTITY_HEADERS.timestamp)),
    method: request.method,
    pathAndQuery: url.pathname + url.search,
    product: h.get(IDENTITY_HEADERS.product) ?? "",
    account: h.get(IDENTITY_HEADERS.account) ?? "",
    user: h.get(IDENTITY_HEADERS.user) ?? "",
    keyId: h.get(IDENTITY_HEADERS.keyId) ?? "",
    requestId: h.get("x-request-id") ?? "",
  };
  const signature = h.get(IDENTITY_HEADERS.signature);
  if (!signature || !(await verifyIdentitySignature(secret, identity, signature))) return null;
  return identity;
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
