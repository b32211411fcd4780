import type { z } from "zod";
import { GatewayError, type ErrorCode } from "./errors";

/** Parses input with a zod schema; a failure names the field, as `field: problem`. */
export function validate<T>(schema: z.ZodType<T>, input: unknown, code: ErrorCode = "UNPROCESSABLE"): T {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = issue.path.length ? issue.path.join(".") : "body";
  throw new GatewayError(code, `${field}: ${issue.message}`);
}
