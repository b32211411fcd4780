import { env, runInDurableObject } from "cloudflare:test";
import type { ProductId } from "../src/products/types";
import { encodeBatch, type UsageCall } from "../src/usage/usage-batches";
import { seenAddresses, usageLogFor } from "../src/usage/usage-client";
import { admin, json } from "./helpers";

/** A key's product and account, as the admin API has them. */
export async function keyRef(keyId: string): Promise<{ keyId: string; product: ProductId; accountId: string }> {
  const record = await json(await admin(`/keys/${keyId}`));
  return { keyId, product: record.product, accountId: record.account };
}

/** The usage log rows of a key, read inside its account's object. */
export async function usageBatches(keyId: string): Promise<{ first_at: number; last_at: number; calls: string }[]> {
  const ref = await keyRef(keyId);
  return runInDurableObject(usageLogFor(env, ref), (_log, state) =>
    state.storage.sql
      .exec<{ first_at: number; last_at: number; calls: string }>(
        "SELECT first_at, last_at, calls FROM key_usage_batches WHERE key_id = ?",
        keyId,
      )
      .toArray(),
  );
}

/** Calls of a key as another isolate would have appended them (one batch). */
export async function appendBatch(keyId: string, batch: string, calls: Partial<UsageCall>[]): Promise<void> {
  const full = calls.map(
    (c) =>
      ({
        method: "GET",
        path: "/p",
        status: 200,
        requestId: "r",
        clientAddress: null,
        country: null,
        asn: null,
        userAgent: null,
        outcome: "admitted",
        at: 0,
        ...c,
      }) as UsageCall,
  );
  const ref = await keyRef(keyId);
  await usageLogFor(env, ref).append(ref, [encodeBatch(keyId, batch, full)], seenAddresses(full));
}

/**
 * The USAGE_LOG binding, noting each append the Worker makes (the account's object name) and
 * failing the first `failures` of them as an unreachable object would: given as
 * `settings.USAGE_LOG`.
 */
export function countingUsageLogs(appends: string[], failures = 0): typeof env.USAGE_LOG {
  let failed = 0;
  return new Proxy(env.USAGE_LOG, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (prop !== "getByName") return typeof value === "function" ? value.bind(target) : value;
      return (name: string) => {
        const stub = target.getByName(name);
        return new Proxy(stub, {
          get(s, method) {
            const rpc = Reflect.get(s, method);
            if (method !== "append" || typeof rpc !== "function") return rpc;
            return (...args: unknown[]) => {
              appends.push(name);
              if (failed++ < failures) return Promise.reject(new Error("usage log unreachable (test)"));
              return Reflect.apply(rpc, s, args);
            };
          },
        });
      };
    },
  });
}
