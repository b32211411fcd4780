import { beforeEach, describe, expect, it, onTestFinished, vi } from "vitest";
import { useTestClock, type TestClock } from "../clock";
import { admin, bearer, burst, call, createKey, json, keyHeaders, mintToken, newUser } from "../helpers";

/**
 * What every sliding-window backend must do, run against each (limiter-*.test.ts), in a
 * minute-long window of 5 (time is moved, never waited for).
 */
const LIMIT = 5;
const WINDOW = 60;
const override = { limit_override: { windows: { plan_rate: { limit: LIMIT, window_seconds: WINDOW } } } };

/** How time passes for a backend's windows: it stands still in each test until the test moves it. */
export interface ContractTime {
  /** Called before each test. */
  begin(): void;
  /** Lets `ms` pass. */
  pass(ms: number): Promise<void>;
}

/** The guard's windows: on the test clock (test/clock.ts), which the tests move. */
export function testClockTime(): ContractTime {
  let clock: TestClock;
  return {
    begin: () => {
      clock = useTestClock();
    },
    pass: (ms) => clock.advance(ms),
  };
}

/**
 * Redis's windows: @upstash/ratelimit counts them in fixed windows aligned to the epoch, on
 * this isolate's Date.now(), which vi.setSystemTime moves (so a burst never straddles two
 * windows, however loaded the machine). Each test starts 100 ms into a window at least a
 * window ahead of the real time: the simulators sign tokens in real time, and one signed
 * after the stopped Date's "now" would be refused as issued in the future.
 */
export const mockedDate: ContractTime = {
  begin: () => {
    const period = WINDOW * 1000;
    vi.setSystemTime((Math.floor(Date.now() / period) + 2) * period + 100);
    onTestFinished(() => {
      vi.useRealTimers();
    });
  },
  pass: async (ms) => {
    vi.setSystemTime(Date.now() + ms);
  },
};

export function limiterContract(backend: string, settings: () => Record<string, unknown>, time: ContractTime) {
  const agents = (key: string) => call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings: settings() });

  describe(`sliding windows on the ${backend} backend`, () => {
    beforeEach(() => time.begin());

    it("a burst far over N admits exactly N; every refusal carries Retry-After and RateLimit fields", async () => {
      const { key } = await createKey("zappway", override);
      const responses = await burst(20, () => agents(key));
      expect(responses.filter((r) => r.status === 200)).toHaveLength(LIMIT);
      const refused = responses.filter((r) => r.status === 429);
      expect(refused).toHaveLength(20 - LIMIT);
      for (const r of refused) {
        const retryAfter = Number(r.headers.get("Retry-After"));
        expect(Number.isInteger(retryAfter)).toBe(true);
        expect(retryAfter).toBeGreaterThanOrEqual(1);
        expect(retryAfter).toBeLessThanOrEqual(WINDOW);
        expect(r.headers.get("RateLimit-Policy")).toBe(`"plan_rate";q=${LIMIT};w=${WINDOW}`);
        expect(r.headers.get("RateLimit")).toMatch(/^"plan_rate";r=0;t=\d+$/);
        expect(await json(r)).toEqual({ error: { code: "RATE_LIMITED", message: "Rate limit exceeded" } });
      }
    });

    it("waiting Retry-After seconds then admits", async () => {
      const { key } = await createKey("zappway", override);
      await burst(LIMIT, () => agents(key));
      const refused = await agents(key);
      expect(refused.status).toBe(429);
      await time.pass(Number(refused.headers.get("Retry-After")) * 1000);
      expect((await agents(key)).status).toBe(200);
    });

    it("admitted responses count down in RateLimit", async () => {
      const { key } = await createKey("zappway", override);
      const seen = [];
      for (let i = 0; i < 3; i++) seen.push((await agents(key)).headers.get("RateLimit"));
      expect(seen.map((h) => /r=(\d+)/.exec(h ?? "")?.[1])).toEqual(["4", "3", "2"]);
    });

    it("keys of one organization share its window; another organization's do not", async () => {
      const a = await createKey("zappway", override);
      const b = await createKey("zappway", { ...override, account: a.account });
      const other = await createKey("zappway", override);
      await burst(LIMIT + 3, () => agents(a.key));
      expect((await agents(a.key)).status).toBe(429);
      expect((await agents(b.key)).status).toBe(429);
      expect((await burst(LIMIT, () => agents(other.key))).every((r) => r.status === 200)).toBe(true);
    });

    it("a ZakGT user's key is counted under the tier the user's sessions present", async () => {
      const { userId } = await newUser();
      const { key } = await createKey("zakgt", { account: userId });
      const me = (credential: string) => call("/zakgt/api/v1/users/me", { headers: bearer(credential), settings: settings() });
      expect((await me(await mintToken({ sub: userId, tier: "enterprise" }))).headers.get("RateLimit-Policy")).toBe(
        '"standard";q=3000;w=60',
      );
      const keyed = await me(key);
      expect(keyed.status).toBe(200);
      expect(keyed.headers.get("RateLimit-Policy")).toBe('"standard";q=3000;w=60');
    });

    it("revocation stays instant and in the guard", async () => {
      const { id, key } = await createKey("zappway", override);
      expect((await agents(key)).status).toBe(200);
      await admin(`/keys/${id}/revoke`, { method: "POST" });
      expect((await agents(key)).status).toBe(401);
    });
  });
}
