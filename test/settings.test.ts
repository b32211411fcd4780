import { describe, expect, it } from "vitest";
import { call, json } from "./helpers";

describe("a misconfigured deployment", () => {
  it("answers 503 naming the missing setting, in the product's envelope", async () => {
    const response = await call("/zakgt/api/v1/users/me", { settings: { ORIGIN_SIGNING_SECRET: undefined } });
    expect(response.status).toBe(503);
    expect(await json(response)).toEqual({ detail: "Gateway misconfigured: ORIGIN_SIGNING_SECRET is not set" });

    const zsky = await call("/zsky/v1/usage", { settings: { ORIGIN_ZSKY: "not a url" } });
    expect(zsky.status).toBe(503);
    expect((await json(zsky)).error).toMatch(/^Gateway misconfigured: ORIGIN_ZSKY is invalid/);
  });

  it("names a bad secret without ever echoing its value", async () => {
    const response = await call("/zappway/api/v1/agents", { settings: { ORIGIN_SIGNING_SECRET: "tooShortSecretValue" } });
    expect(response.status).toBe(503);
    const text = await response.text();
    expect(JSON.parse(text)).toEqual({
      error: { code: "SERVICE_UNAVAILABLE", message: "Gateway misconfigured: ORIGIN_SIGNING_SECRET is invalid: must be at least 32 characters" },
    });
    expect(text).not.toContain("tooShortSecretValue");
  });

  it("rejects numbers that are not numbers and unknown environments", async () => {
    expect((await json(await call("/zsky/v1/usage", { settings: { MAX_BODY_BYTES: "lots" } }))).error).toMatch(/MAX_BODY_BYTES is invalid/);
    expect((await json(await call("/zsky/v1/usage", { settings: { ENVIRONMENT: "qa" } }))).error).toMatch(/ENVIRONMENT is invalid/);
    expect((await json(await call("/zsky/v1/usage", { settings: { GUARD_LEASE_MS: "10" } }))).error).toBe(
      "Gateway misconfigured: GUARD_LEASE_MS is invalid: must be 0 (off) or 50-1000",
    );
  });

  it("an unset production origin (the wrangler.toml placeholder) is named", async () => {
    const response = await call("/v1/usage", { base: "https://zsky.ai", settings: { ENVIRONMENT: "production", ORIGIN_ZSKY: "" } });
    expect(response.status).toBe(503);
    expect((await json(response)).error).toMatch(/^Gateway misconfigured: ORIGIN_ZSKY/);
  });
});
