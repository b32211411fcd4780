import type { StageContext } from "../../../http/context";
import { GatewayError } from "../../../http/errors";
import { resultObjectKey } from "./job-state";
import { resultDisposition } from "./result-media";
import { guardFor } from "../../../admit/guard-client";
import { checkResultUrl, linkIssuedAt, type UrlCheck } from "./signed-url";
import { requestUrl } from "../../../http/request-url";
import * as clock from "../../../util/clock";

/**
 * GET (or HEAD) on a signed result URL: the signature is the credential. Served from
 * R2 with Content-Type, Content-Length, ETag, `Cache-Control: private`, one byte range
 * (206, or 416 when it cannot be satisfied) and If-None-Match (304). A result is never
 * active content on zgate's host: `Content-Security-Policy: sandbox` always, and
 * anything not a raster image or video is an attachment.
 *
 * One R2 operation per download (readResult), and no record of the job (the signed link
 * names the account, and so the object): R2 is asked for the range only if no
 * If-None-Match tag matches, and answers with those bytes or with the metadata alone.
 * Beside it, one call to the account's guard (checkLink): whether links the issuing key
 * was handed have been refused since (a security team's revoke), decided where
 * revocations are, so the very next download after one is refused at every location.
 */
export async function downloadResult(c: StageContext) {
  const link = await checkLink(c);
  if (link.check !== "valid")
    throw new GatewayError("FORBIDDEN", link.check === "expired" ? "Download link expired" : "Invalid download signature");

  // The object is the truth: a purged or retired job's result has left R2.
  const jobId = c.get("params").job_id ?? "";
  const rangeHeader = c.req.header("range");
  const tags = entityTags(c.req.header("if-none-match"));
  const [read, refused] = await Promise.all([
    readResult(c.env.RESULTS, resultObjectKey(link.issuer.account, jobId), c.req.method === "HEAD", rangeHeader, tags),
    link.refusedSince,
  ]);
  // Whole seconds: a link from the second of the revocation is refused, erring on the side of the revocation.
  if (refused !== null && linkIssuedAt(requestUrl(c.req.raw).searchParams) <= refused) {
    await read?.body?.cancel();
    throw new GatewayError("FORBIDDEN", "Download link revoked");
  }
  if (!read) throw new GatewayError("NOT_FOUND", "Result not found");
  const { object, body } = read;

  const contentType = object.httpMetadata?.contentType ?? "application/octet-stream";
  const headers = new Headers({
    "Content-Type": contentType,
    "Content-Disposition": resultDisposition(contentType),
    "Content-Security-Policy": "sandbox",
    ETag: object.httpEtag,
    "Cache-Control": "private, max-age=86400",
    "Accept-Ranges": "bytes",
    "X-Content-Type-Options": "nosniff",
  });
  if (read.withheld || matchesAny(tags, object.etag)) {
    await body?.cancel();
    return new Response(null, { status: 304, headers });
  }

  const range = parseRange(rangeHeader, object.size);
  if (range === "unsatisfiable") {
    await body?.cancel();
    // An error in ZSky's JSON envelope: none of the result's own fields (its Content-Type above all).
    return Response.json(
      { error: "Requested range not satisfiable" },
      { status: 416, headers: { "Content-Range": `bytes */${object.size}` } },
    );
  }
  if (range) {
    headers.set("Content-Range", `bytes ${range.offset}-${range.offset + range.length - 1}/${object.size}`);
    headers.set("Content-Length", String(range.length));
    return new Response(body, { status: 206, headers });
  }
  headers.set("Content-Length", String(object.size));
  return new Response(body, { status: 200, headers });
}

/** A link's signature check and, for a valid one, its issuing key's guard asked when its links were refused. */
type LinkCheck = Exclude<UrlCheck, { check: "valid" }> | (Extract<UrlCheck, { check: "valid" }> & { refusedSince: Promise<number | null> });

const linkChecks = new WeakMap<Request, Promise<LinkCheck>>();

/**
 * The download's link check, made once per request: the route starts it beside admission
 * (alongsideAdmission), so the guard's answer on refused links is on its way while the
 * request is admitted, and downloadResult reads the same one. The guard is asked only
 * about a link whose signature holds: a forged account starts no guard object.
 */
export function checkLink(c: StageContext): Promise<LinkCheck> {
  let check = linkChecks.get(c.req.raw);
  if (!check) {
    check = (async () => {
      const query = requestUrl(c.req.raw).searchParams;
      const url = await checkResultUrl(c.get("settings"), c.get("target").originPath, query, clock.now());
      if (url.check !== "valid") return url;
      const guard = guardFor(c.env, { product: "zsky", accountId: url.issuer.account });
      const refusedSince = Promise.resolve(guard.resultLinksRefusedSince(url.issuer.keyId));
      // Read by downloadResult, unless admission refused the request first.
      refusedSince.catch(() => undefined);
      return { ...url, refusedSince };
    })();
    check.catch(() => undefined);
    linkChecks.set(c.req.raw, check);
  }
  return check;
}

interface Read {
  object: R2Object;
  /** The bytes of the range asked (or of the whole object); null for a HEAD, or when R2 withheld them. */
  body: ReadableStream | null;
  /** R2 withheld the bytes because an If-None-Match tag matched. */
  withheld: boolean;
}

/**
 * The result in one R2 operation: a HEAD reads the metadata; a GET gets the bytes of its
 * range, on condition that no If-None-Match tag matches (else R2 returns the metadata
 * alone). A range no object can satisfy needs only the metadata too. The one case of
 * two: a range that starts past the object's end, which R2 refuses before anyone knows
 * the size that the 416 must name.
 */
async function readResult(
  bucket: R2Bucket,
  key: string,
  isHead: boolean,
  rangeHeader: string | undefined,
  tags: EntityTags,
): Promise<Read | null> {
  const metadata = async () => {
    const object = await bucket.head(key);
    return object && { object, body: null, withheld: false };
  };
  const asked = askedRange(rangeHeader);
  if (isHead || asked === "unsatisfiable") return metadata();
  try {
    const object = await bucket.get(key, { range: asked ? r2Range(asked) : undefined, onlyIf: noneMatchCondition(tags) });
    if (!object) return null;
    return "body" in object ? { object, body: object.body, withheld: false } : { object, body: null, withheld: true };
  } catch (err) {
    if (asked) {
      const read = await metadata();
      if (!read || parseRange(rangeHeader, read.object.size) === "unsatisfiable") return read;
    }
    throw err;
  }
}

/** The entity-tag values If-None-Match lists, or `*`. `W/` changes nothing (it compares weakly); an unquoted tag can match nothing. */
type EntityTags = "*" | string[];

function entityTags(header: string | undefined): EntityTags {
  if (!header) return [];
  if (header.trim() === "*") return "*";
  return header.split(",").flatMap((t) => /^(?:W\/)?"([^"]*)"$/.exec(t.trim())?.[1] ?? []);
}

function matchesAny(tags: EntityTags, etag: string): boolean {
  return tags === "*" || tags.includes(etag);
}

/** The same tags as R2's condition, rewritten from what was parsed, so R2 withholds the bytes exactly when matchesAny holds. */
function noneMatchCondition(tags: EntityTags): Headers | undefined {
  if (tags !== "*" && tags.length === 0) return undefined;
  return new Headers({ "If-None-Match": tags === "*" ? "*" : tags.map((v) => `"${v}"`).join(", ") });
}

/** One range as asked, before the object's size is known. */
type AskedRange = { offset: number; end?: number } | { suffix: number };

/**
 * One `bytes=` range (RFC 9110 §14.1.2): `a-b`, `a-`, `-n`. No header, another unit or
 * several ranges: the whole object (a server may ignore Range). Malformed, or one no object
 * can satisfy: unsatisfiable (an offset past 2^53 is past the end of any object).
 */
function askedRange(header: string | undefined): AskedRange | "unsatisfiable" | null {
  if (!header) return null;
  const spec = /^bytes=(.*)$/i.exec(header.trim());
  if (!spec || spec[1]!.includes(",")) return null;
  const m = /^\s*(\d*)\s*-\s*(\d*)\s*$/.exec(spec[1]!);
  if (!m || (m[1] === "" && m[2] === "")) return "unsatisfiable";
  if (m[1] === "") {
    const suffix = Number(m[2]);
    return suffix === 0 ? "unsatisfiable" : { suffix };
  }
  const offset = Number(m[1]);
  if (!Number.isSafeInteger(offset)) return "unsatisfiable";
  if (m[2] === "") return { offset };
  const end = Number(m[2]);
  return end < offset ? "unsatisfiable" : { offset, end };
}

/** As R2 takes it: R2 cuts a suffix or an end past the object's at its size. */
function r2Range(asked: AskedRange): R2Range {
  const cap = (n: number) => Math.min(n, Number.MAX_SAFE_INTEGER);
  if ("suffix" in asked) return { suffix: cap(asked.suffix) };
  return asked.end === undefined ? { offset: asked.offset } : { offset: asked.offset, length: cap(asked.end) - asked.offset + 1 };
}

/** The range to serve of an object of `size` bytes: null for the whole object. */
function parseRange(header: string | undefined, size: number): { offset: number; length: number } | "unsatisfiable" | null {
  const asked = askedRange(header);
  if (asked === null || asked === "unsatisfiable") return asked;
  if ("suffix" in asked) {
    if (size === 0) return "unsatisfiable";
    const length = Math.min(asked.suffix, size);
    return { offset: size - length, length };
  }
  if (asked.offset >= size) return "unsatisfiable";
  const end = Math.min(asked.end ?? size - 1, size - 1);
  return { offset: asked.offset, length: end - asked.offset + 1 };
}
