import { GatewayError } from "./errors";

/**
 * Reads a request body into memory, refusing it with 413 as soon as it passes `limit`
 * bytes (a chunked body has no Content-Length to check up front). Buffering is bounded
 * by the limit, and lets the JSON check and the forward share one read.
 */
export async function readBody(request: { body: ReadableStream<Uint8Array> | null }, limit: number): Promise<Uint8Array | null> {
  if (!request.body) return null;
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel();
      throw new GatewayError("PAYLOAD_TOO_LARGE", `Request body exceeds ${limit} bytes`);
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0]!;
  const body = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}

function isJsonMediaType(contentType: string | null): boolean {
  const media = contentType?.split(";")[0]?.trim().toLowerCase() ?? "";
  return media === "application/json" || /^application\/[\w.-]+\+json$/.test(media);
}

const WRONG_MEDIA_TYPE = {
  UNSUPPORTED_MEDIA_TYPE: "Request body must be sent with Content-Type: application/json",
  BAD_REQUEST: "Malformed request body: send JSON with Content-Type: application/json",
} as const;

/**
 * Where a route expects JSON: a non-empty body must say so (`wrongMediaType`, the
 * product's status for it) and must parse (400). Returns the parsed value (undefined for
 * an empty body).
 */
export function requireJsonBody(
  body: Uint8Array | null,
  contentType: string | null,
  wrongMediaType: keyof typeof WRONG_MEDIA_TYPE,
): unknown {
  if (!body || body.byteLength === 0) return undefined;
  if (!isJsonMediaType(contentType)) throw new GatewayError(wrongMediaType, WRONG_MEDIA_TYPE[wrongMediaType]);
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(body)) as unknown;
  } catch {
    throw new GatewayError("BAD_REQUEST", "Request body is not valid JSON");
  }
}
