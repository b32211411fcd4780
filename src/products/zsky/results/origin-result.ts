import { readBody } from "../../../http/body";
import type { StageContext } from "../../../http/context";
import { GatewayError } from "../../../http/errors";
import { addOriginAssertion } from "../../../forward/origin-assertion";
import { fetchOrigin, upstreamFailure } from "../../../forward/forward";
import type { OutgoingHeaders } from "../../../forward/origin-headers";
import { resultMediaType } from "./result-media";
import { resultSource } from "./result-source";

/**
 * The most of one result zgate ever holds in memory: an inline (`X-ZSky-Store: 0`)
 * result, or a stored one whose length the origin does not declare. Far below the
 * isolate's 128 MB, which several requests share.
 */
export const MAX_BUFFERED_RESULT_BYTES = 16 * 1024 * 1024;

/** A result the origin is handing over, not read yet: its body, its checked media type and the length it declared (null: unknown). */
export interface OriginResult {
  body: ReadableStream<Uint8Array>;
  contentType: string;
  length: number | null;
}

/**
 * Opens the origin's result: only from where `resultSource` allows (the ZSky origin
 * itself gets zgate's assertion, as every origin request does), only a stored media type, and never one
 * that declares more than `maxBytes`. Every refusal is a 502 and leaves nothing behind.
 */
export async function openResult(c: StageContext, resultUrl: unknown, maxBytes: number): Promise<OriginResult> {
  const settings = c.get("settings");
  const { url, onOrigin } = resultSource(settings, resultUrl);
  const headers: OutgoingHeaders = {};
  if (onOrigin) {
    await addOriginAssertion(headers, settings, {
      method: "GET",
      origin: url.origin,
      path: url.pathname,
      query: url.search.slice(1),
      product: c.get("target").product,
      identity: c.get("identity"),
      requestId: c.get("requestId"),
    });
  }
  const response = await fetchOrigin(c, url.toString(), { method: "GET", headers });
  try {
    if (!response.ok) throw new GatewayError("BAD_GATEWAY", "Upstream result unavailable");
    const contentType = resultMediaType(response.headers.get("content-type"));
    if (!contentType) throw new GatewayError("BAD_GATEWAY", "Upstream result is not an image or video");
    const length = declaredLength(response.headers);
    if (length !== null && length > maxBytes) throw tooLarge();
    return { body: response.body ?? new Blob([]).stream(), contentType, length };
  } catch (err) {
    await response.body?.cancel();
    throw err;
  }
}

/**
 * The byte count the body will have, from Content-Length. Unknown when there is none,
 * or when the body is content-encoded: fetch() decodes it, and the header counts the
 * encoded bytes.
 */
function declaredLength(headers: Headers): number | null {
  const length = headers.get("content-length");
  const encoding = headers.get("content-encoding")?.trim().toLowerCase();
  if (!length || !/^\d+$/.test(length.trim()) || (encoding && encoding !== "identity")) return null;
  return Number(length);
}

const tooLarge = () => new GatewayError("BAD_GATEWAY", "Upstream result too large");

/** The whole result in memory, refused (502) once it passes `limit` bytes; a body that breaks off is a 502 or 504. */
export async function bufferResult(result: OriginResult, limit: number): Promise<Uint8Array> {
  if (result.length !== null && result.length > limit) {
    await result.body.cancel();
    throw tooLarge();
  }
  try {
    return (await readBody(result, limit)) ?? new Uint8Array(0);
  } catch (err) {
    throw err instanceof GatewayError ? tooLarge() : upstreamFailure(err);
  }
}
