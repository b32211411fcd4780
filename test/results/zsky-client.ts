import { expect } from "vitest";
import { call, json, keyHeaders, someIp, type CallOptions } from "../helpers";

/** A ZSky client for one key through the gateway (under `/zsky` on `base`), with `settings` for every call. */
export function zskyClient(key: string, settings: Record<string, unknown>, base = "http://localhost") {
  const headers = { ...keyHeaders("zsky", key), "Content-Type": "application/json" };
  return {
    submit: (kind: "images" | "videos", body: unknown, more: Record<string, string> = {}) =>
      call(`/zsky/v1/${kind}/generate`, { base, method: "POST", headers: { ...headers, ...more }, body: JSON.stringify(body), settings }),
    poll: (id: string) => call(`/zsky/v1/jobs/${id}`, { base, headers, settings }),
    purge: (id: string) => call(`/zsky/v1/jobs/${id}`, { base, method: "DELETE", headers, settings }),
    usage: () => call("/zsky/v1/usage", { base, headers, settings }),
  };
}

export type ZskyClient = ReturnType<typeof zskyClient>;

/** Polls until the job leaves queued/running; returns the last poll's response (the one that ended it). */
export async function pollUntilDone(api: ZskyClient, id: string): Promise<Response> {
  for (let i = 0; i < 100; i++) {
    const response = await api.poll(id);
    if (response.status !== 200) return response;
    const body = await json(response.clone());
    if (body.status !== "queued" && body.status !== "running") return response;
    await new Promise((r) => setTimeout(r, 40));
  }
  throw new Error("job never finished");
}

/** Submits an image job and polls it to its end: the final poll's response and the job id. */
export async function finishedImage(api: ZskyClient, prompt: string, more: Record<string, string> = {}) {
  const submitted = await api.submit("images", { prompt, seed: 7 }, more);
  expect(submitted.status).toBe(200);
  const jobId = (await json(submitted)).job_id as string;
  return { jobId, response: await pollUntilDone(api, jobId) };
}

/**
 * GET on a result URL as a caller would: the URL carries the whole credential, and the
 * request its client address (Cloudflare sets one on every request; downloads are
 * counted per address). A fresh address each time unless `init.headers` names one.
 */
export const fetchUrl = (url: string, init: Omit<CallOptions, "base"> = {}) => {
  const u = new URL(url);
  return call(u.pathname + u.search, {
    ...init,
    base: u.origin,
    headers: { "CF-Connecting-IP": someIp(), ...(init.headers as Record<string, string>) },
  });
};
