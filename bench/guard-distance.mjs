// @ts-check
// A guard namespace whose objects are D ms away: every stub call (an RPC method or
// `fetch`) first waits `delayMs`, the round trip to a guard in another region. zgate's
// code is not changed, only the binding it is handed (bench:distance's and bench:cost's
// bench-only Workers, BENCH_DELAY_MS).

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A stub whose every method call is told to `onCall` and waits `delayMs` before it is made.
 * @template {object} S
 * @param {S} stub
 * @param {number} delayMs
 * @param {(method: string) => void} onCall
 * @returns {S}
 */
function distantStub(stub, delayMs, onCall) {
  return new Proxy(stub, {
    get(target, prop) {
      // Not calls: the stub's identity, and what `await` probes.
      if (prop === "then" || typeof prop === "symbol" || prop === "id" || prop === "name") return Reflect.get(target, prop);
      return async (/** @type {unknown[]} */ ...args) => {
        onCall(prop);
        if (delayMs > 0) await sleep(delayMs);
        // Reflect.apply, not method.apply: every property of an RPC method is itself a remote call.
        return Reflect.apply(/** @type {(...a: unknown[]) => unknown} */ (Reflect.get(target, prop)), target, args);
      };
    },
  });
}

/**
 * The same objects, reached through distant stubs.
 * @template {DurableObjectNamespace<any>} N
 * @param {N} namespace
 * @param {number} delayMs
 * @param {(method: string) => void} [onCall]
 * @returns {N}
 */
export function distantNamespace(namespace, delayMs, onCall = () => undefined) {
  return new Proxy(namespace, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      if (prop === "get" || prop === "getByName")
        return (/** @type {unknown[]} */ ...args) => distantStub(value.apply(target, args), delayMs, onCall);
      return value.bind(target);
    },
  });
}

/**
 * BENCH_DELAY_MS as a number of ms (unset: 0).
 * @param {string | undefined} value
 */
export function delayOf(value) {
  const delayMs = Number(value ?? 0);
  if (!Number.isFinite(delayMs) || delayMs < 0) throw new Error(`BENCH_DELAY_MS must be a number of ms, got ${value}`);
  return delayMs;
}
