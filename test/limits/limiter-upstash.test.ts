import { inject, describe, expect, it } from "vitest";
import { upstashRefusals } from "../../src/admit/upstash-windows";
import { burst, call, createKey, json, keyHeaders } from "../helpers";
import { limiterContract, mockedDate } from "./limiter-contract";

const upstash = inject("upstash");
const submitImage = (key: string) =>
  call("/zsky/v1/images/generate", {
    method: "POST",
    headers: { ...keyHeaders("zsky", key), "Content-Type": "application/json" },
    body: '{"prompt":"a cat"}',
    settings: backend(),
  });
// These tests count admissions, not time: the production budget (UPSTASH_TIMEOUT_MS, 300 ms)
// failed one call of a burst closed (503) when a loaded full run made the local Redis slow.
// The two timeout tests below set their own.
const backend = () => ({
  LIMITER_BACKEND: "upstash",
  UPSTASH_REDIS_REST_URL: upstash!.url,
  UPSTASH_REDIS_REST_TOKEN: upstash!.token,
  UPSTASH_TIMEOUT_MS: "10000",
});

describe.skipIf(!upstash)("Upstash Redis backend (real redis-server)", () => {
  // The library counts the windows in Date.now()'s time, not the guard's clock.
  limiterContract("upstash", backend, mockedDate);

  it("fails closed with 503 when Redis cannot be reached, open only when configured", async () => {
    const { key } = await createKey("zappway");
    const down = { ...backend(), UPSTASH_REDIS_REST_URL: "http://127.0.0.1:9", UPSTASH_TIMEOUT_MS: "500" };
    const closed = await call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings: down });
    expect(closed.status).toBe(503);
    expect(closed.headers.get("Retry-After")).toBe("1");
    expect(await json(closed)).toEqual({
      error: { code: "SERVICE_UNAVAILABLE", message: "Service temporarily unavailable, please retry" },
    });
    const open = await call("/zappway/api/v1/agents", {
      headers: keyHeaders("zappway", key),
      settings: { ...down, UPSTASH_FAIL_OPEN: "true" },
    });
    expect(open.status).toBe(200);
  });

  it("a Redis that never answers is a timeout (503 after UPSTASH_TIMEOUT_MS), not a hang", async () => {
    const { key } = await createKey("zappway");
    const slow = { ...backend(), UPSTASH_REDIS_REST_URL: inject("blackhole"), UPSTASH_TIMEOUT_MS: "200" };
    const started = Date.now();
    const response = await call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings: slow });
    expect(response.status).toBe(503);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it("quotas and job slots stay in the guard: ZSky concurrency still holds at 3", async () => {
    const { key } = await createKey("zsky");
    const responses = await burst(5, () => submitImage(key));
    expect(responses.map((r) => r.status).sort()).toEqual([200, 200, 200, 429, 429]);
    const refused = responses.find((r) => r.status === 429)!;
    expect(refused.headers.get("RateLimit-Policy")).toBeNull();
    expect(await json(refused)).toEqual({ error: "Concurrent job limit reached (3 per API key)" });
  });

  it("remembers a subject Redis refused until its reset, in an LRU of at most 10,000 subjects", async () => {
    // Mid-window: Upstash's sliding window weighs the previous fixed window, so a limit of
    // 1 lets a second call through just after a boundary (docs/limits.md, "Accuracy").
    mockedDate.begin();
    const { key } = await createKey("zappway", { limit_override: { windows: { plan_rate: { limit: 1, window_seconds: 60 } } } });
    const agents = () => call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings: backend() });
    const before = new Set(upstashRefusals.keys());
    expect((await agents()).status).toBe(200);
    expect((await agents()).status).toBe(429);
    const remembered = [...upstashRefusals.keys()].filter((subject) => !before.has(subject));
    expect(remembered).toHaveLength(1);
    expect(upstashRefusals.get(remembered[0]!)).toBeGreaterThan(Date.now());
    expect((await agents()).status).toBe(429);

    // A flood of distinct refused subjects: the oldest go, the cache stays at its size.
    for (let i = 0; i < 10_001; i++) upstashRefusals.set(`zgate:rl:flood-${i}`, Date.now() + 60_000);
    expect(upstashRefusals.size).toBe(10_000);
    expect(upstashRefusals.has(remembered[0]!)).toBe(false);
    for (let i = 0; i < 10_001; i++) upstashRefusals.delete(`zgate:rl:flood-${i}`);
    // Forgotten, it is asked of Redis again, which still refuses it.
    expect((await agents()).status).toBe(429);
  });

  it("a window refusal gives the ZSky reservation back", async () => {
    mockedDate.begin(); // mid-window, as above
    const { key } = await createKey("zsky", { limit_override: { windows: { burst: { limit: 1, window_seconds: 60 } } } });
    const submit = () => submitImage(key);
    expect((await submit()).status).toBe(200);
    for (let i = 0; i < 4; i++) expect((await submit()).status).toBe(429);
    // Read back on the default backend, whose own window for this key is still empty.
    const usage = await call("/zsky/v1/usage", { headers: keyHeaders("zsky", key) });
    // Refused calls counted nothing: one image used, and the slots are free again.
    expect((await json(usage)).images_used).toBe(1);
  });
});
