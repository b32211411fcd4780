import { z } from "@hono/zod-openapi";
import type { UsageCall } from "../usage/usage-batches";
import { iso } from "../keys/views";

/** One recorded call as the admin API shows it (a key's usage, a search, an export). */
export const CallSchema = z
  .object({
    time: z.string(),
    method: z.string(),
    path: z.string().openapi({ description: "Without the query string" }),
    status: z.number(),
    request_id: z.string(),
    client_address: z.string().nullable(),
    country: z.string().nullable(),
    asn: z.number().nullable(),
    user_agent: z.string().nullable(),
    outcome: z
      .enum(["admitted", "invalid_credential", "forbidden", "rate_limited", "refused"])
      .openapi({ description: "`invalid_credential`: refused as revoked, expired or unknown" }),
  })
  .openapi("KeyUsageCall");

export function callView(u: UsageCall): z.infer<typeof CallSchema> {
  return {
    time: iso(u.at),
    method: u.method,
    path: u.path,
    status: u.status,
    request_id: u.requestId,
    client_address: u.clientAddress,
    country: u.country,
    asn: u.asn,
    user_agent: u.userAgent,
    outcome: u.outcome,
  };
}
