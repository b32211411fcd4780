import type { StageContext } from "./context";
import { upstreamFailure } from "../forward/forward";
import { replaceResponse } from "./response";

const parsed = new WeakMap<Response, Record<string, unknown> | null>();
// One decoder for the isolate (a decode without `stream` keeps no state): each is a runtime object.
const decoder = new TextDecoder();

/**
 * The origin response's JSON object body (null when it is not one), read once per
 * response however many stages (ZSky settlement, ZSky jobs) ask. The body is read
 * whole and the response rebuilt from the same bytes, so the caller still gets them:
 * cheaper than teeing the stream with `clone()`, and the rebuilt response's fields
 * can be set in place afterwards.
 */
export async function originJson(c: StageContext): Promise<Record<string, unknown> | null> {
  const known = parsed.get(c.res);
  if (known !== undefined) return known;
  if (c.res.body === null) return null;
  // Bytes, not text: a body that is not UTF-8 must reach the caller unchanged. An origin
  // that fails mid-body (reset, or past ORIGIN_TIMEOUT_MS) is a 502/504 like any other.
  const bytes = await c.res.arrayBuffer().catch((err: unknown) => {
    throw upstreamFailure(err);
  });
  const rebuilt = new Response(bytes, c.res);
  let body: Record<string, unknown> | null = null;
  try {
    const value: unknown = JSON.parse(decoder.decode(bytes));
    if (value && typeof value === "object" && !Array.isArray(value)) body = value as Record<string, unknown>;
  } catch {
    // Not JSON: nothing to read, the caller gets the bytes as they were.
  }
  replaceResponse(c, rebuilt);
  parsed.set(rebuilt, body);
  return body;
}
