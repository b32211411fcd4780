import type { StageContext } from "../http/context";
import { GatewayError } from "../http/errors";
import { addOriginAssertion } from "./origin-assertion";
import { originRequestHeaders } from "./origin-headers";
import { requestUrl } from "../http/request-url";
import { productSettings } from "../config/settings";
import * as clock from "../util/clock";

/** The origin base URL for this request: test keys (`zak_test_`) go to the test origin (development falls back to the one origin). */
export function originFor(c: StageContext): string {
  const { origin, testOrigin } = productSettings(c.get("settings"), c.get("target").product);
  return c.get("identity")?.testMode ? (testOrigin ?? origin) : origin;
}

/**
 * How much longer than ORIGIN_TIMEOUT_MS an origin call whose admission reserved something
 * (a ZSky generate: an allowance and a job slot) is waited for after the caller's 504,
 * in the background: what the origin did decides the reservation. Within the 30 s
 * Cloudflare gives a request's background work after its response.
 */
export const LATE_ANSWER_MS = 25_000;

/** fetch() towards an origin, with the timeout and the 502/504 mapping every origin call shares. */
export function fetchOrigin(c: StageContext, url: string, init: RequestInit): Promise<Response> {
  const timeoutMs = c.get("settings").ORIGIN_TIMEOUT_MS;
  if (c.get("admission")?.reservationId !== undefined) return fetchSettling(c, url, init, timeoutMs);
  // Not an async function: a request holds its suspended frame for the whole round trip.
  try {
    return fetch(url, { ...init, redirect: "manual", signal: AbortSignal.timeout(timeoutMs) }).catch(failedExchange);
  } catch (err) {
    return failedExchange(err);
  }
}

const failedExchange = (err: unknown): Promise<never> => Promise.reject(upstreamFailure(err));

/**
 * An origin call whose answer settles a reservation: read whole (a generate's answer is a
 * small JSON object) within ORIGIN_TIMEOUT_MS, or the caller gets its 504 and the same
 * exchange goes on for up to LATE_ANSWER_MS more; its answer (null: none came, or the
 * exchange failed) is left as `lateAnswer` for the route's settle step (products/zsky/jobs.ts).
 */
async function fetchSettling(c: StageContext, url: string, init: RequestInit, timeoutMs: number): Promise<Response> {
  // Ended on zgate's clock: the job slot it holds is a limit, which tests move past it.
  const giveUp = new AbortController();
  void clock.after(timeoutMs + LATE_ANSWER_MS, async () => giveUp.abort(new DOMException("The origin did not answer", "TimeoutError")));
  const exchange = fetch(url, { ...init, redirect: "manual", signal: giveUp.signal }).then(
    async (response) => new Response(NULL_BODY.has(response.status) ? null : await response.arrayBuffer(), response),
  );
  let timer: ReturnType<typeof setTimeout> | null = null;
  const deadline = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), timeoutMs)));
  try {
    const answer = await Promise.race([exchange, deadline]);
    if (answer) return answer;
  } catch (err) {
    throw upstreamFailure(err);
  } finally {
    clearTimeout(timer);
  }
  c.set(
    "lateAnswer",
    exchange.catch(() => null),
  );
  throw timedOut();
}

const NULL_BODY = new Set([101, 204, 205, 304]);

/** What a failed origin exchange (the call, or reading its body) tells the caller, never the underlying error: 504 or 502. */
export function upstreamFailure(err: unknown): GatewayError {
  if (err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError")) return timedOut();
  return new GatewayError("BAD_GATEWAY", "Upstream service unavailable");
}

const timedOut = () => new GatewayError("GATEWAY_TIMEOUT", "Upstream service timed out");

/**
 * Sends the request to the product's origin and returns its response untouched
 * (status, headers, body, redirects). Unreachable origin: 502; slower than
 * ORIGIN_TIMEOUT_MS: 504; neither leaks the underlying error.
 */
export async function forwardToOrigin(c: StageContext, body: Uint8Array | null): Promise<Response> {
  const settings = c.get("settings");
  const target = c.get("target");
  const requestId = c.get("requestId");
  const identity = c.get("identity");
  const url = requestUrl(c.req.raw);
  // The path zgate matched and authorised, exactly (route-request.ts refused any other reading).
  const pathAndQuery = target.originPath + url.search;
  const origin = originFor(c);
  const incoming = c.req.raw.headers;
  const headers = originRequestHeaders(
    incoming,
    identity,
    {
      clientIp: incoming.get("cf-connecting-ip") ?? undefined,
      host: url.host,
      proto: url.protocol.slice(0, -1),
      prefix: target.publicPrefix,
    },
    settings.ORIGIN_FORWARD_HEADERS,
  );
  const sent = body && body.byteLength > 0 ? body : null;
  const method = c.req.method;
  await addOriginAssertion(headers, settings, {
    method,
    origin,
    path: target.originPath,
    query: url.search.slice(1),
    body: sent,
    product: target.product,
    identity,
    requestId,
  });
  const response = await fetchOrigin(c, origin + pathAndQuery, { method, headers, body: sent });
  // A route that settles from the answer (ZSky's jobs) reads it whole and rebuilds it from
  // its bytes (http/origin-json.ts): a re-wrap here would be one more Response and copy of
  // its fields a poll. Any other answer is re-wrapped so later stages may add X-Request-Id
  // in place; the origin's own fields stay as sent.
  return c.get("route").settle ? response : new Response(response.body, response);
}
