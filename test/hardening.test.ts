// Edge cases found in review: slots that could leak, refusals that cost quota, racing
// rotations, errors after the origin answered, rollover, header and cache hygiene.
import { env } from "cloudflare:test";
import { describe, expect, inject, it } from "vitest";
import { LATE_ANSWER_MS } from "../src/forward/forward";
import { useTestClock } from "./clock";
import { admin, burst, call, createKey, json, keyHeaders, limitOverrides, sims, R2_S3_SETTINGS } from "./helpers";

const roomy = limitOverrides({ zsky: { windows: { burst: { limit: 100_000 } } } });
const zskyCall = (key: string, path: string, init: RequestInit = {}, settings: Record<string, unknown> = roomy) =>
  call(`/zsky${path}`, {
    ...init,
    headers: { ...keyHeaders("zsky", key), "Content-Type": "application/json", ...(init.headers as Record<string, string>) },
    settings,
  });
const submit = (key: string, prompt = "a cat", kind = "images") =>
  zskyCall(key, `/v1/${kind}/generate`, { method: "POST", body: JSON.stringify({ prompt }) });

describe("job slots cannot leak", () => {
  it("purging a job that never finished frees its slot", async () => {
    const { key } = await createKey("zsky");
    const ids = [];
    // Jobs that run for minutes at the origin: a full pool's re-check finds them running.
    for (let i = 0; i < 3; i++) ids.push((await json(await submit(key, "a cat render-ms:600000"))).job_id);
    expect((await submit(key)).status).toBe(429);
    for (const id of ids) expect((await zskyCall(key, `/v1/jobs/${id}`, { method: "DELETE" })).status).toBe(204);
    expect((await submit(key)).status).toBe(200);
  });

  it("a job nobody polls stops holding its slot after 30 minutes", async () => {
    const { key } = await createKey("zsky");
    const clock = useTestClock();
    for (let i = 0; i < 3; i++) await submit(key, "a cat render-ms:600000");
    expect((await submit(key)).status).toBe(429);
    await clock.advance(31 * 60_000);
    expect((await submit(key)).status).toBe(200);
  });
});

describe("a forbidden request costs nothing", () => {
  it("a key without the `images` scope is refused before any window, allowance or slot is taken", async () => {
    const { key } = await createKey("zsky", { scopes: ["videos", "jobs", "usage"] });
    for (let i = 0; i < 5; i++) {
      const r = await submit(key);
      expect(r.status).toBe(403);
      // Not a suspension (docs/contracts.md, "Deliberate differences"): waiting does not help.
      expect(r.headers.get("Retry-After")).toBeNull();
      expect(await json(r)).toEqual({ error: "This key does not have the 'images' scope" });
    }
    expect((await burst(3, () => submit(key, "a lighthouse", "videos"))).map((r) => r.status)).toEqual([200, 200, 200]);
    expect(await json(await zskyCall(key, "/v1/usage"))).toMatchObject({ images_used: 0, videos_used: 3 });
  });
});

describe("ZSky rotation", () => {
  it("of two racing rotations exactly one wins", async () => {
    const { key } = await createKey("zsky");
    const results = await burst(4, () => zskyCall(key, "/v1/keys/rotate", { method: "POST" }));
    expect(results.map((r) => r.status).sort()).toEqual([200, 401, 401, 401]);
  });

  it("carries the key's limits, caps and safety record; revoking the leaked key reaches its rotations", async () => {
    const old = await createKey("zsky", { limit_override: { daily_per_key: { image: 2 } } });
    const settings = limitOverrides({ zsky: { windows: { burst: { limit: 100_000 } }, generation: { concurrentJobsPerKey: 50 } } });
    expect((await zskyCall(old.key, "/v1/images/generate", { method: "POST", body: '{"prompt":"a"}' }, settings)).status).toBe(200);
    const rotated = await json(await zskyCall(old.key, "/v1/keys/rotate", { method: "POST" }));
    expect((await json(await admin(`/keys/${rotated.key_id}`))).limit_override).toEqual({ daily_per_key: { image: 2 } });
    expect((await zskyCall(rotated.key, "/v1/images/generate", { method: "POST", body: '{"prompt":"b"}' }, settings)).status).toBe(200);
    // The day's cap of 2 was shared across the rotation.
    expect((await zskyCall(rotated.key, "/v1/images/generate", { method: "POST", body: '{"prompt":"c"}' }, settings)).status).toBe(429);

    const leaked = await admin("/keys/revoke-leaked", { json: { key: old.key } });
    expect(leaked.status).toBe(200);
    expect((await zskyCall(rotated.key, "/v1/usage")).status).toBe(401);
  });
});

describe("errors after the origin answered", () => {
  it("a result the origin cannot deliver is a clean 502, not the origin's headers on an error body", async () => {
    const { key } = await createKey("zsky");
    const job = await json(await submit(key, "no-result please"));
    let response: Response | undefined;
    for (let i = 0; i < 50; i++) {
      response = await zskyCall(key, `/v1/jobs/${job.job_id}`);
      if (response.status !== 200) break;
      await response.arrayBuffer();
      await new Promise((r) => setTimeout(r, 40));
    }
    expect(response!.status).toBe(502);
    const text = await response!.text();
    expect(JSON.parse(text)).toEqual({ error: "Upstream result unavailable" });
    const length = response!.headers.get("Content-Length");
    if (length !== null) expect(Number(length)).toBe(new TextEncoder().encode(text).length);
  });

  it("an origin that stalls mid-answer to a generate call is a 504, and the call costs no allowance or slot", async () => {
    const clock = useTestClock();
    const { key } = await createKey("zsky");
    const stalled = {
      ...limitOverrides({ zsky: { windows: { burst: { limit: 100_000 } }, generation: { concurrentJobsPerKey: 1 } } }),
      ORIGIN_ZSKY: inject("stalledBody"),
      ORIGIN_TIMEOUT_MS: "300",
    };
    // The caller has its 504 at ORIGIN_TIMEOUT_MS; the exchange goes on in the background
    // (which `call` waits for) until LATE_ANSWER_MS later on the clock, which is moved there.
    const givenUp = clock.nextWork();
    const answered = zskyCall(key, "/v1/images/generate", { method: "POST", body: '{"prompt":"a"}' }, stalled);
    expect(await givenUp).toBe(clock.now() + 300 + LATE_ANSWER_MS);
    await clock.advanceTo(await givenUp);
    const response = await answered;
    expect(response.status).toBe(504);
    expect(await json(response)).toEqual({ error: "Upstream service timed out" });
    // The reservation was given back: the one slot is free and nothing was counted.
    const oneSlot = limitOverrides({ zsky: { windows: { burst: { limit: 100_000 } }, generation: { concurrentJobsPerKey: 1 } } });
    expect((await zskyCall(key, "/v1/images/generate", { method: "POST", body: '{"prompt":"b"}' }, oneSlot)).status).toBe(200);
    expect(await json(await zskyCall(key, "/v1/usage"))).toMatchObject({ images_used: 1 });
  });
});

describe("overage budget rollover", () => {
  it("a month without overage use still carries its whole budget forward", async () => {
    const { key, account } = await createKey("zsky");
    const small = limitOverrides({
      zsky: { windows: { burst: { limit: 100_000 } }, generation: { monthlyPerAccount: { image: 1 }, concurrentJobsPerKey: 100 } },
    });
    // On the test clock, next year (ahead of the real clock).
    const year = new Date().getUTCFullYear() + 1;
    const clock = useTestClock(Date.UTC(year, 8, 10));
    await admin(`/accounts/zsky/${account}/overage`, { method: "PUT", json: { enabled: true, monthly_cap_cents: 10 } });
    // September: nothing used. October: 10 (cap) + 10 (September's) = 20 cents = 4 overage images.
    await clock.advanceTo(Date.UTC(year, 9, 10));
    const statuses = [];
    for (let i = 0; i < 6; i++)
      statuses.push((await zskyCall(key, "/v1/images/generate", { method: "POST", body: '{"prompt":"x"}' }, small)).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
  });
});

describe("hygiene", () => {
  it("client-asserted client addresses never reach the origin", async () => {
    const response = await call("/zakgt/api/v1/auth/forgot-password", {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        "X-Sim-Echo": "1",
        "X-Forwarded-For": "1.2.3.4",
        "X-Real-IP": "1.2.3.4",
        "True-Client-IP": "1.2.3.4",
        Forwarded: "for=1.2.3.4",
        "CF-Connecting-IP": "203.0.113.9",
      },
      body: "{}",
    });
    const seen = await json(response);
    expect(seen.headers["x-forwarded-for"]).toBe("203.0.113.9");
    for (const h of ["x-real-ip", "true-client-ip", "forwarded"]) expect(seen.headers[h]).toBeUndefined();
  });

  it("presigned URLs name the exact object when the account id needs encoding", async () => {
    const account = "ops@example.com";
    const { key } = await createKey("zsky", { account });
    const s3 = { ...roomy, ...R2_S3_SETTINGS };
    const job = await json(await zskyCall(key, "/v1/images/generate", { method: "POST", body: '{"prompt":"x"}' }, s3));
    let done;
    for (let i = 0; i < 50 && done?.status !== "completed"; i++) {
      await new Promise((r) => setTimeout(r, 40));
      done = await json(await zskyCall(key, `/v1/jobs/${job.job_id}`, {}, s3));
    }
    const url = new URL(done.result_url);
    expect(url.pathname).toBe(`/zgate-results/zsky/ops%2540example.com/${job.job_id}`);
    expect(await env.RESULTS.head(`zsky/ops%40example.com/${job.job_id}`)).not.toBeNull();
  });

  it("test-key catalogue reads never share live cache entries", async () => {
    const live = await createKey("zakgt", { account: "usr_demo" });
    const test = await json(await admin("/keys", { json: { product: "zakgt", account: "usr_demo", mode: "test" } }));
    const path = `/zakgt/api/v1/tools/?k=${crypto.randomUUID()}`;
    // The same simulator under another name: a distinct origin, as a real test origin would be.
    const settings = { ORIGIN_ZAKGT_TEST: sims.origins.zakgt.replace("127.0.0.1", "localhost") };
    const a = await json(await call(path, { headers: { Authorization: `Bearer ${live.key}` }, settings }));
    const b = await json(await call(path, { headers: { Authorization: `Bearer ${test.key}` }, settings }));
    expect(b.data.served).not.toBe(a.data.served);
  });
});
