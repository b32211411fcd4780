import type { z } from "@hono/zod-openapi";
import type { OperationDoc } from "../products/types";

/** A route's documentation when it answers 200 with `schema` (and takes `request` as its JSON body). */
export const ok = (summary: string, schema?: z.ZodType, request?: z.ZodType): OperationDoc => ({
  summary,
  request,
  success: { status: 200, schema },
});

/** A route's documentation when it answers 201 with `schema`. */
export const created = (summary: string, schema?: z.ZodType, request?: z.ZodType): OperationDoc => ({
  summary,
  request,
  success: { status: 201, schema },
});
