import type { Context } from "hono";
import type { z } from "zod";
import { requireFeature } from "../config/settings";
import { readBody } from "../http/body";
import type { AppEnv } from "../http/context";
import { GatewayError } from "../http/errors";
import { describeIssue } from "../http/validate";
import { ScannerKeysUnavailable } from "./scanner-keys";
import { verifyScannerSignature } from "./scanner-signature";

/**
 * A secret-scanning partner's request: the raw body's signature is verified with the key
 * the program's document names (headers `<prefix>-Public-Key-Identifier` and
 * `<prefix>-Public-Key-Signature`) BEFORE the body is parsed, so nothing unsigned is ever
 * read as a report. Then the body must match `schema`.
 */
export async function signedReports<T>(
  c: Context<AppEnv>,
  program: { headerPrefix: string; keysUrl: string | undefined },
  schema: z.ZodType<T>,
): Promise<T> {
  const settings = c.get("settings");
  requireFeature(settings, "secret-scanning");
  if (!program.keysUrl) throw new GatewayError("SERVICE_UNAVAILABLE", "This secret-scanning endpoint is not configured");
  const body = (await readBody(c.req.raw, settings.MAX_BODY_BYTES)) ?? new Uint8Array();
  const bytes = body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength) as ArrayBuffer;
  let valid: boolean;
  try {
    valid = await verifyScannerSignature(
      bytes,
      c.req.header(`${program.headerPrefix}-Public-Key-Identifier`),
      c.req.header(`${program.headerPrefix}-Public-Key-Signature`),
      program.keysUrl,
      settings.JWKS_COOLDOWN_SECONDS,
    );
  } catch (err) {
    if (err instanceof ScannerKeysUnavailable) {
      console.error(JSON.stringify({ msg: "scanner_keys_unavailable", url: program.keysUrl, reason: err.message }));
      throw new GatewayError("SERVICE_UNAVAILABLE", "Signing keys unavailable, retry later", { "Retry-After": "60" });
    }
    throw err;
  }
  if (!valid) throw new GatewayError("UNAUTHORIZED", "Invalid signature");
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(body));
  } catch {
    throw new GatewayError("BAD_REQUEST", "body: not JSON");
  }
  const result = schema.safeParse(parsed);
  if (!result.success) throw new GatewayError("BAD_REQUEST", describeIssue(result.error.issues[0]!));
  return result.data;
}
