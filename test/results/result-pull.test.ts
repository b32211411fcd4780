import { env } from "cloudflare:test";
import { describe, expect, inject, it } from "vitest";
import { call, createKey, json, keyHeaders, limitOverrides } from "../helpers";
import { fetchUrl, finishedImage, zskyClient } from "./zsky-client";

/**
 * How a completed ZSky result gets into R2: only from the ZSky origin or a listed host,
 * only image and video types, bounded in size and streamed (never held whole in memory).
 */
const resultHost = inject("resultHost");
const roomy = limitOverrides({ zsky: { windows: { burst: { limit: 100_000 } }, generation: { concurrentJobsPerKey: 50 } } });
const listed = { ...roomy, ZSKY_RESULT_HOSTS: new URL(resultHost).host };
const MiB = 1024 * 1024;

async function setup(settings: Record<string, unknown> = roomy) {
  const { key, account } = await createKey("zsky");
  return { api: zskyClient(key, settings), key, account };
}

/** Nothing of the job's result was kept: no R2 object under the account (R2 is the truth for "stored"). */
async function expectNothingStored(account: string, jobId: string) {
  expect((await env.RESULTS.list({ prefix: `zsky/${account}/` })).objects).toEqual([]);
  expect(await env.RESULTS.head(`zsky/${account}/${jobId}`)).toBeNull();
}

const seen = async (tag: string) => (await (await fetch(`${resultHost}/__seen?t=${tag}`)).json<{ seen: boolean }>()).seen;

describe("where a result may be pulled from", () => {
  it("a result_url on any other host is refused (502 in ZSky's envelope), never fetched, nothing stored", async () => {
    const { api, account } = await setup();
    const tag = crypto.randomUUID();
    // A loopback service that is not the ZSky origin: an internal address as far as zgate knows.
    const { jobId, response } = await finishedImage(api, `result-from:${resultHost}/image.png?t=${tag}`);
    expect(response.status).toBe(502);
    expect(await json(response)).toEqual({ error: "Upstream result URL refused" });
    expect(await seen(tag)).toBe(false);
    await expectNothingStored(account, jobId);
  });

  it("one of zgate's own hosts spelled with a trailing dot is still not the origin", async () => {
    // `localhost` is ZSky's own host here; the calls go to 127.0.0.1 under /zsky.
    const { key, account } = await createKey("zsky");
    const api = zskyClient(key, { ...roomy, ZSKY_HOSTS: "zsky.ai,localhost" }, "http://127.0.0.1");
    const tag = crypto.randomUUID();
    const { jobId, response } = await finishedImage(api, `result-from:http://localhost.:${new URL(resultHost).port}/image.png?t=${tag}`);
    expect(response.status).toBe(502);
    expect(await json(response)).toEqual({ error: "Upstream result URL refused" });
    expect(await seen(tag)).toBe(false);
    await expectNothingStored(account, jobId);
  });

  it("a host listed in ZSKY_RESULT_HOSTS is pulled from, without zgate's identity headers", async () => {
    const { api } = await setup(listed);
    const tag = crypto.randomUUID();
    const { response } = await finishedImage(api, `result-from:${resultHost}/image.png?t=${tag}`);
    expect(response.status).toBe(200);
    const download = await fetchUrl((await json(response)).result_url);
    expect(download.headers.get("Content-Type")).toBe("image/png");
    expect([...new Uint8Array(await download.arrayBuffer())]).toEqual([137, 80, 78, 71, 13, 10, 26, 10, 1, 2, 3, 4]);
    expect(await seen(tag)).toBe(true);
  });

  it("outside development a listed host is pulled from over HTTPS only", async () => {
    const { api, key, account } = await setup(listed);
    const tag = crypto.randomUUID();
    const submitted = await json(await api.submit("images", { prompt: `result-from:${resultHost}/image.png?t=${tag}` }));
    const production = { ...listed, ENVIRONMENT: "production" };
    let response: Response | undefined;
    for (let i = 0; i < 100 && response?.status !== 502; i++) {
      await new Promise((r) => setTimeout(r, 40));
      response = await call(`/v1/jobs/${submitted.job_id}`, {
        base: "https://zsky.ai",
        headers: keyHeaders("zsky", key),
        settings: production,
      });
      expect([200, 502]).toContain(response.status);
    }
    expect(await json(response!)).toEqual({ error: "Upstream result URL refused" });
    expect(await seen(tag)).toBe(false);
    await expectNothingStored(account, submitted.job_id);
  });
});

describe("only raster images and video are stored", () => {
  it.each(["image/svg+xml", "text/html", "application/octet-stream"])("a %s result is refused (502), stored or inline", async (type) => {
    const { api, account } = await setup();
    const stored = await finishedImage(api, `result-type:${type}`);
    expect(stored.response.status).toBe(502);
    expect(await json(stored.response)).toEqual({ error: "Upstream result is not an image or video" });
    await expectNothingStored(account, stored.jobId);
    const inline = await finishedImage(api, `result-type:${type}`, { "X-ZSky-Store": "0" });
    expect(inline.response.status).toBe(502);
  });

  it("png, jpeg, webp, gif, mp4 and webm are kept with their type (parameters dropped)", async () => {
    const { api } = await setup();
    for (const type of ["image/png", "image/jpeg", "image/webp", "image/gif", "video/mp4", "video/webm"]) {
      const { response } = await finishedImage(api, `result-type:${type};charset=binary`);
      expect(response.status, type).toBe(200);
      expect((await fetchUrl((await json(response)).result_url)).headers.get("Content-Type")).toBe(type);
    }
  });
});

describe("result size", () => {
  it("a result declared larger than MAX_RESULT_BYTES is refused unread (502); the next poll tries again", async () => {
    const { api, key, account } = await setup({ ...roomy, MAX_RESULT_BYTES: String(MiB) });
    const { jobId, response } = await finishedImage(api, `result-bytes:${2 * MiB}`);
    expect(response.status).toBe(502);
    expect(await json(response)).toEqual({ error: "Upstream result too large" });
    await expectNothingStored(account, jobId);
    // Under a larger cap the same job's result is stored.
    const again = await zskyClient(key, roomy).poll(jobId);
    expect(again.status).toBe(200);
    expect(Number((await fetchUrl((await json(again)).result_url, { method: "HEAD" })).headers.get("Content-Length"))).toBe(2 * MiB);
  });

  it("a result larger than anything zgate buffers streams into R2 whole", async () => {
    const size = 20 * MiB + 3;
    const { api, account } = await setup();
    const { jobId, response } = await finishedImage(api, `result-bytes:${size}`);
    expect(response.status).toBe(200);
    const object = await env.RESULTS.head(`zsky/${account}/${jobId}`);
    expect(object?.size).toBe(size);
    const url = (await json(response)).result_url;
    const head = await fetchUrl(url, { headers: { Range: "bytes=0-15" } });
    expect([...new Uint8Array(await head.arrayBuffer())]).toEqual([137, 80, 78, 71, 13, 10, 26, 10, 8, 9, 10, 11, 12, 13, 14, 15]);
    const tail = await fetchUrl(url, { headers: { Range: "bytes=-4" } });
    expect([...new Uint8Array(await tail.arrayBuffer())]).toEqual([size - 4, size - 3, size - 2, size - 1].map((i) => i & 0xff));
  });

  it("a result of unknown length (no Content-Length) is buffered up to 16 MiB only", async () => {
    const { api, account } = await setup();
    const small = await finishedImage(api, "result-chunked");
    expect(small.response.status).toBe(200);
    const large = await finishedImage(api, `result-chunked result-bytes:${16 * MiB + 1}`);
    expect(large.response.status).toBe(502);
    expect(await json(large.response)).toEqual({ error: "Upstream result too large" });
    expect((await env.RESULTS.list({ prefix: `zsky/${account}/` })).objects.map((o) => o.key)).toEqual([`zsky/${account}/${small.jobId}`]);
  });

  it("a body that ends short of its Content-Length is a 502 and leaves no object", async () => {
    const { api, account } = await setup(listed);
    const { jobId, response } = await finishedImage(api, `result-from:${resultHost}/short.png?t=${crypto.randomUUID()}`);
    expect(response.status).toBe(502);
    expect(response.headers.get("Content-Type")).toMatch(/^application\/json/);
    expect(typeof (await json(response)).error).toBe("string");
    await expectNothingStored(account, jobId);
  });

  it("an inline result (X-ZSky-Store: 0) stays within 16 MiB", async () => {
    const { api } = await setup();
    const { response } = await finishedImage(api, `result-bytes:${16 * MiB + 1}`, { "X-ZSky-Store": "0" });
    expect(response.status).toBe(502);
    expect(await json(response)).toEqual({ error: "Upstream result too large" });
  });
});
