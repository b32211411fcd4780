import { upstreamFailure } from "../../../forward/forward";
import { bufferResult, MAX_BUFFERED_RESULT_BYTES, type OriginResult } from "./origin-result";
import { resultDisposition } from "./result-media";

/**
 * Writes the origin's result into R2 and returns its size. A declared length is
 * streamed, so memory stays flat whatever the size: R2 takes a stream only with its
 * length known, and the FixedLengthStream makes the put fail if the body breaks off
 * or ends short of what was declared. R2 writes an object whole or not at all, so a
 * failed pull leaves nothing to serve. A body of unknown length is buffered, up to
 * MAX_BUFFERED_RESULT_BYTES (or `maxBytes`, if lower).
 */
export async function putResult(
  bucket: R2Bucket,
  key: string,
  result: OriginResult,
  maxBytes: number,
  customMetadata: Record<string, string>,
): Promise<number> {
  const options = {
    httpMetadata: { contentType: result.contentType, contentDisposition: resultDisposition(result.contentType) },
    customMetadata,
  };
  if (result.length === null) {
    const bytes = await bufferResult(result, Math.min(maxBytes, MAX_BUFFERED_RESULT_BYTES));
    await bucket.put(key, bytes, options);
    return bytes.byteLength;
  }
  const { readable, writable } = new FixedLengthStream(result.length);
  // Stopped if the put fails first, so the origin's body is never left hanging.
  const stop = new AbortController();
  const piped = result.body.pipeTo(writable, { signal: stop.signal });
  try {
    await Promise.all([bucket.put(key, readable, options), piped]);
  } catch (err) {
    stop.abort();
    throw upstreamFailure(err);
  }
  return result.length;
}
