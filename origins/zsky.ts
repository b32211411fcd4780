import { json, readJson, gatewayTrust, withSimulatorHooks, type Handler } from "./common";
import type { JSONWebKeySet } from "jose";
import { largePng, renderPng, renderVideo } from "./media";

/**
 * ZSky origin simulator: image/video job submit and poll. Jobs complete after
 * `completeAfterMs`. The safety filter is played by words in the prompt:
 * `blockedWord` -> the job ends `blocked`; `blocked-at-submit` -> 451 at submit;
 * `will-fail` -> the job ends `failed`; `no-result` -> completed, but its result is missing. A completed job's `result_url` is this origin's
 * `/results/<id>`, served only to zgate (its assertion, as every route) for the owning
 * account, with its Content-Length: a generated PNG (deterministic for prompt and seed)
 * or a video-like MP4. Results that misbehave, also played by the prompt:
 * `result-from:<url>` -> that URL is the `result_url`; `result-bytes:<n>` -> an n-byte
 * PNG-like result; `result-type:<type>` -> served as that Content-Type;
 * `result-chunked` -> sent without Content-Length. Timing, also by prompt:
 * `render-ms:<n>` -> this job completes after n ms; `status-delay-ms:<n>` -> its status
 * is answered n ms late.
 */
export interface ZskySimulatorOptions {
  /** The gateway's published keys (its JWK Set): every one it may sign with, old and new during a rotation. */
  assertionKeys: JSONWebKeySet;
  completeAfterMs?: number;
  blockedWord?: string;
  /** Where jobs outlive the process (`npm start`'s state directory); in memory only without it. */
  jobStore?: JobStore;
}

export interface JobStore {
  load(): Job[];
  save(jobs: Job[]): void;
}

export interface Job {
  id: string;
  account: string;
  kind: "image" | "video";
  prompt: string;
  seed: number;
  createdAt: number;
  completeAfterMs: number;
}

async function renderResult(job: Job): Promise<[Uint8Array, string]> {
  const size = /result-bytes:(\d+)/.exec(job.prompt)?.[1];
  if (size) return [largePng(Number(size)), "image/png"];
  return job.kind === "image"
    ? [await renderPng(job.prompt, job.seed), "image/png"]
    : [await renderVideo(job.prompt, job.seed), "video/mp4"];
}

export function createZskySimulator(options: ZskySimulatorOptions): Handler {
  const jobs = new Map<string, Job>((options.jobStore?.load() ?? []).map((job) => [job.id, job]));
  const saved = () => options.jobStore?.save([...jobs.values()]);
  const completeAfter = options.completeAfterMs ?? 1500;
  const blockedWord = (options.blockedWord ?? "forbidden").toLowerCase();

  function state(job: Job) {
    const base = { job_id: job.id, kind: job.kind };
    if (Date.now() - job.createdAt < job.completeAfterMs) return { ...base, status: "queued" };
    if (job.prompt.toLowerCase().includes(blockedWord)) {
      return { ...base, status: "blocked", error: `Sorry — our safety check stopped this ${job.kind}.` };
    }
    if (job.prompt.includes("will-fail")) return { ...base, status: "failed", error: "Generation failed" };
    const resultUrl = /result-from:(\S+)/.exec(job.prompt)?.[1] ?? `/results/${job.id}`;
    return { ...base, status: "completed", result_url: resultUrl, expires_in: 86400 };
  }

  const trusted = gatewayTrust({ assertionKeys: options.assertionKeys, audience: "zsky" });
  return withSimulatorHooks(async (request) => {
    const identity = await trusted(request);
    if (!identity) return json({ error: "Untrusted gateway identity" }, 401);
    const url = new URL(request.url);
    const route = `${request.method} ${url.pathname}`;

    const generate = /^POST \/v1\/(images|videos)\/generate$/.exec(route);
    if (generate) {
      const body = await readJson(request);
      if (typeof body?.prompt !== "string" || body.prompt.length === 0) return json({ error: "prompt is required" }, 400);
      if (body.prompt.includes("blocked-at-submit")) {
        return json({ error: "Sorry — our safety check stopped this prompt.", status: "blocked" }, 451);
      }
      const job: Job = {
        id: crypto.randomUUID().replaceAll("-", ""),
        account: identity.account ?? "",
        kind: generate[1] === "images" ? "image" : "video",
        prompt: body.prompt,
        seed: typeof body.seed === "number" ? body.seed : 0,
        createdAt: Date.now(),
        completeAfterMs: Number(/render-ms:(\d+)/.exec(body.prompt)?.[1] ?? completeAfter),
      };
      jobs.set(job.id, job);
      saved();
      return json({ job_id: job.id, status: "queued", kind: job.kind, poll_url: `/v1/jobs/${job.id}` });
    }
    const jobRoute = /^(GET|DELETE) \/v1\/jobs\/(\w+)$/.exec(route);
    if (jobRoute) {
      const job = jobs.get(jobRoute[2]!);
      if (!job || job.account !== identity.account) return json({ error: "Job not found" }, 404);
      if (jobRoute[1] === "DELETE") {
        jobs.delete(job.id);
        saved();
        return new Response(null, { status: 204 });
      }
      const delay = Number(/status-delay-ms:(\d+)/.exec(job.prompt)?.[1] ?? 0);
      if (delay > 0) await new Promise((r) => setTimeout(r, Math.min(delay, 60_000)));
      return json(state(job));
    }
    const result = /^GET \/results\/(\w+)$/.exec(route);
    if (result) {
      const job = jobs.get(result[1]!);
      if (!job || job.account !== identity.account || state(job).status !== "completed" || job.prompt.includes("no-result")) {
        return json({ error: "Not found" }, 404);
      }
      const [bytes, type] = await renderResult(job);
      const headers: Record<string, string> = { "Content-Type": /result-type:(\S+)/.exec(job.prompt)?.[1] ?? type };
      if (!job.prompt.includes("result-chunked")) headers["Content-Length"] = String(bytes.length);
      return new Response(bytes as Uint8Array<ArrayBuffer>, { headers });
    }
    return json({ error: "Not found" }, 404);
  });
}
