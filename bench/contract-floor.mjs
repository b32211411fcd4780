// The contract floor: the least a Worker must do per keyed request to keep the contract zgate
// keeps towards callers and origins, with zgate's own code for each part, and nothing else:
// no routing, no key lookup, no limits, no usage record. It reads the key as the platform
// documents it (Authorization: Bearer) and hashes it, builds the
// origin's header set (allowlisted caller fields, X-Forwarded-*, X-Request-Id and the signed
// assertion: one Ed25519 signature), fetches with a timeout, re-wraps the answer to add X-Request-Id
// and the RateLimit fields, and writes the access-log line. `npm run bench` measures its CPU
// per request against the bare Worker beside zgate's: what no implementation of the
// contract on this runtime can go below, so a CPU target can be judged against it.
import { readCredential } from "../src/identify/credentials";
import { rateLimitHeaders } from "../src/admit/rate-limit-headers";
import { hashKey } from "../src/keys/key-format";
import { addOriginAssertion } from "../src/forward/origin-assertion";
import { zappway } from "../src/products/zappway/index";
import { originRequestHeaders } from "../src/forward/origin-headers";

/** The bindings `startContractFloor` (workers.mjs) gives it. */
/** @typedef {{ ORIGIN: string, ORIGIN_ASSERTION_KEYS: string }} FloorEnv */

/** @type {WeakMap<FloorEnv, import("../src/config/settings").Settings>} */
const parsed = new WeakMap();
/**
 * The one setting the assertion reads, parsed once per isolate as zgate's settings are.
 * @param {FloorEnv} env
 */
function settingsOf(env) {
  let settings = parsed.get(env);
  if (!settings) {
    settings = /** @type {import("../src/config/settings").Settings} */ (
      /** @type {unknown} */ ({ ORIGIN_ASSERTION_KEYS: JSON.parse(env.ORIGIN_ASSERTION_KEYS) })
    );
    parsed.set(env, settings);
  }
  return settings;
}

/** @type {Parameters<typeof originRequestHeaders>[3]} */
const NO_EXTRA_FIELDS = { names: new Set(), prefixes: [] };
const WINDOWS = [{ name: "plan_rate", limit: 1_000_000, windowSeconds: 1, remaining: 999_999, resetSeconds: 1 }];
const PREFIX = "/zappway";

/** @type {ExportedHandler<FloorEnv>} */
export default {
  async fetch(request, env) {
    const started = Date.now();
    const url = new URL(request.url);
    const requestId = crypto.randomUUID();
    const credential = readCredential(request.headers, zappway);
    const secret = credential.kind === "key" ? credential.secret : "";
    /** @type {import("../src/identify/identity").Identity} */
    const identity = { product: "zappway", accountId: "acct_floor", keyId: `key_${(await hashKey(secret)).slice(0, 16)}`, via: "key" };
    const originPath = url.pathname.startsWith(`${PREFIX}/`) ? url.pathname.slice(PREFIX.length) : url.pathname;
    const pathAndQuery = originPath + url.search;
    const from = {
      clientIp: request.headers.get("cf-connecting-ip") ?? undefined,
      host: url.host,
      proto: url.protocol.slice(0, -1),
      prefix: PREFIX,
    };
    const headers = originRequestHeaders(request.headers, identity, from, NO_EXTRA_FIELDS);
    await addOriginAssertion(headers, settingsOf(env), {
      method: request.method,
      origin: env.ORIGIN,
      path: originPath,
      query: url.search.slice(1),
      body: null,
      product: zappway,
      identity,
      requestId,
    });
    const origin = await fetch(env.ORIGIN + pathAndQuery, {
      method: request.method,
      headers,
      redirect: "manual",
      signal: AbortSignal.timeout(30_000),
    });
    const response = new Response(origin.body, origin);
    for (const [name, value] of Object.entries({ ...rateLimitHeaders(WINDOWS), "X-Request-Id": requestId }))
      response.headers.set(name, value);
    console.log(
      JSON.stringify({
        msg: "request",
        request_id: requestId,
        method: request.method,
        product: "zappway",
        route: "agents.list",
        status: response.status,
        latency_ms: Date.now() - started,
        account: identity.accountId,
        key_id: identity.keyId,
        outcome: "forwarded",
      }),
    );
    return response;
  },
};
