import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { expect, inject, onTestFinished } from "vitest";
import worker from "../src/index";
import { loadSettings } from "../src/config/settings";
import { addressGuardName, addressShardSecret } from "../src/limits/guard-protocol";
import { runOutTestClock } from "./clock";
import { expectDocumented } from "./contract";

export const sims = inject("simulators");

export interface CallOptions extends RequestInit {
  /** Full URL base; defaults to local development (`http://localhost`). */
  base?: string;
  /** Settings to override for this one request, as a deployment with other vars would have. */
  settings?: Record<string, unknown>;
}

// One env per settings object, as one deployment has one: per-isolate state keyed by the
// parsed settings (guard leases) then lives across the calls that share those settings.
const envs = new WeakMap<Record<string, unknown>, typeof env>();
function envWith(settings: Record<string, unknown>): typeof env {
  let merged = envs.get(settings);
  if (!merged) {
    merged = { ...env, ...settings };
    envs.set(settings, merged);
  }
  return merged;
}

// Client addresses for requests that name none, one per request from 198.18.0.0/16 (half
// of the benchmarking range; someIp draws from the other half), starting anywhere.
let addresses = Math.floor(Math.random() * 65_536);
const nextAddress = () => `198.18.${(addresses >> 8) & 255}.${addresses++ & 255}`;

/**
 * Sends a request through the Worker's own fetch handler with the real bindings, and
 * holds the response to the OpenAPI document (test/contract.ts). Like Cloudflare, it sets
 * `CF-Connecting-IP` when the request has none (a fresh address each time); a test that
 * needs a request without an address sends it empty.
 */
export async function call(path: string, options: CallOptions = {}): Promise<Response> {
  const { ctx, headersSent, response } = await send(path, options);
  await waitOnExecutionContext(ctx);
  await expectDocumented(headersSent, response);
  return response;
}

/** A call whose origin simulator answers `X-Sim-Echo: 1`: with the request exactly as it received it (`seen`). */
export async function echo(path: string, init: CallOptions & { headers?: Record<string, string> } = {}) {
  const response = await call(path, { ...init, headers: { "X-Sim-Echo": "1", ...init.headers } });
  expect(response.status).toBe(200);
  return { response, seen: await json(response) };
}

/**
 * Like `call`, but returns as soon as the response is complete, as a real client does:
 * the request's waitUntil work goes on in the background. `call` waits for that work,
 * which on the system clock includes each guard lease's refund at its end, so no lease
 * is ever live when `call` returns; a test of what a live lease may still admit needs
 * this one (or a test clock, test/clock.ts, whose refunds wait for it to move). The test
 * ends only after that work has settled, and fails if any of it failed.
 */
export async function callLive(path: string, options: CallOptions = {}): Promise<Response> {
  const { ctx, headersSent, response } = await send(path, options);
  const background = waitOnExecutionContext(ctx);
  // Handled here so it never surfaces as an unhandled rejection; the hook reports it.
  background.catch(() => undefined);
  onTestFinished(async () => {
    await runOutTestClock(); // work waiting on a test clock ends only when it moves
    await background;
  });
  await expectDocumented(headersSent, response);
  return response;
}

async function send(path: string, options: CallOptions) {
  const { base = "http://localhost", settings, ...init } = options;
  const ctx = createExecutionContext();
  const request = new Request(base + path, init);
  if (!request.headers.has("cf-connecting-ip")) request.headers.set("cf-connecting-ip", nextAddress());
  const headersSent = new Request(request.url, { method: request.method, headers: request.headers });
  const response = await worker.fetch(request, settings ? envWith(settings) : env, ctx);
  return { ctx, headersSent, response };
}

export async function json<T = any>(response: Response): Promise<T> {
  return (await response.json()) as T;
}

/**
 * A client IP of its own, so tests never share per-IP windows or address searches: drawn
 * from 198.19.0.0/16 (RFC 2544's range, set aside for tests), which no request without an
 * address is given. When both drew from one range, the thousands of requests a runtime
 * sends without one walked through much of it, and an address search for a drawn address
 * found another test's call now and then (investigation.test).
 */
export const someIp = () => {
  const n = Math.floor(Math.random() * 65_534) + 1;
  return `198.19.${n >> 8}.${n & 255}`;
};

/**
 * The name of the guard that counts `address`'s windows in `scope`, as a deployment whose
 * ORIGIN_ASSERTION_KEYS is `keys` (the test env's by default) names it.
 */
export const addressGuardOf = (scope: string, address: string, keys = env.ORIGIN_ASSERTION_KEYS as string) =>
  addressGuardName(addressShardSecret(JSON.parse(keys) as Record<string, string>), loadSettings(env).ADDRESS_GUARD_SHARDS, scope, address);

/** `count` addresses of their own (someIp), grouped by the guard that counts them in `scope`. */
export async function addressesByGuard(scope: string, count: number): Promise<Map<string, string[]>> {
  const groups = new Map<string, string[]>();
  for (let i = 0; i < count; i++) {
    const address = someIp();
    const name = await addressGuardOf(scope, address);
    groups.set(name, [...(groups.get(name) ?? []), address]);
  }
  return groups;
}

/** Logs in to the ZakGT simulator through the gateway; returns the access token. */
export async function login(email = "demo@zakgt.test", password = "demo-password"): Promise<string> {
  const response = await call("/zakgt/api/v1/auth/login", {
    method: "POST",
    headers: { "Content-Type": "application/json", "CF-Connecting-IP": someIp() },
    body: JSON.stringify({ email, password }),
  });
  if (response.status !== 200) throw new Error(`login failed: ${response.status}`);
  return (await json(response)).data.access_token;
}

/** A token signed by the ZakGT simulator's real key with the given claims. */
export async function mintToken(claims: Record<string, unknown>): Promise<string> {
  const response = await fetch(`${sims.origins.zakgt}/__sim/token`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(claims),
  });
  return (await json(response)).token;
}

export const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

export const ADMIN_TOKEN = "test-admin-token-0123456789abcdef";

/** Calls the admin API with the test deployment's admin token (`live`: through callLive). */
export async function admin(path: string, init: CallOptions & { json?: unknown; live?: boolean } = {}): Promise<Response> {
  const { json: body, headers, live, ...rest } = init;
  return (live ? callLive : call)(`/admin/v1${path}`, {
    method: body !== undefined ? "POST" : "GET",
    ...rest,
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, ...(body !== undefined ? { "Content-Type": "application/json" } : {}), ...headers },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
}

export interface IssuedKey {
  id: string;
  key: string;
  account: string;
}

let accounts = 0;
/** A fresh account name, so tests never share guard state. */
export const freshAccount = (prefix = "acct") => `${prefix}_${Date.now().toString(36)}_${++accounts}`;

/** Creates a key through the admin API. */
export async function createKey(product: "zakgt" | "zsky" | "zappway", extra: Record<string, unknown> = {}): Promise<IssuedKey> {
  const account = (extra.account as string | undefined) ?? freshAccount();
  const response = await admin("/keys", { json: { product, account, ...extra } });
  if (response.status !== 201) throw new Error(`createKey: ${response.status} ${await response.text()}`);
  const body = await json(response);
  return { id: body.id, key: body.key, account };
}

/** How each product reads a key, as its reference documents it. */
export function keyHeaders(product: "zakgt" | "zsky" | "zappway", key: string): Record<string, string> {
  return product === "zsky" ? { "X-API-Key": key } : { Authorization: `Bearer ${key}` };
}

/** Registers a new user with the ZakGT simulator and logs in: for tests that revoke a user's sessions. */
export async function newUser(): Promise<{ userId: string; email: string; password: string; login: () => Promise<string> }> {
  const email = `${crypto.randomUUID()}@zakgt.test`;
  const password = "long-enough-password";
  const response = await call("/zakgt/api/v1/auth/register", {
    method: "POST",
    headers: { "Content-Type": "application/json", "CF-Connecting-IP": someIp() },
    body: JSON.stringify({ email, password }),
  });
  const userId = (await json(response)).data.id as string;
  return { userId, email, password, login: () => login(email, password) };
}

type GuardNamespace = typeof env.ACCOUNT_GUARD;

/**
 * The guard binding with every call the Worker makes on any of its stubs passed through
 * `around`: `name` is the object's name, `call()` makes the real call. Given as
 * `settings.ACCOUNT_GUARD`, it can note, delay or hold guard calls.
 */
export function aroundGuards(around: (name: string | undefined, method: string, call: () => unknown) => unknown): GuardNamespace {
  return new Proxy(env.ACCOUNT_GUARD, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== "function") return value;
      if (prop !== "get") return (...args: unknown[]) => (value as (...a: unknown[]) => unknown).apply(target, args);
      return (...args: Parameters<GuardNamespace["get"]>) => {
        const stub = target.get(...args);
        return new Proxy(stub, {
          get(s, method) {
            const rpc = Reflect.get(s, method);
            if (typeof rpc !== "function") return rpc;
            // Reflect.apply: on an RPC stub `.apply` would itself be a remote call.
            return (...a: unknown[]) => around(args[0].name, String(method), () => Reflect.apply(rpc, s, a));
          },
        });
      };
    },
  });
}

/**
 * The guard binding, noting every call the Worker makes on any of its stubs, by method
 * name: given as `settings.ACCOUNT_GUARD`, it shows which requests cost a guard call.
 * `inTransit`, when given, runs between each answer and its arrival (a test clock moved
 * there is an answer that took that long to come back).
 */
export function countingGuards(calls: string[], inTransit?: () => Promise<void>): GuardNamespace {
  return aroundGuards((_name, method, call) => {
    calls.push(method);
    const answer = call();
    return inTransit ? Promise.resolve(answer).then(async (value) => (await inTransit(), value)) : answer;
  });
}

/** Fires `n` requests at once; returns their responses. */
export function burst(n: number, send: (i: number) => Promise<Response>): Promise<Response[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => send(i)));
}

/** Deployment-wide limit changes for one request, as the LIMIT_OVERRIDES var would make them. */
export const limitOverrides = (value: unknown) => ({ LIMIT_OVERRIDES: JSON.stringify(value) });

/**
 * Instant revocation, measured: requests race a revoke call; every request that starts
 * after the revoke call has returned must be refused. Requests in flight while the
 * revoke runs may go either way; nothing after it may pass.
 */
export async function race(send: () => Promise<Response>, revoke: () => Promise<unknown>, total = 300) {
  // A flag, not a time: workerd's clock stands still between I/O, so a request fired right
  // after the revoke returned would read the same time as the revoke's return.
  let revoked = false;
  const results: { startedAfterRevoke: boolean; status: number }[] = [];
  const fire = async () => {
    const startedAfterRevoke = revoked;
    const response = await send();
    await response.arrayBuffer();
    results.push({ startedAfterRevoke, status: response.status });
  };
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    inFlight.push(fire());
    if (i === total / 3) {
      inFlight.push(
        revoke().then(() => {
          revoked = true;
        }),
      );
    }
    if (i % 25 === 0) await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(inFlight);
  // And a last wave strictly after the revoke returned.
  await Promise.all(Array.from({ length: 50 }, fire));
  return results;
}

/** R2's S3 API configured (made-up credentials): result links are presigned straight to the bucket. */
export const R2_S3_SETTINGS = {
  R2_ACCOUNT_ID: "0123456789abcdef0123456789abcdef",
  R2_ACCESS_KEY_ID: "AKIDEXAMPLE1234",
  R2_SECRET_ACCESS_KEY: "secret-key-example-0123456789",
  R2_BUCKET_NAME: "zgate-results",
};
