import { describe, expect, it } from "vitest";
import { afterDrain, useTestClock } from "../clock";
import { admin, call, countingGuards, createKey, json, keyHeaders, limitOverrides } from "../helpers";

/**
 * A refused request costs no guard call while its refusal stands (src/admit/standing-refusals.ts):
 * a full window's 429 is repeated by the isolate for the same credential (or client
 * address) on the same route only: an address's until its Retry-After, a credential's for
 * at most a lease life, which a revoke or a limit change waits for.
 */

describe("a full window's refusal stands in the isolate", () => {
  // A credential's refusal stands at most a lease life: one second here, so the checks fit in it.
  const stand = { GUARD_LEASE_MS: "1000" };

  it("a key's next requests make no guard call while it stands: 429 in the product's envelope, RateLimit r=0, Retry-After counting down; then the guard is asked again", async () => {
    const clock = useTestClock();
    const calls: string[] = [];
    const settings = {
      ...limitOverrides({ zappway: { windows: { plan_rate: { limit: 2, windowSeconds: 3 } } } }),
      ...stand,
      ACCOUNT_GUARD: countingGuards(calls),
    };
    const { key } = await createKey("zappway");
    const agents = () => call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings });

    expect((await agents()).status).toBe(200);
    expect((await agents()).status).toBe(200);
    const refused = await agents();
    const refusedAt = clock.now();
    expect(refused.status).toBe(429);
    expect(calls).toEqual(["admit", "admit", "admit"]); // admissions are never remembered
    const retryAfter = Number(refused.headers.get("Retry-After"));
    expect(retryAfter).toBe(3);
    const body = await json(refused);

    calls.length = 0;
    await clock.advance(900);
    const again = await Promise.all(Array.from({ length: 5 }, agents));
    for (const response of again) {
      expect(response.status).toBe(429);
      expect(await json(response)).toEqual(body);
      expect(response.headers.get("RateLimit-Policy")).toBe('"plan_rate";q=2;w=3');
      expect(response.headers.get("RateLimit")).toBe('"plan_rate";r=0;t=3');
      expect(response.headers.get("Retry-After")).toBe("3"); // 2.1 s left, rounded up as the guard rounds
    }
    await clock.advance(99);
    expect((await agents()).headers.get("Retry-After")).toBe("3");
    expect(calls).toEqual([]);

    // Past the stand (a lease life), within the Retry-After: the guard is asked, and refuses.
    await clock.advanceTo(refusedAt + 1_000);
    const asked = await agents();
    expect(asked.status).toBe(429);
    expect(asked.headers.get("Retry-After")).toBe("2");
    expect(calls).toEqual(["admit"]);

    await clock.advanceTo(refusedAt + retryAfter * 1000 - 1);
    expect((await agents()).status).toBe(429);
    await clock.advance(1);
    expect((await agents()).status).toBe(200);
  });

  // On the system clock: the one test of the hold in real time.
  it("a revoke waits for a standing refusal like for a lease: the key's very next request is 401", async () => {
    const calls: string[] = [];
    const settings = {
      ...limitOverrides({ zappway: { windows: { plan_rate: { limit: 1, windowSeconds: 30 } } } }),
      ...stand,
      ACCOUNT_GUARD: countingGuards(calls),
    };
    const { id, key } = await createKey("zappway");
    const agents = () => call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings });
    expect((await agents()).status).toBe(200);
    // Refused: the isolate repeats it for up to a second (the first test shows it, on the test clock).
    expect((await agents()).status).toBe(429);
    expect((await admin(`/keys/${id}/revoke`, { method: "POST" })).status).toBe(200);
    calls.length = 0;
    expect((await agents()).status).toBe(401);
    expect(calls).toEqual(["admit"]);
  });

  it("a refusal stands in the isolate no longer than its guard holds it, however late the answer arrived: a revoke the guard no longer waits for still refuses the very next request 401", async () => {
    const clock = useTestClock();
    // Each guard answer reaches the isolate 300 ms after the guard gave it.
    const late = countingGuards([], () => clock.advance(300));
    const settings = {
      ...limitOverrides({ zappway: { windows: { plan_rate: { limit: 1, windowSeconds: 30 } } } }),
      ...stand,
      ACCOUNT_GUARD: late,
    };
    const { id, key } = await createKey("zappway");
    const agents = () => call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings });
    expect((await agents()).status).toBe(200);
    const refusedAt = clock.now();
    expect((await agents()).status).toBe(429);
    // The guard refused at refusedAt and holds the refusal a lease life from then: past
    // that, the revoke returns at once.
    await clock.advanceTo(refusedAt + 1_000);
    expect((await admin(`/keys/${id}/revoke`, { method: "POST" })).status).toBe(200);
    expect((await agents()).status).toBe(401);
  });

  it("a raised limit waits for the standing refusal, and applies to the very next request", async () => {
    const clock = useTestClock();
    const settings = { ...limitOverrides({ zappway: { windows: { plan_rate: { limit: 1, windowSeconds: 30 } } } }), ...stand };
    const { id, key } = await createKey("zappway");
    const agents = () => call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings });
    expect((await agents()).status).toBe(200);
    const refusedAt = clock.now();
    expect((await agents()).status).toBe(429);
    const raised = await afterDrain(clock, () =>
      admin(`/keys/${id}`, { method: "PATCH", json: { limit_override: { windows: { plan_rate: { limit: 5, window_seconds: 30 } } } } }),
    );
    expect(raised.status).toBe(200);
    // It returned when the refusal stopped standing (a lease life), and not before.
    expect(clock.now()).toBe(refusedAt + 1_000);
    expect((await agents()).status).toBe(200);
  });

  it("only requests counted in the same windows share it: the key's calls on a route with other windows, and other keys, still ask the guard", async () => {
    const calls: string[] = [];
    const settings = { ...limitOverrides({ zsky: { windows: { burst: { limit: 1 } } } }), ...stand, ACCOUNT_GUARD: countingGuards(calls) };
    const { key, account } = await createKey("zsky");
    const other = await createKey("zsky", { account });
    const usage = (k: string) => call("/zsky/v1/usage", { headers: keyHeaders("zsky", k), settings });
    expect((await usage(key)).status).toBe(200);
    expect((await usage(key)).status).toBe(429);
    calls.length = 0;
    expect((await usage(key)).status).toBe(429);
    expect(calls).toEqual([]);
    // Polls count in the key's own poll window, not in burst: admitted (then 404, not the account's job).
    expect((await call("/zsky/v1/jobs/job_elsewhere", { headers: keyHeaders("zsky", key), settings })).status).toBe(404);
    // Each key has its own burst window.
    expect((await usage(other.key)).status).toBe(200);
    expect(calls).toEqual(["admit", "admit"]);
  });

  it("refusals that can end early are not remembered: a generation allowance refusal asks the guard every time", async () => {
    const calls: string[] = [];
    const settings = { ...limitOverrides({ zsky: { generation: { dailyPerKey: { image: 0 } } } }), ACCOUNT_GUARD: countingGuards(calls) };
    const { key } = await createKey("zsky");
    const submit = () =>
      call("/zsky/v1/images/generate", {
        method: "POST",
        headers: { ...keyHeaders("zsky", key), "Content-Type": "application/json" },
        body: '{"prompt":"a lighthouse"}',
        settings,
      });
    expect((await submit()).status).toBe(429);
    calls.length = 0;
    expect((await submit()).status).toBe(429);
    expect(calls).toContain("admit");
  });
});

describe("per client address, without a credential", () => {
  it("an address refused on a route is refused there with no guard call; its other routes and other addresses are still asked", async () => {
    const calls: string[] = [];
    const settings = { ...limitOverrides({ zakgt: { windows: { auth_ip: { limit: 1 } } } }), ACCOUNT_GUARD: countingGuards(calls) };
    const ip = `203.0.113.${Math.floor(Math.random() * 200) + 1}`;
    const from = (address: string, path = "/zakgt/api/v1/auth/login") =>
      call(path, {
        method: "POST",
        headers: { "Content-Type": "application/json", "CF-Connecting-IP": address },
        body: '{"email":"demo@zakgt.test","password":"guess"}',
        settings,
      });
    expect((await from(ip)).status).toBe(401); // reached the origin: wrong password
    const refused = await from(ip);
    expect(refused.status).toBe(429);
    calls.length = 0;
    const again = await from(ip);
    expect(again.status).toBe(429);
    expect(await json(again)).toEqual({ detail: "Rate limit exceeded" });
    expect(again.headers.get("RateLimit-Policy")).toBe('"auth_ip";q=1;w=60');
    expect(Number(again.headers.get("Retry-After"))).toBeLessThanOrEqual(Number(refused.headers.get("Retry-After")));
    expect(calls).toEqual([]);
    // Register counts in the same window but is another route: the guard is asked (and refuses).
    expect((await from(ip, "/zakgt/api/v1/auth/register")).status).toBe(429);
    expect(calls).toEqual(["admit"]);
    expect((await from("192.0.2.78")).status).toBe(401);
    expect(calls).toEqual(["admit", "admit"]);
  });
});
