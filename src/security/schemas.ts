import { z } from "@hono/zod-openapi";
import { errorResponse } from "../admin/schemas";

/** Answers every signed partner endpoint can give besides its success. */
export const SCANNER_ERRORS = {
  400: errorResponse("Signed, but not a batch of reports"),
  401: errorResponse("Missing or invalid signature, or a key identifier the program's key document does not list"),
  413: errorResponse("Body larger than MAX_BODY_BYTES"),
  503: errorResponse("The program's key document cannot be read (retry later), or the endpoint is not configured"),
} as const;

export const signedBody = (schema: z.ZodType, description: string) => ({
  required: true,
  description,
  content: { "application/json": { schema } },
});
