import type { z } from "zod";
import { GatewayError, type ErrorCode } from "./errors";

/** Parses input with a zod schema; a failure names the field, as `field: problem`. */
export function validate<T>(schema: z.ZodType<T>, input: unknown, code: ErrorCode = "UNPROCESSABLE"): T {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  throw new GatewayError(code, describeIssue(result.error.issues[0]!));
}

/** `field: problem`, naming an unknown field itself rather than its parent object. */
export function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === "unrecognized_keys") return `${[...issue.path, issue.keys[0]].join(".")}: unknown field`;
  return `${issue.path.length ? issue.path.join(".") : "body"}: ${issue.message}`;
}
