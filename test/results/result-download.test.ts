import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { loadSettings } from "../../src/config/settings";
import { signResultUrl } from "../../src/products/zsky/results/signed-url";
import { createKey, json, limitOverrides, someIp, R2_S3_SETTINGS } from "../helpers";
import { fetchUrl, finishedImage, zskyClient } from "./zsky-client";

/** What a result download may do in a browser, what its errors look like, and how many an address may make. */
const roomy = limitOverrides({ zsky: { windows: { burst: { limit: 100_000 } }, generation: { concurrentJobsPerKey: 50 } } });

async function storedImage(settings: Record<string, unknown> = roomy) {
  const { key, account } = await createKey("zsky");
  const { jobId, response } = await finishedImage(zskyClient(key, settings), "a quiet harbour");
  expect(response.status).toBe(200);
  return { key, account, jobId, url: (await json(response)).result_url as string };
}

const SVG_WITH_SCRIPT = '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.domain)</script></svg>';

/** What zgate never stores, put in the bucket some other way: an SVG carrying script. */
async function foreignSvgResult(): Promise<string> {
  const { id, account } = await createKey("zsky");
  const jobId = crypto.randomUUID().replaceAll("-", "");
  await env.RESULTS.put(`zsky/${account}/${jobId}`, SVG_WITH_SCRIPT, { httpMetadata: { contentType: "image/svg+xml" } });
  return signResultUrl(loadSettings(env), "http://localhost/zsky", { account, keyId: id }, jobId, Date.now());
}

describe("a download is never active content on zgate's host", () => {
  it("images and video are shown inline, sandboxed", async () => {
    const { url } = await storedImage();
    const download = await fetchUrl(url);
    expect(download.status).toBe(200);
    expect(download.headers.get("Content-Security-Policy")).toBe("sandbox");
    expect(download.headers.get("Content-Disposition")).toBe("inline");
    expect(download.headers.get("X-Content-Type-Options")).toBe("nosniff");
  });

  it("anything else already stored (an SVG with script) is an attachment, sandboxed, on GET, HEAD and ranges", async () => {
    const url = await foreignSvgResult();
    for (const init of [{}, { method: "HEAD" }, { headers: { Range: "bytes=0-9" } }]) {
      const download = await fetchUrl(url, init);
      expect([200, 206]).toContain(download.status);
      expect(download.headers.get("Content-Disposition")).toBe("attachment");
      expect(download.headers.get("Content-Security-Policy")).toBe("sandbox");
      expect(download.headers.get("X-Content-Type-Options")).toBe("nosniff");
    }
  });

  it("presigned R2 links ask R2 for the same disposition", async () => {
    const s3 = { ...roomy, ...R2_S3_SETTINGS };
    const { key, account, jobId, url } = await storedImage(s3);
    expect(new URL(url).searchParams.get("response-content-disposition")).toBe("inline");
    expect((await env.RESULTS.head(`zsky/${account}/${jobId}`))?.httpMetadata?.contentDisposition).toBe("inline");
    // An object zgate would not store, put there some other way.
    await env.RESULTS.put(`zsky/${account}/${jobId}`, SVG_WITH_SCRIPT, { httpMetadata: { contentType: "image/svg+xml" } });
    const again = await json(await zskyClient(key, s3).poll(jobId));
    expect(new URL(again.result_url).searchParams.get("response-content-disposition")).toBe("attachment");
  });
});

describe("download errors", () => {
  it("an unsatisfiable range is a 416 in ZSky's JSON envelope, not labelled as the image", async () => {
    const { url } = await storedImage();
    const size = Number((await fetchUrl(url, { method: "HEAD" })).headers.get("Content-Length"));
    const past = await fetchUrl(url, { headers: { Range: `bytes=${size}-` } });
    expect(past.status).toBe(416);
    expect(past.headers.get("Content-Type")).toMatch(/^application\/json/);
    expect(past.headers.get("Content-Range")).toBe(`bytes */${size}`);
    expect(await json(past)).toEqual({ error: "Requested range not satisfiable" });
  });
});

describe("downloads per client address", () => {
  it("600 a minute by default, said in RateLimit-Policy", async () => {
    const { url } = await storedImage();
    const download = await fetchUrl(url);
    expect(download.status).toBe(200);
    expect(download.headers.get("RateLimit-Policy")).toBe('"download_ip";q=600;w=60');
  });

  it("past the window: 429 with Retry-After in ZSky's envelope, for that address only; forged links count too", async () => {
    const tight = limitOverrides({ zsky: { windows: { download_ip: { limit: 3 } } } });
    const { url } = await storedImage();
    const ip = someIp();
    const from = (address: string, init: RequestInit = {}) => ({
      ...init,
      settings: tight,
      headers: { "CF-Connecting-IP": address, ...(init.headers as Record<string, string>) },
    });
    expect((await fetchUrl(url, from(ip))).status).toBe(200);
    expect((await fetchUrl(url.replace(/sig=\w+/, `sig=${"0".repeat(64)}`), from(ip))).status).toBe(403);
    expect((await fetchUrl(url, from(ip, { method: "HEAD" }))).status).toBe(200);
    const refused = await fetchUrl(url, from(ip));
    expect(refused.status).toBe(429);
    expect(await json(refused)).toEqual({ error: "Rate limit exceeded" });
    expect(Number(refused.headers.get("Retry-After"))).toBeGreaterThanOrEqual(1);
    expect(refused.headers.get("RateLimit-Policy")).toBe('"download_ip";q=3;w=60');
    let other = someIp();
    while (other === ip) other = someIp();
    expect((await fetchUrl(url, from(other))).status).toBe(200);
  });
});

describe("one R2 operation per download", () => {
  /** The results bucket, noting each operation made on it. */
  const countingBucket = (calls: string[]): R2Bucket =>
    new Proxy(env.RESULTS, {
      get(target, prop) {
        const value = Reflect.get(target, prop);
        if (typeof value !== "function") return value;
        return (...args: unknown[]) => {
          calls.push(String(prop));
          return Reflect.apply(value, target, args);
        };
      },
    });

  it("a GET, a range, a conditional GET (304) and a HEAD: one each; a range past the end two", async () => {
    const { url } = await storedImage();
    const calls: string[] = [];
    const settings = { ...roomy, RESULTS: countingBucket(calls) };
    const get = async (headers: Record<string, string> = {}, method = "GET") => {
      calls.length = 0;
      const response = await fetchUrl(url, { method, headers, settings });
      return { response, calls: [...calls] };
    };

    const whole = await get();
    expect(whole.response.status).toBe(200);
    expect(whole.calls).toEqual(["get"]);
    const bytes = new Uint8Array(await whole.response.arrayBuffer());
    const etag = whole.response.headers.get("ETag")!;

    const part = await get({ Range: "bytes=2-5" });
    expect(part.response.status).toBe(206);
    expect(new Uint8Array(await part.response.arrayBuffer())).toEqual(bytes.slice(2, 6));
    expect(part.calls).toEqual(["get"]);

    const cached = await get({ "If-None-Match": `"other", W/${etag}` });
    expect(cached.response.status).toBe(304);
    expect(await cached.response.text()).toBe("");
    expect(cached.calls).toEqual(["get"]);
    // A tag that does not match: the bytes come with the same one operation.
    const stale = await get({ "If-None-Match": '"other"', Range: "bytes=-3" });
    expect(stale.response.status).toBe(206);
    expect(new Uint8Array(await stale.response.arrayBuffer())).toEqual(bytes.slice(-3));
    expect(stale.calls).toEqual(["get"]);

    const head = await get({}, "HEAD");
    expect(head.response.status).toBe(200);
    expect(head.response.headers.get("Content-Length")).toBe(String(bytes.length));
    expect(head.calls).toEqual(["head"]);

    // Malformed: its 416 needs the size only.
    const malformed = await get({ Range: "bytes=9-2" });
    expect(malformed.response.status).toBe(416);
    expect(malformed.calls).toEqual(["head"]);
    // R2 refuses a start past the end before anyone knows the size the 416 names.
    const past = await get({ Range: `bytes=${bytes.length + 10}-` });
    expect(past.response.status).toBe(416);
    expect(past.response.headers.get("Content-Range")).toBe(`bytes */${bytes.length}`);
    expect(past.calls).toEqual(["get", "head"]);
  });
});
