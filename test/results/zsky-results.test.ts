import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { loadSettings } from "../../src/config/settings";
import { signResultUrl } from "../../src/products/zsky/results/signed-url";
import { useTestClock } from "../clock";
import { call, callLive, createKey, json, keyHeaders, limitOverrides, R2_S3_SETTINGS } from "../helpers";
import { fetchUrl, pollUntilDone, zskyClient, type ZskyClient } from "./zsky-client";

const settings = limitOverrides({ zsky: { windows: { burst: { limit: 100_000 } }, generation: { concurrentJobsPerKey: 50 } } });
const PNG = [137, 80, 78, 71, 13, 10, 26, 10];

const client = (key: string, extra: Record<string, unknown> = {}) => zskyClient(key, { ...settings, ...extra });
const untilDone = async (api: ZskyClient, id: string) => json(await pollUntilDone(api, id));

async function completedImage(api: ZskyClient, prompt = "a neon alley", seed = 7) {
  const submitted = await api.submit("images", { prompt, seed, width: 512, height: 512 });
  expect(submitted.status).toBe(200);
  const job = await json(submitted);
  // Under the local prefix, poll_url carries it (like result_url) so following it polls the job.
  expect(job).toMatchObject({ status: "queued", kind: "image", poll_url: `/zsky/v1/jobs/${job.job_id}` });
  const done = await untilDone(api, job.job_id);
  expect(done.status).toBe("completed");
  return { jobId: job.job_id as string, done };
}

describe("submit -> poll -> download", () => {
  it("a completed job's result_url is a zgate-signed link to R2, valid 24 h", async () => {
    const { key, account } = await createKey("zsky");
    const api = client(key);
    const { jobId, done } = await completedImage(api);
    expect(done.expires_in).toBe(86400);
    const url = new URL(done.result_url);
    expect(url.origin + url.pathname).toBe(`http://localhost/zsky/v1/results/${jobId}`);
    expect(Number(url.searchParams.get("expires")) * 1000).toBeGreaterThan(Date.now() + 86_390_000);

    const download = await fetchUrl(done.result_url);
    expect(download.status).toBe(200);
    expect(download.headers.get("Content-Type")).toBe("image/png");
    expect(download.headers.get("Cache-Control")).toMatch(/^private/);
    expect(download.headers.get("ETag")).toMatch(/^"/);
    const bytes = new Uint8Array(await download.arrayBuffer());
    expect(Number(download.headers.get("Content-Length"))).toBe(bytes.length);
    expect([...bytes.slice(0, 8)]).toEqual(PNG);

    // In R2 under the account; polling again signs again without pulling again.
    const listed = await env.RESULTS.list({ prefix: `zsky/${account}/` });
    expect(listed.objects.map((o) => o.key)).toEqual([`zsky/${account}/${jobId}`]);
    const again = await json(await api.poll(jobId));
    expect((await fetchUrl(again.result_url)).status).toBe(200);

    // Deterministic for prompt and seed.
    const twin = await completedImage(api);
    expect(new Uint8Array(await (await fetchUrl(twin.done.result_url)).arrayBuffer())).toEqual(bytes);
    const other = await completedImage(api, "a neon alley", 8);
    expect(new Uint8Array(await (await fetchUrl(other.done.result_url)).arrayBuffer())).not.toEqual(bytes);
  });

  it("videos come back as video/mp4; blocked jobs carry the origin's error and no URL", async () => {
    const { key } = await createKey("zsky");
    const api = client(key);
    const video = await json(await api.submit("videos", { prompt: "a lighthouse beam", length: 49 }));
    const done = await untilDone(api, video.job_id);
    const download = await fetchUrl(done.result_url);
    expect(download.headers.get("Content-Type")).toBe("video/mp4");
    expect(new TextDecoder().decode((await download.arrayBuffer()).slice(4, 8))).toBe("ftyp");

    const blocked = await json(await api.submit("images", { prompt: "something forbidden" }));
    const end = await untilDone(api, blocked.job_id);
    expect(end).toMatchObject({ status: "blocked", kind: "image" });
    expect(end.error).toMatch(/safety check/);
    expect(end.result_url).toBeUndefined();
  });

  it("poll_url, followed as given, polls the job: under /zsky it carries the prefix", async () => {
    const { key } = await createKey("zsky");
    const submitted = await client(key).submit("videos", { prompt: "a lighthouse" });
    expect(submitted.headers.get("Content-Type")).toMatch(/^application\/json/);
    const job = await json(submitted);
    expect(job.poll_url).toBe(`/zsky/v1/jobs/${job.job_id}`);
    const polled = await call(job.poll_url, { headers: keyHeaders("zsky", key), settings });
    expect(polled.status).toBe(200);
    expect(await json(polled)).toMatchObject({ job_id: job.job_id, kind: "video" });
  });

  it("works on zsky.ai itself: the link is https://zsky.ai/v1/results/..., poll_url the origin's own path", async () => {
    const { key } = await createKey("zsky");
    const headers = { ...keyHeaders("zsky", key), "Content-Type": "application/json" };
    const job = await json(
      await call("/v1/images/generate", {
        base: "https://zsky.ai",
        method: "POST",
        headers,
        body: '{"prompt":"x"}',
        settings: { ...settings, ENVIRONMENT: "production" },
      }),
    );
    expect(job.poll_url).toBe(`/v1/jobs/${job.job_id}`);
    let done;
    for (let i = 0; i < 100 && done?.status !== "completed"; i++) {
      await new Promise((r) => setTimeout(r, 40));
      done = await json(
        await call(`/v1/jobs/${job.job_id}`, { base: "https://zsky.ai", headers, settings: { ...settings, ENVIRONMENT: "production" } }),
      );
    }
    expect(done.result_url.startsWith(`https://zsky.ai/v1/results/${job.job_id}?`)).toBe(true);
    expect((await fetchUrl(done.result_url, { settings: { ENVIRONMENT: "production" } })).status).toBe(200);
  });
});

describe("submit validation at the edge (400 naming the field, nothing counted)", () => {
  it.each([
    ["images", {}, "prompt: "],
    ["images", { prompt: "" }, "prompt: "],
    ["images", { prompt: "x".repeat(2001) }, "prompt: "],
    ["images", { prompt: 42 }, "prompt: "],
    ["images", { prompt: "x", width: 255 }, "width: "],
    ["images", { prompt: "x", height: 2049 }, "height: "],
    ["images", { prompt: "x", width: 512.5 }, "width: "],
    ["images", { prompt: "x", width: "512" }, "width: "],
    ["images", { prompt: "x", seed: 1.5 }, "seed: "],
    ["images", { prompt: "x", negative: 3 }, "negative: "],
    ["images", { prompt: "x", length: 100 }, "length: unknown field"],
    ["videos", { prompt: "x", width: 2561 }, "width: "],
    ["videos", { prompt: "x", length: 24 }, "length: "],
    ["videos", { prompt: "x", length: 242 }, "length: "],
    ["videos", { prompt: "x", negative: "blur" }, "negative: unknown field"],
    ["videos", { prompt: "x", fps: 30 }, "fps: unknown field"],
  ] as const)("%s %j", async (kind, body, start) => {
    const { key } = await createKey("zsky");
    const api = client(key);
    const response = await api.submit(kind, body);
    expect(response.status).toBe(400);
    const error = (await json(response)).error as string;
    expect(error.startsWith(start)).toBe(true);
    expect(await json(await api.usage())).toMatchObject({ images_used: 0, videos_used: 0 });
  });

  it("accepts the edges of every range", async () => {
    const { key } = await createKey("zsky");
    const api = client(key);
    expect((await api.submit("images", { prompt: "x".repeat(2000), width: 256, height: 2048, seed: -3, negative: "" })).status).toBe(200);
    expect((await api.submit("videos", { prompt: "x", width: 2560, height: 256, length: 25 })).status).toBe(200);
    expect((await api.submit("videos", { prompt: "x", length: 241 })).status).toBe(200);
  });
});

describe("ownership", () => {
  it("another account's job is a 404 indistinguishable from no job", async () => {
    const a = await createKey("zsky");
    const b = await createKey("zsky");
    const { jobId } = await completedImage(client(a.key));
    const theirs = await client(b.key).poll(jobId);
    const none = await client(b.key).poll("deadbeef");
    expect(theirs.status).toBe(404);
    expect(await theirs.text()).toBe(await none.text());
    expect((await client(b.key).purge(jobId)).status).toBe(404);
    // A second key of the owning account sees it.
    const sibling = await createKey("zsky", { account: a.account });
    expect((await client(sibling.key).poll(jobId)).status).toBe(200);
  });
});

describe("signed URLs", () => {
  async function link() {
    const { id, key, account } = await createKey("zsky");
    const { jobId, done } = await completedImage(client(key));
    return { jobId, account, keyId: id, url: new URL(done.result_url as string) };
  }
  const withParam = (url: URL, name: string, value: string) => {
    const u = new URL(url);
    u.searchParams.set(name, value);
    return u.toString();
  };

  it("tampering with path, expiry, key id or signature: 403", async () => {
    const { url } = await link();
    const { jobId: otherJob, account: otherAccount, keyId: otherKey } = await link();
    const sig = url.searchParams.get("sig")!;
    const without = (name: string) => {
      const u = new URL(url);
      u.searchParams.delete(name);
      return u.toString();
    };
    const tampered = [
      withParam(url, "account", otherAccount),
      withParam(url, "key", otherKey),
      without("account"),
      without("key"),
      url.toString().replace(/results\/\w+/, `results/${otherJob}`),
      withParam(url, "expires", String(Number(url.searchParams.get("expires")) + 3600)),
      withParam(url, "kid", "k9"),
      withParam(url, "sig", (sig[0] === "a" ? "b" : "a") + sig.slice(1)),
      withParam(url, "sig", sig.slice(0, 62)),
      `${url.origin}${url.pathname}`,
    ];
    for (const t of tampered) {
      const response = await fetchUrl(t);
      expect(response.status, t).toBe(403);
      expect(await json(response)).toEqual({ error: "Invalid download signature" });
    }
  });

  it("a link that names no issuer (account and API key) is refused, even with a valid signature over the rest: 403", async () => {
    const { jobId } = await link();
    const expires = Math.floor(Date.now() / 1000) + 3600;
    const path = `/v1/results/${jobId}`;
    const { RESULT_SIGNING_KEYS, RESULT_SIGNING_KEY_ID: kid } = loadSettings(env);
    const secret = await crypto.subtle.importKey(
      "raw",
      new TextEncoder().encode(RESULT_SIGNING_KEYS![kid!]),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign"],
    );
    const mac = new Uint8Array(await crypto.subtle.sign("HMAC", secret, new TextEncoder().encode(`GET\n${path}\n${expires}\n${kid}`)));
    const sig = [...mac].map((b) => b.toString(16).padStart(2, "0")).join("");
    const response = await fetchUrl(`http://localhost/zsky${path}?expires=${expires}&kid=${kid}&sig=${sig}`);
    expect(response.status).toBe(403);
    expect(await json(response)).toEqual({ error: "Invalid download signature" });
  });

  it("an expired link says so (403)", async () => {
    const { jobId, account, keyId } = await link();
    const url = await signResultUrl(loadSettings(env), "http://localhost/zsky", { account, keyId }, jobId, Date.now() - 86_401_000);
    const response = await fetchUrl(url);
    expect(response.status).toBe(403);
    expect(await json(response)).toEqual({ error: "Download link expired" });
    const fresh = await signResultUrl(loadSettings(env), "http://localhost/zsky", { account, keyId }, jobId, Date.now() - 86_300_000);
    expect((await fetchUrl(fresh)).status).toBe(200);
  });

  it("signing keys rotate without breaking live links", async () => {
    const { key } = await createKey("zsky");
    const k1 = { RESULT_SIGNING_KEYS: JSON.stringify({ k1: "first-signing-secret-0123456789abcdef" }), RESULT_SIGNING_KEY_ID: "k1" };
    const api = client(key, k1);
    const { done } = await completedImage(api);
    expect(new URL(done.result_url).searchParams.get("kid")).toBe("k1");
    const both = {
      RESULT_SIGNING_KEYS: JSON.stringify({ k1: "first-signing-secret-0123456789abcdef", k2: "second-signing-secret-0123456789abcde" }),
      RESULT_SIGNING_KEY_ID: "k2",
    };
    expect((await fetchUrl(done.result_url, { settings: both })).status).toBe(200);
    const onlyK2 = { RESULT_SIGNING_KEYS: JSON.stringify({ k2: "second-signing-secret-0123456789abcde" }), RESULT_SIGNING_KEY_ID: "k2" };
    expect((await fetchUrl(done.result_url, { settings: onlyK2 })).status).toBe(403);
    // A signing key id that names no key stops result links (503), never silently signs with another key.
    const misconfigured = { ...onlyK2, RESULT_SIGNING_KEY_ID: "k1" };
    expect((await fetchUrl(done.result_url, { settings: misconfigured })).status).toBe(503);
    expect((await call("/zsky/v1/usage", { headers: keyHeaders("zsky", key), settings: misconfigured })).status).toBe(200);
  });

  it("ranges (206, 416), ETag and If-None-Match (304), HEAD", async () => {
    const { url } = await link();
    const whole = new Uint8Array(await (await fetchUrl(url.toString())).arrayBuffer());
    const size = whole.length;
    const first = await fetchUrl(url.toString(), { headers: { Range: "bytes=0-9" } });
    expect(first.status).toBe(206);
    expect(first.headers.get("Content-Range")).toBe(`bytes 0-9/${size}`);
    expect(new Uint8Array(await first.arrayBuffer())).toEqual(whole.slice(0, 10));
    const tail = await fetchUrl(url.toString(), { headers: { Range: "bytes=-5" } });
    expect(new Uint8Array(await tail.arrayBuffer())).toEqual(whole.slice(size - 5));
    const open = await fetchUrl(url.toString(), { headers: { Range: `bytes=${size - 3}-` } });
    expect(open.headers.get("Content-Range")).toBe(`bytes ${size - 3}-${size - 1}/${size}`);
    const past = await fetchUrl(url.toString(), { headers: { Range: "bytes=999999-" } });
    expect(past.status).toBe(416);
    expect(past.headers.get("Content-Range")).toBe(`bytes */${size}`);
    expect((await fetchUrl(url.toString(), { headers: { Range: "bytes=9-2" } })).status).toBe(416);
    expect((await fetchUrl(url.toString(), { headers: { Range: "bytes=0-1,4-5" } })).status).toBe(200);

    const etag = (await fetchUrl(url.toString())).headers.get("ETag")!;
    const cached = await fetchUrl(url.toString(), { headers: { "If-None-Match": etag } });
    expect(cached.status).toBe(304);
    expect(await cached.text()).toBe("");
    expect((await fetchUrl(url.toString(), { headers: { "If-None-Match": '"other"' } })).status).toBe(200);
    const head = await fetchUrl(url.toString(), { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("Content-Length")).toBe(String(size));
  });
});

describe("purge and retention", () => {
  it("DELETE purges: 204, the old link 404s at once, the job is gone", async () => {
    const { key, account } = await createKey("zsky");
    const api = client(key);
    const { jobId, done } = await completedImage(api);
    const purged = await api.purge(jobId);
    expect(purged.status).toBe(204);
    expect(await purged.text()).toBe("");
    const stale = await fetchUrl(done.result_url);
    expect(stale.status).toBe(404);
    expect(await json(stale)).toEqual({ error: "Result not found" });
    expect((await api.poll(jobId)).status).toBe(404);
    expect((await api.purge(jobId)).status).toBe(404);
    expect((await env.RESULTS.list({ prefix: `zsky/${account}/` })).objects).toEqual([]);
  });

  const guardOf = (account: string) => env.ACCOUNT_GUARD.get(env.ACCOUNT_GUARD.idFromName(`zsky:${account}`));

  it("7 days after submission a job is a 404, and the guard's alarm deletes its result and its row", async () => {
    const clock = useTestClock();
    const submitted = clock.now();
    const { id, key, account } = await createKey("zsky");
    const api = client(key);
    const jobs = [await completedImage(api), await completedImage(api, "second")];
    /** A link to the job's result signed now (the ones handed out at submission expired after a day). */
    const linkNow = (jobId: string) =>
      signResultUrl(loadSettings(env), "http://localhost/zsky", { account, keyId: id }, jobId, clock.now());
    const alarmAt = await runInDurableObject(guardOf(account), (_o, state) => state.storage.getAlarm());
    // Woken on the hour after the first job's 7 days.
    expect(alarmAt).toBeGreaterThan(submitted + 7 * 86_400_000);
    expect(alarmAt).toBeLessThanOrEqual(submitted + 7 * 86_400_000 + 3_600_000);

    await clock.advance(6 * 86_400_000);
    expect(await runDurableObjectAlarm(guardOf(account))).toBe(true);
    expect((await fetchUrl(await linkNow(jobs[0]!.jobId))).status).toBe(200);
    expect((await api.poll(jobs[0]!.jobId)).status).toBe(200);

    await clock.advanceTo(submitted + 7 * 86_400_000 + 1000);
    // Refused by age before the alarm has run.
    expect((await api.poll(jobs[0]!.jobId)).status).toBe(404);
    // The alarm the first run set again, for the end of the first job's 7 days.
    expect(await runDurableObjectAlarm(guardOf(account))).toBe(true);
    expect((await env.RESULTS.list({ prefix: `zsky/${account}/` })).objects).toEqual([]);
    for (const { jobId } of jobs) {
      expect((await fetchUrl(await linkNow(jobId))).status).toBe(404);
      expect((await api.poll(jobId)).status).toBe(404);
    }
    const rows = await runInDurableObject(guardOf(account), (_o, state) => state.storage.sql.exec("SELECT * FROM owned_jobs").toArray());
    expect(rows).toEqual([]);
    // Nothing left to retire: the alarm sleeps.
    expect(await runInDurableObject(guardOf(account), (_o, state) => state.storage.getAlarm())).toBeNull();
  });

  it("more jobs past retention than one batch: the alarm runs again at once, not on the next hour", async () => {
    // A day ahead of the real clock, so the alarm waits to be run here rather than coming by itself.
    const clock = useTestClock(Date.now() + 86_400_000);
    const { id, account } = await createKey("zsky");
    const old = clock.now() - 8 * 86_400_000;
    await runInDurableObject(guardOf(account), (_o, state) => {
      for (let i = 0; i < 1001; i++)
        state.storage.sql.exec(
          "INSERT INTO owned_jobs (job_id, key_id, kind, created_at, reservation, result_key) VALUES (?, ?, 'image', ?, ?, NULL)",
          `old-${i}`,
          id,
          old + i,
          `reservation-${i}`,
        );
    });
    await runInDurableObject(guardOf(account), (_o, state) => state.storage.setAlarm(clock.now() + 3_600_000));
    expect(await runDurableObjectAlarm(guardOf(account))).toBe(true);
    const left = () =>
      runInDurableObject(
        guardOf(account),
        (_o, state) => state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM owned_jobs").one().n,
      );
    // The first run took 1000, and set the alarm for the last one at once (not on the next hour).
    expect(await left()).toBe(1);
    expect(await runInDurableObject(guardOf(account), (_o, state) => state.storage.getAlarm())).toBe(clock.now());
    expect(await runDurableObjectAlarm(guardOf(account))).toBe(true);
    expect(await left()).toBe(0);
  });

  it("a lease never admits a poll past the job's retirement", async () => {
    const { key, account } = await createKey("zsky");
    const { jobId } = await completedImage(client(key));
    const clock = useTestClock();
    // The job retires 400 ms from now.
    await runInDurableObject(guardOf(account), (_o, state) =>
      state.storage.sql.exec("UPDATE owned_jobs SET created_at = ? WHERE job_id = ?", clock.now() - 7 * 86_400_000 + 400, jobId),
    );
    // Settings of their own: an isolate's lease book starts empty for them.
    const leased = { ...settings, GUARD_LEASE_MS: "1000" };
    const poll = (extra: Record<string, string> = {}) =>
      callLive(`/zsky/v1/jobs/${jobId}`, { headers: { ...keyHeaders("zsky", key), ...extra }, settings: leased });
    // Polled twice, the route is hot: the isolate holds a lease, cut to the job's last 400 ms.
    for (let i = 0; i < 2; i++) expect((await poll()).status).toBe(200);
    await clock.advance(400);
    // The origin still knows the job: a poll that reached it would be answered by its echo hook (200).
    expect((await poll({ "X-Sim-Echo": "1" })).status).toBe(404);
  });
});

describe("zero retention (X-ZSky-Store: 0)", () => {
  it("is forwarded; the completed bytes come back inline; nothing is written to R2, the guard keeps only ownership", async () => {
    const { key, account } = await createKey("zsky");
    const api = client(key);
    const echoed = await json(await api.submit("images", { prompt: "x" }, { "X-ZSky-Store": "0", "X-Sim-Echo": "1" }));
    expect(echoed.headers["x-zsky-store"]).toBe("0");

    const job = await json(await api.submit("images", { prompt: "private picture", seed: 3 }, { "X-ZSky-Store": "0" }));
    const done = await untilDone(api, job.job_id);
    expect(done.status).toBe("completed");
    expect(done.result_url).toBeUndefined();
    expect(done.result_inline.content_type).toBe("image/png");
    expect(done.result_inline.encoding).toBe("base64");
    const bytes = Uint8Array.from(atob(done.result_inline.data), (ch) => ch.charCodeAt(0));
    expect([...bytes.slice(0, 8)]).toEqual(PNG);

    expect((await env.RESULTS.list({ prefix: `zsky/${account}/` })).objects).toEqual([]);
    const guard = env.ACCOUNT_GUARD.get(env.ACCOUNT_GUARD.idFromName(`zsky:${account}`));
    const row = await runInDurableObject(guard, (_o, state) =>
      state.storage.sql.exec("SELECT key_id, result_key FROM owned_jobs WHERE job_id = ?", job.job_id).one(),
    );
    expect(row).toEqual({ key_id: expect.any(String), result_key: null });
  });
});

describe("presigned R2 URLs when R2 S3 credentials are configured", () => {
  it("result_url is an S3 SigV4 presigned GET straight to the bucket, valid 24 h", async () => {
    const { key, account } = await createKey("zsky");
    const s3 = R2_S3_SETTINGS;
    const { jobId, done } = await completedImage(client(key, s3));
    const url = new URL(done.result_url);
    expect(url.origin).toBe("https://0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com");
    expect(url.pathname).toBe(`/zgate-results/zsky/${account}/${jobId}`);
    const q = url.searchParams;
    expect(q.get("X-Amz-Algorithm")).toBe("AWS4-HMAC-SHA256");
    expect(q.get("X-Amz-Credential")).toMatch(/^AKIDEXAMPLE1234\/\d{8}\/auto\/s3\/aws4_request$/);
    expect(q.get("X-Amz-Date")).toMatch(/^\d{8}T\d{6}Z$/);
    expect(q.get("X-Amz-Expires")).toBe("86400");
    expect(q.get("X-Amz-SignedHeaders")).toBe("host");
    expect(q.get("X-Amz-Signature")).toMatch(/^[0-9a-f]{64}$/);
    expect(done.expires_in).toBe(86400);
    // Half the S3 settings turn presigning off, not ZSky: links are the gateway's own again.
    const partial = await call("/zsky/v1/usage", { headers: keyHeaders("zsky", key), settings: { R2_ACCOUNT_ID: "x" } });
    expect(partial.status).toBe(200);
  });
});
