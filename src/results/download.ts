import type { Context } from "hono";
import type { AppEnv } from "../http/context";
import { GatewayError } from "../http/errors";
import { getJob } from "./job-store";
import { resultDisposition } from "./result-media";
import { checkResultUrl } from "./signed-url";

/**
 * GET (or HEAD) on a signed result URL: the signature is the credential. Served from
 * R2 with Content-Type, Content-Length, ETag, `Cache-Control: private`, one byte range
 * (206, or 416 when it cannot be satisfied) and If-None-Match (304). A result is never
 * active content on zgate's host: `Content-Security-Policy: sandbox` always, and
 * anything not a raster image or video is an attachment.
 */
export async function downloadResult(c: Context<AppEnv>) {
  const query = new URL(c.req.url).searchParams;
  const check = await checkResultUrl(c.get("settings"), c.get("target").originPath, query, Date.now());
  if (check === "invalid") throw new GatewayError("FORBIDDEN", "Invalid download signature");
  if (check === "expired") throw new GatewayError("FORBIDDEN", "Download link expired");

  const job = await getJob(c.env, c.get("params").job_id ?? "");
  const head = job?.resultKey && job.purgedAt === null ? await c.env.RESULTS.head(job.resultKey) : null;
  if (!job?.resultKey || !head) throw new GatewayError("NOT_FOUND", "Result not found");

  const contentType = head.httpMetadata?.contentType ?? "application/octet-stream";
  const headers = new Headers({
    "Content-Type": contentType,
    "Content-Disposition": resultDisposition(contentType),
    "Content-Security-Policy": "sandbox",
    ETag: head.httpEtag,
    "Cache-Control": "private, max-age=86400",
    "Accept-Ranges": "bytes",
    "X-Content-Type-Options": "nosniff",
  });
  if (ifNoneMatch(c.req.header("if-none-match"), head.httpEtag)) return new Response(null, { status: 304, headers });

  const range = parseRange(c.req.header("range"), head.size);
  if (range === "unsatisfiable") {
    // An error in ZSky's JSON envelope: none of the result's own fields (its Content-Type above all).
    return c.json({ error: "Requested range not satisfiable" }, 416, { "Content-Range": `bytes */${head.size}` });
  }
  const isHead = c.req.method === "HEAD";
  if (range) {
    headers.set("Content-Range", `bytes ${range.offset}-${range.offset + range.length - 1}/${head.size}`);
    headers.set("Content-Length", String(range.length));
    const part = isHead ? null : await c.env.RESULTS.get(job.resultKey, { range });
    return new Response(part?.body ?? null, { status: 206, headers });
  }
  headers.set("Content-Length", String(head.size));
  const object = isHead ? null : await c.env.RESULTS.get(job.resultKey);
  if (!isHead && !object) throw new GatewayError("NOT_FOUND", "Result not found");
  return new Response(object?.body ?? null, { status: 200, headers });
}

function ifNoneMatch(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  const weakless = (t: string) => t.trim().replace(/^W\//, "");
  return header.trim() === "*" || header.split(",").some((t) => weakless(t) === weakless(etag));
}

/**
 * One `bytes=` range (RFC 9110 §14.1.2): `a-b`, `a-`, `-n`. No header, another unit or
 * several ranges: the whole object (a server may ignore Range). A single range that is
 * malformed or starts past the end: unsatisfiable.
 */
export function parseRange(header: string | undefined, size: number): { offset: number; length: number } | "unsatisfiable" | null {
  if (!header) return null;
  const spec = /^bytes=(.*)$/i.exec(header.trim());
  if (!spec || spec[1]!.includes(",")) return null;
  const m = /^\s*(\d*)\s*-\s*(\d*)\s*$/.exec(spec[1]!);
  if (!m || (m[1] === "" && m[2] === "")) return "unsatisfiable";
  if (m[1] === "") {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return "unsatisfiable";
    const length = Math.min(suffix, size);
    return { offset: size - length, length };
  }
  const start = Number(m[1]);
  const end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return "unsatisfiable";
  return { offset: start, length: end - start + 1 };
}
