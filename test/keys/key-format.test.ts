import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { classifyKey, generateKey, keyPatterns, keyPrefixes, type KeyPrefix } from "../../src/keys/key-format";
import { call, json } from "../helpers";

const prefixes = Object.keys(keyPrefixes()) as KeyPrefix[];

describe("key format", () => {
  it.each(prefixes)("%s keys: prefix + 30 base62 + 6-char checksum, valid", (prefix) => {
    const key = generateKey(prefix);
    expect(key).toMatch(new RegExp(`^${prefix}[0-9A-Za-z]{36}$`));
    expect(classifyKey(key)).toBe("valid");
  });

  it.each(prefixes)("the %s pattern for secret scanners finds the key in text, and nothing longer", (prefix) => {
    const key = generateKey(prefix);
    const pattern = new RegExp(keyPatterns()[prefix]!, "g");
    expect(`ZSKY_API_KEY="${key}"\nother=${key}`.match(pattern)).toEqual([key, key]);
    expect(`${key}x`.match(pattern)).toBeNull();
    expect(Object.keys(keyPatterns())).toEqual(prefixes);
  });

  it("carries at least 160 bits of randomness", () => {
    expect(30 * Math.log2(62)).toBeGreaterThanOrEqual(160);
    const keys = new Set(Array.from({ length: 2000 }, () => generateKey("zsky_live_")));
    expect(keys.size).toBe(2000);
    // Every base62 character turns up in the random part: no biased alphabet.
    const chars = new Set([...keys].flatMap((k) => [...k.slice(10, 40)]));
    expect(chars.size).toBe(62);
  });

  it("detects any single-character change of a zgate-shaped key", () => {
    const key = generateKey("zw_live_");
    for (let i = "zw_live_".length; i < key.length; i++) {
      const swapped = key.slice(0, i) + (key[i] === "a" ? "b" : "a") + key.slice(i + 1);
      expect(classifyKey(swapped)).toBe("malformed");
    }
    expect(classifyKey(key.replace("zw_live_", "zsky_live_"))).toBe("malformed");
  });

  it("any other shape is foreign (keys from before zgate, even with a platform prefix), looked up by hash", () => {
    const key = generateKey("zw_live_");
    expect(classifyKey("sk-legacy-1234567890")).toBe("foreign");
    expect(classifyKey("ZSKY_LIVE_abc")).toBe("foreign");
    expect(classifyKey("zsky_live_4f9a8b7c6d5e")).toBe("foreign");
    expect(classifyKey(key.slice(0, -1))).toBe("foreign");
    expect(classifyKey(`${key}x`)).toBe("foreign");
  });
});

/** Wraps a binding so every method call on it is counted. */
function counting<T extends object>(binding: T, calls: string[]): T {
  return new Proxy(binding, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        calls.push(String(prop));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

describe("malformed keys are refused with no storage read", () => {
  it.each([
    [
      "zsky",
      "/zsky/v1/usage",
      { "X-API-Key": generateKey("zsky_live_").replace(/.$/, (c) => (c === "Z" ? "Y" : "Z")) },
      { error: "Invalid API key" },
    ],
    [
      "zappway",
      "/zappway/api/v1/agents",
      { Authorization: `Bearer ${generateKey("zw_live_").replace(/^(zw_live_)(.)/, (_, p, c) => p + (c === "a" ? "b" : "a"))}` },
      { error: { code: "UNAUTHORIZED", message: "Invalid or expired API key." } },
    ],
    [
      "zakgt",
      "/zakgt/api/v1/ai/chat",
      { Authorization: `Bearer ${generateKey("zak_live_").replace(/.$/, (c) => (c === "0" ? "1" : "0"))}` },
      { detail: "Could not validate credentials" },
    ],
  ] as const)("%s", async (_product, path, headers, body) => {
    const calls: string[] = [];
    const response = await call(path, {
      method: path.endsWith("chat") ? "POST" : "GET",
      headers,
      settings: { KEYS_KV: counting(env.KEYS_KV, calls), DB: counting(env.DB, calls), ACCOUNT_GUARD: counting(env.ACCOUNT_GUARD, calls) },
    });
    expect(response.status).toBe(401);
    expect(await json(response)).toEqual(body);
    expect(calls).toEqual([]);
  });

  it("while a well-formed unknown key is looked up (and refused the same way)", async () => {
    const calls: string[] = [];
    const response = await call("/zsky/v1/usage", {
      headers: { "X-API-Key": generateKey("zsky_live_") },
      settings: { KEYS_KV: counting(env.KEYS_KV, calls), DB: counting(env.DB, calls) },
    });
    expect(response.status).toBe(401);
    expect(await json(response)).toEqual({ error: "Invalid API key" });
    expect(calls).toContain("get");
  });
});
