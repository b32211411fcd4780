import { afterEach, describe, expect, it, vi } from "vitest";
import { admin, bearer, call, createKey, json, keyHeaders, login } from "./helpers";

/** Runs `send` and returns what the gateway logged with console.error meanwhile. */
async function logged(send: () => Promise<Response>): Promise<{ response: Response; lines: string[] }> {
  const spy = vi.spyOn(console, "error");
  const response = await send();
  const lines = spy.mock.calls.map((args) => String(args[0]));
  spy.mockRestore();
  return { response, lines };
}

const GENERIC = "Service temporarily unavailable";

describe("a misconfigured deployment", () => {
  afterEach(() => vi.restoreAllMocks());

  it("answers callers a generic 503 in their product's envelope; the setting is named in the log only", async () => {
    const { response, lines } = await logged(() => call("/zakgt/api/v1/users/me", { settings: { ORIGIN_ASSERTION_KEYS: undefined } }));
    expect(response.status).toBe(503);
    expect(response.headers.get("Retry-After")).toBe("60");
    expect(await json(response)).toEqual({ detail: GENERIC });
    expect(lines.some((l) => l.includes('"setting":"ORIGIN_ASSERTION_KEYS"') && l.includes("is not set"))).toBe(true);

    const zsky = await logged(() => call("/zsky/v1/usage", { settings: { ORIGIN_ZSKY: "not a url" } }));
    expect(zsky.response.status).toBe(503);
    expect(await json(zsky.response)).toEqual({ error: GENERIC });
    expect(zsky.lines.some((l) => l.includes('"setting":"ORIGIN_ZSKY"'))).toBe(true);
  });

  it("never echoes a bad secret's value, to the caller or to the log", async () => {
    const { response, lines } = await logged(() =>
      call("/zappway/api/v1/agents", { settings: { ORIGIN_ASSERTION_KEYS: '{"k1": "tooShortSecretValue"}' } }),
    );
    expect(response.status).toBe(503);
    const text = await response.text();
    expect(JSON.parse(text)).toEqual({ error: { code: "SERVICE_UNAVAILABLE", message: GENERIC } });
    expect(text).not.toContain("ORIGIN_ASSERTION_KEYS");
    expect(lines.join("\n")).toContain("each key must be an Ed25519 private key");
    expect(lines.join("\n")).not.toContain("tooShortSecretValue");
  });

  it("logs numbers that are not numbers, unknown environments and bad lease times by name", async () => {
    for (const [setting, value, reason] of [
      ["MAX_BODY_BYTES", "lots", "is invalid"],
      ["ENVIRONMENT", "qa", "is invalid"],
      ["GUARD_LEASE_MS", "10", "must be 0 (off) or 50-1000"],
    ]) {
      const { response, lines } = await logged(() => call("/zsky/v1/usage", { settings: { [setting!]: value } }));
      expect(response.status).toBe(503);
      expect(await json(response)).toEqual({ error: GENERIC });
      expect(lines.some((l) => l.includes(`"setting":"${setting}"`) && l.includes(reason!))).toBe(true);
    }
  });

  it("an unset production origin (the wrangler.toml placeholder) is a 503 on the product's host", async () => {
    const { response, lines } = await logged(() =>
      call("/v1/usage", { base: "https://zsky.ai", settings: { ENVIRONMENT: "production", ORIGIN_ZSKY: "" } }),
    );
    expect(response.status).toBe(503);
    expect(await json(response)).toEqual({ error: GENERIC });
    expect(lines.some((l) => l.includes('"setting":"ORIGIN_ZSKY"'))).toBe(true);
  });
});

describe("a bad optional setting turns off only its own feature", () => {
  it("a short ADMIN_TOKEN disables the admin API, not the three products", async () => {
    const { key } = await createKey("zsky");
    const bad = { ADMIN_TOKEN: "only-twenty-chars-xx" };
    expect((await call("/zsky/v1/usage", { headers: keyHeaders("zsky", key), settings: bad })).status).toBe(200);
    expect((await call("/zakgt/api/v1/users/me", { headers: bearer(await login()), settings: bad })).status).toBe(200);
    const refused = await logged(() =>
      call("/admin/v1/keys", { headers: { Authorization: "Bearer only-twenty-chars-xx" }, settings: bad }),
    );
    expect(refused.response.status).toBe(503);
    expect(await json(refused.response)).toEqual({ error: { code: "SERVICE_UNAVAILABLE", message: GENERIC } });
    expect(refused.lines.some((l) => l.includes('"setting":"ADMIN_TOKEN"'))).toBe(true);
  });

  it("half-configured Cloudflare Access disables the admin API only", async () => {
    const settings = { ACCESS_TEAM_DOMAIN: "zgate-sec.cloudflareaccess.com" };
    expect((await admin("/keys", { settings })).status).toBe(503);
    expect((await call("/zakgt/api/v1/users/me", { headers: bearer(await login()), settings })).status).toBe(200);
  });

  it("a bad ORIGIN_ZAKGT_TEST refuses test keys (never sends them to the live origin); live keys work", async () => {
    const settings = { ORIGIN_ZAKGT_TEST: "not a url" };
    const live = await createKey("zakgt", { account: "usr_demo" });
    const test = await createKey("zakgt", { account: "usr_demo", mode: "test" });
    expect((await call("/zakgt/api/v1/users/me", { headers: keyHeaders("zakgt", live.key), settings })).status).toBe(200);
    const refused = await call("/zakgt/api/v1/users/me", { headers: keyHeaders("zakgt", test.key), settings });
    expect(refused.status).toBe(503);
    expect(await json(refused)).toEqual({ detail: GENERIC });
  });

  it("bad or missing result-signing keys stop result links, not the rest of ZSky; never a key derived from the origin secret", async () => {
    const { key } = await createKey("zsky");
    for (const [settings, reason] of [
      [
        { RESULT_SIGNING_KEYS: JSON.stringify({ k2: "x".repeat(40) }), RESULT_SIGNING_KEY_ID: "k1" },
        "must name one of RESULT_SIGNING_KEYS",
      ],
      [{ RESULT_SIGNING_KEYS: undefined, RESULT_SIGNING_KEY_ID: undefined }, "RESULT_SIGNING_KEYS is not set"],
    ] as const) {
      expect((await call("/zsky/v1/usage", { headers: keyHeaders("zsky", key), settings })).status).toBe(200);
      const { response: forged, lines } = await logged(() => call("/zsky/v1/results/job_x?expires=9999999999&kid=k1&sig=00", { settings }));
      expect(forged.status).toBe(503);
      expect(await json(forged)).toEqual({ error: GENERIC });
      expect(lines.some((l) => l.includes(reason))).toBe(true);
    }
  });
});
